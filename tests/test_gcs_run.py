"""A run directory on gs://: train, resume, infer and judge through the bucket, none to ./gs:/."""

import json
import os
import pathlib
import subprocess
import sys

HELPER = pathlib.Path(__file__).parent / "helpers" / "gcs_run.py"


def test_train_resume_infer_and_judge_on_a_bucket(tmp_path):
    root, cwd = tmp_path / "bucket_root", tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run(
        [sys.executable, str(HELPER), str(root), str(tmp_path / "tensorboard")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["codes"] == [0, 0, 0, 0]
    assert found["run_dir"] == "gs://bucket/runs/pinch"
    assert found["checkpoints"] == ["checkpoint_2", "checkpoint_3"]
    assert {"config.gin", "model_config.json", "chat_format.json"} <= set(found["files"])
    on_disk = root / "bucket" / "runs" / "pinch"
    assert (on_disk / "checkpoint_3" / "data_iterator").is_dir()
    assert "resuming gs://bucket/runs/pinch from step 2" in result.stderr
    assert "demo_uniform.fi.jsonl" in found["infer"] and "decoding.json" in found["infer"]
    assert {"judgments.jsonl", "summary.json"} <= set(found["judge"])
    answers = (on_disk / "infer" / "demo_uniform.fi.jsonl").read_text().splitlines()
    assert len(answers) == 10
    assert not any(cwd.iterdir()), "nothing may be written to the working directory"
