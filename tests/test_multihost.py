"""Two processes on 127.0.0.1 (gloo collectives) train and validate like one process reading
both data shards."""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from polyglot_jax.training import multihost

HELPER = pathlib.Path(__file__).parent / "helpers" / "multihost_train.py"
REPO = pathlib.Path(__file__).resolve().parents[1]


def _env(devices: int) -> dict:
    return {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(REPO),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_reading_both_shards(tmp_path):
    single = tmp_path / "single.npz"
    subprocess.run(
        [sys.executable, str(HELPER), str(single), "--hosts=2"],
        env=_env(4),
        check=True,
        capture_output=True,
        timeout=600,
    )
    address = f"127.0.0.1:{_free_port()}"
    multi = tmp_path / "multi.npz"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HELPER),
                str(multi),
                "--hosts=2",
                f"--coordinator_address={address}",
                "--num_processes=2",
                f"--process_id={i}",
            ],
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    a, b = np.load(single), np.load(multi)
    np.testing.assert_allclose(a["losses"], b["losses"], atol=1e-5)
    assert a["losses"][-1] < a["losses"][0]
    assert list(a["validation_langs"]) == list(b["validation_langs"])
    assert len(a["validation_langs"]) == 12
    np.testing.assert_allclose(a["validation"], b["validation"], atol=1e-5)
    np.testing.assert_allclose(a["validation"], a["validation_unsharded"], atol=1e-5)
    for key in a.files:
        if key.startswith("p"):
            assert np.abs(a[key] - b[key]).max() <= 1e-5, key


def test_process_flags_and_environment():
    flags, rest = multihost.parse_flags(["--process_id=1", "--gin.X=1", "--num_processes", "2"])
    assert rest == ["--gin.X=1"]
    with pytest.raises(ValueError, match="need a coordinator address"):
        multihost.resolve(flags, {})
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}
    assert multihost.resolve(flags, env) == {
        "coordinator_address": "10.0.0.1:1234",
        "num_processes": 2,
        "process_id": 1,
    }
    assert multihost.resolve(multihost.ProcessFlags(), {}) is None
    assert multihost.resolve(multihost.ProcessFlags(), {"TPU_WORKER_HOSTNAMES": "a,b"}) == {}
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES='two' is not an integer"):
        multihost.resolve(multihost.ProcessFlags(), {**env, "JAX_NUM_PROCESSES": "two"})
    with pytest.raises(ValueError, match=r"process_id 3 is outside 0\.\.1"):
        multihost.resolve(multihost.ProcessFlags("h:1", 2, 3), {})
