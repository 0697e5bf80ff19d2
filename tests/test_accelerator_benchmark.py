"""``benchmarks/accelerator.py`` on a host without an accelerator: it says so and exits 0."""

import os
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "accelerator.py"


def test_without_an_accelerator_it_says_so_and_exits_0():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no accelerator: JAX's backend is cpu"), done.stdout
    assert "nothing measured" in done.stdout
