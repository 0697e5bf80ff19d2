"""Data-parallel, FSDP and tensor-parallel runs on 8 simulated devices equal one device."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

HELPER = pathlib.Path(__file__).parent / "helpers" / "sharded_train.py"
SHAPES = ["1,1,1", "8,1,1", "1,8,1", "2,2,2", "4,1,2"]


def test_every_mesh_gives_the_single_device_result():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, str(HELPER), *SHAPES], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    reference = runs["1,1,1"]
    for shape in SHAPES[1:]:
        np.testing.assert_allclose(runs[shape]["losses"], reference["losses"], atol=1e-5)
        for got, want in zip(runs[shape]["params"], reference["params"], strict=True):
            assert np.abs(np.asarray(got) - np.asarray(want)).max() <= 1e-5, shape
    assert runs["1,8,1"]["spec"] == "P('fsdp', 'model')"
    assert runs["1,1,1"]["losses"][-1] < runs["1,1,1"]["losses"][0]
