"""Trains, resumes, answers and judges with a run directory on ``gs://`` (the offline fake).

Usage: python gcs_run.py ROOT TENSORBOARD_DIR; prints one JSON line of what it found.
"""

import json
import sys

from polyglot_jax.testing import fake_gcs

fake_gcs.install(sys.argv[1])

from polyglot_jax import cli  # noqa: E402
from polyglot_jax.training import runs  # noqa: E402

RUN = "gs://bucket/runs/pinch"
TRAIN = [
    "train",
    "--gin_file=models/tiny.gin",
    "--gin_file=runs/finetune.gin",
    f'--gin.MODEL_DIR="{RUN}"',
    '--gin.MIXTURE_OR_TASK_NAME="demo_pinch"',
    "--gin.BATCH_SIZE=2",
    '--gin.TASK_FEATURE_LENGTHS={"targets": 64}',
    "--gin.TrainConfig.checkpoint_every=2",
    "--gin.TrainConfig.describe_data=False",
    f'--gin.TrainConfig.tensorboard_dir="{sys.argv[2]}"',
]
INFER = [
    "infer",
    "--gin_file=runs/infer.gin",
    f'--gin.CHECKPOINT_PATH="{RUN}/checkpoint_3"',
    '--gin.MIXTURE_OR_TASK_NAME="demo_uniform.fi"',
    "--gin.MAX_NEW_TOKENS=4",
]
JUDGE = ["judge", "--outputs", f"{RUN}/infer", "--languages", "fi,en"]
codes = [
    cli.main([*TRAIN, "--gin.TRAIN_STEPS=2"]),
    cli.main([*TRAIN, "--gin.TRAIN_STEPS=3"]),
    cli.main(INFER),
    cli.main(JUDGE),
]
source = runs.resolve(RUN)
print(
    json.dumps(
        {
            "codes": codes,
            "checkpoints": runs.checkpoint_names(source.run_dir),
            "files": sorted(p.name for p in source.run_dir.iterdir()),
            "infer": sorted(p.name for p in (source.run_dir / "infer").iterdir()),
            "judge": sorted(p.name for p in (source.run_dir / "judge").iterdir()),
            "run_dir": str(source.run_dir),
        }
    )
)
