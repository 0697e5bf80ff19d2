"""TPU scripts print the exact gcloud commands in --dry_run; sweeps expand grids into runs."""

import json
import os
import pathlib
import shlex
import subprocess
import sys

import pytest

from polyglot_jax import cli
from polyglot_jax.launch import sweep, tpu

REPO = pathlib.Path(__file__).resolve().parents[1]


def dry(script: str, *args: str) -> list[list[str]]:
    """The commands ``tpu_scripts/<script>.sh ARGS --dry_run`` prints (flag before any ``--``)."""
    cut = args.index("--") if "--" in args else len(args)
    out = subprocess.run(
        ["bash", str(REPO / "tpu_scripts" / f"{script}.sh"), *args[:cut], "--dry_run", *args[cut:]],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    return [shlex.split(line) for line in out.stdout.splitlines()]


def remote_command(cmd: list[str]) -> str:
    return next(a for a in cmd if a.startswith("--command=")).removeprefix("--command=")


def test_tpu_scripts_dry_run_print_the_gcloud_commands():
    common = ["--name=pj", "--zone=us-central2-b", "--project=proj"]
    (create,) = dry("create", *common, "--accelerator=v4-32")
    expected = "gcloud compute tpus tpu-vm create pj --zone=us-central2-b --project=proj"
    expected += " --accelerator-type=v4-32 --version=tpu-ubuntu2204-base"
    assert create == expected.split()
    (queued,) = dry("create", *common, "--accelerator=v5litepod-16", "--queued", "--spot")
    assert queued[3:6] == ["queued-resources", "create", "pj"] and queued[-1] == "--spot"
    assert "--node-id=pj" in queued and "--runtime-version=tpu-ubuntu2204-base" in queued

    archive, copy, setup = dry("install", *common)
    assert archive[:2] == ["git", "archive"]
    assert copy[3:5] == ["tpu-vm", "scp"] and "--worker=all" in copy
    assert "--worker=all" in setup
    assert "pip install" in remote_command(setup) and "jax[tpu]" in remote_command(setup)

    (train,) = dry("train", *common, "--", "--gin_file=mix_pinch.gin", '--gin.MODEL_DIR="gs://b/r"')
    remote = remote_command(train)
    assert "--worker=all" in train and "JAX_COORDINATOR_ADDRESS=auto" in remote
    assert "python -m polyglot_jax.train --gin_file=mix_pinch.gin" in remote
    assert "'--gin.MODEL_DIR=\"gs://b/r\"'" in remote

    logs = dry("logs", *common, "--accelerator=v4-32", "--log_dir=out")
    assert [(c[6], c[-1]) for c in logs] == [
        (f"out/worker_{i}.log", f"--worker={i}") for i in range(4)
    ]
    (delete,) = dry("delete", *common)
    assert delete[3:6] == ["tpu-vm", "delete", "pj"] and delete[-1] == "--quiet"


def test_hosts_of_accelerator_types():
    assert [tpu.hosts_of(a) for a in ("v3-8", "v4-8", "v4-32", "v5p-64", "v5litepod-8")] == [
        1,
        1,
        4,
        8,
        1,
    ]
    assert tpu.hosts_of("v5litepod-16") == 4
    with pytest.raises(ValueError, match="unknown TPU accelerator type 'h100'"):
        tpu.hosts_of("h100")
    assert cli.main(["tpu", "train", "--name=x", "--zone=z", "--dry_run"]) == 2


def test_sweep_expands_the_grid_into_distinct_runs(tmp_path, capsys):
    argv = [
        "sweep",
        f"--root={tmp_path}",
        '--grid=PINCH_LANGUAGES=[["es"], ["es", "ru"]]',
        "--grid=SEED=[0, 1]",
        "--dry_run",
        "--",
        "--gin_file=models/tiny.gin",
    ]
    assert cli.main(argv) == 0
    commands = [shlex.split(x) for x in capsys.readouterr().out.splitlines() if x[0] != "#"]
    assert len(commands) == 4
    dirs = [next(a for a in c if a.startswith("--gin.MODEL_DIR=")) for c in commands]
    assert len(set(dirs)) == 4
    assert commands[1][-3:] == [
        '--gin.PINCH_LANGUAGES=["es"]',
        "--gin.SEED=1",
        f'--gin.MODEL_DIR="{tmp_path}/PINCH_LANGUAGES=es,SEED=1"',
    ]
    assert not (tmp_path / "sweep.json").exists()  # a dry run writes nothing


def test_sweep_runs_trainings_and_lists_them(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(tpu, "run_commands", lambda cmds, dry_run: ran.extend(cmds) or 0)
    argv = [f"--root={tmp_path}", "--grid=MULTI_K=[1, 2, 3]", "--", "--gin_file=mix_multi_k.gin"]
    assert sweep.main(argv) == 0
    listed = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["overrides"] for r in listed] == [{"MULTI_K": k} for k in (1, 2, 3)]
    assert [c[:3] for c in ran] == [[sys.executable, "-m", "polyglot_jax.train"]] * 3


def test_gin_literals_and_bad_grids():
    assert sweep.gin_literal(["es", 1, True, None, ("a",)]) == '["es", 1, True, None, ("a",)]'
    assert sweep.gin_literal({"targets": 512}) == '{"targets": 512}'
    with pytest.raises(ValueError, match="is not a Python literal"):
        sweep.parse_axis("SEED=[0, oops]")
    with pytest.raises(ValueError, match="must be a non-empty list"):
        sweep.parse_axis("SEED=3")
    with pytest.raises(ValueError, match="expected NAME="):
        sweep.parse_axis("[0, 1]")
