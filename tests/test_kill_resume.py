"""A run killed with SIGKILL at random points (twice) and resumed ends bitwise equal to a straight
run."""

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from polyglot_jax.training import runs

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 12


def command(model_dir: pathlib.Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "polyglot_jax.train",
        "--gin_file=models/tiny.gin",
        "--gin_file=runs/finetune.gin",
        f'--gin.MODEL_DIR="{model_dir}"',
        '--gin.MIXTURE_OR_TASK_NAME="demo_pinch"',
        f"--gin.TRAIN_STEPS={STEPS}",
        "--gin.BATCH_SIZE=4",
        '--gin.TASK_FEATURE_LENGTHS={"targets": 48}',
        "--gin.TrainConfig.checkpoint_every=2",
        "--gin.TrainConfig.keep_checkpoints=2",
        "--gin.TrainConfig.log_every=4",
        "--gin.TrainConfig.eval_every=0",
    ]


def env() -> dict:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}


def test_sigkill_at_random_points_then_resume_is_bitwise_equal(tmp_path):
    straight = tmp_path / "straight"
    subprocess.run(command(straight), env=env(), cwd=REPO, check=True, capture_output=True)

    killed = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    while kills < 2:
        proc = subprocess.Popen(
            command(killed),
            env=env(),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        before = {p.name for p in killed.glob("checkpoint_*")}
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if {p.name for p in killed.glob("checkpoint_*")} - before:
                break  # this attempt made progress: kill it somewhere in the next second
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is not None:
            break  # finished before the kill landed
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills == 2, "the run finished before it could be killed twice"
    subprocess.run(command(killed), env=env(), cwd=REPO, check=True, capture_output=True)

    _, a = runs.load_model(straight)
    _, b = runs.load_model(killed)
    assert sorted(p.name for p in killed.glob("checkpoint_*"))[-1] == f"checkpoint_{STEPS}"
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
