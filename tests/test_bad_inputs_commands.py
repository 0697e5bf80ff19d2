"""The other commands with bad inputs: one ``error:`` line naming the culprit, exit 2.

Covers ``train`` (gin files and flags), ``report``, ``data describe``, ``sweep``, ``tpu``,
``demo`` and the dispatcher; ``infer``, ``judge``, ``eval`` and the readers have tables of
their own. ``{tmp}`` in a case stands for a folder of bad inputs.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from polyglot_jax import cli
from polyglot_jax.cli import common

TRAIN = ["train", "--gin_file=models/tiny.gin", "--gin_file=runs/finetune.gin"]
RUN = ['--gin.MODEL_DIR="{tmp}/run"', '--gin.MIXTURE_OR_TASK_NAME="demo_pinch"']


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("bad_commands")
    (root / "judge").mkdir()
    (root / "judge" / "judgments.jsonl").write_text('{"run": "r", "lang": "fi"\n')
    (root / "empty_judge").mkdir()
    (root / "empty.jsonl").write_text("")
    (root / "bad.gin").write_text("X = [1, 2\n")
    (root / "unknown.gin").write_text("nope.parameter = 3\n")
    (root / "loop_a.gin").write_text("include 'loop_b.gin'\n")
    (root / "loop_b.gin").write_text("include 'loop_a.gin'\n")
    (root / "missing_include.gin").write_text("include 'nowhere/at_all.gin'\n")
    (root / "other_steps.gin").write_text("TRAIN_STEPS = 7\n")
    (root / "judge_other").mkdir()
    (root / "judge_other" / "judgments.jsonl").write_text(
        json.dumps({"run": "r", "id": "1", "lang": "fi", "lang_agree": True}) + "\n" + "[1, 2]\n"
    )
    return root


CASES = [
    # (argv, text the error line must contain)
    (["nope"], None),  # the dispatcher prints its own usage line
    ([*TRAIN, *RUN, "--gin.BATCH_SIZ=8"], "unknown gin macro BATCH_SIZ"),
    ([*TRAIN, *RUN, "--gin.TRAIN_STEPS=[1,"], "is not complete"),
    ([*TRAIN, *RUN, "--gin.TRAIN_STEPS=+"], "gin:"),
    ([*TRAIN, *RUN, "--gin.config.DecoderConfig.num_layerz=2"], "num_layerz"),
    ([*TRAIN, *RUN, '--gin.config.DecoderConfig.family="gpt9"'], "DecoderConfig.family"),
    ([*TRAIN, *RUN, "--gin.config.DecoderConfig.num_heads=3"], "num_heads"),
    ([*TRAIN, *RUN, '--gin.CHAT_TEMPLATE="fancy"'], "unknown chat template 'fancy'"),
    ([*TRAIN, *RUN, '--gin.LOSS_ON="everything"'], "loss_on must be one of"),
    ([*TRAIN, *RUN, "--gin.WARMUP_STEPS=-5"], "WARMUP_STEPS (make_optimizer.warmup_steps)"),
    ([*TRAIN, *RUN, '--gin.LEARNING_RATE="fast"'], "LEARNING_RATE must be a number"),
    ([*TRAIN, *RUN, "--gin.LEARNING_RATE=0"], "LEARNING_RATE must be > 0"),
    ([*TRAIN, *RUN, '--gin.INITIAL_CHECKPOINT_PATH="{tmp}/nowhere"'], "nowhere does not exist"),
    (["train", "--gin_file={tmp}/bad.gin", *RUN], "bad.gin:"),
    ([*TRAIN, "--gin_file={tmp}/unknown.gin", *RUN], "nope"),
    (["train", "--gin_file={tmp}/loop_a.gin", *RUN], "includes itself"),
    (["train", "--gin_file={tmp}/missing_include.gin", *RUN], "nowhere/at_all.gin"),
    (["train", "--gin_file=nope.gin"], "gin file 'nope.gin' not found"),
    (["train", "--gin_file"], "--gin_file needs a value"),
    (["train", "--gin.MODEL_DIR"], "expected --gin.NAME=VALUE"),
    (["train", "--gin_file=models/tiny.gin", "--gin_file=models/llama2_7b.gin", *RUN], "vocab"),
    ([*TRAIN, "--gin_file={tmp}/other_steps.gin", *RUN], "TRAIN_STEPS is set to 300"),
    ([*TRAIN, *RUN, "--num_processes=x"], "num_processes"),
    ([*TRAIN, *RUN, "--stray"], "unknown arguments: --stray"),
    (["report", "{tmp}/nowhere"], "nowhere"),
    # a study's settings are checked before its first stage, not hours later at theirs
    (
        ["study", "run", "pinch", "--root={tmp}/s", "--quick", "--judge_concurrency", "0"],
        "--judge_concurrency must be >= 1, got 0",
    ),
    (
        ["study", "run", "pinch", "--root={tmp}/s", "--quick", "--benchmark_limit", "-1"],
        "--benchmark_limit must be >= 1, got -1",
    ),
    (
        ["study", "run", "pinch", "--root={tmp}/s", "--quick", "--gin.TRAIN_STEPS=abc"],
        "--gin.TRAIN_STEPS=abc: not a value gin reads",
    ),
    (
        ["study", "report", "pinch", "--root={tmp}/no_study_here"],
        "--root {tmp}/no_study_here does not exist",
    ),
    (
        ["eval", "--checkpoint_path={tmp}", "--languages=et", "--batch_size", "0"],
        "--batch_size must be >= 1, got 0",
    ),
    (
        ["eval", "--checkpoint_path={tmp}", "--languages=et", "--limit", "-1"],
        "--limit must be >= 1",
    ),
    (["report", "{tmp}/judge"], "judgments.jsonl"),
    (["report", "{tmp}/empty_judge"], "empty_judge"),
    (["report", "{tmp}/judge_other"], "judgments.jsonl"),
    (["report"], "polyglot-jax report"),
    (["data", "describe", "no_such_mixture"], "no_such_mixture"),
    (["data", "summarize", "demo_pinch"], "invalid choice: 'summarize'"),
    (["data", "describe", "demo_pinch", "--length=abc"], "--length"),
    (["data", "describe", "demo_pinch", "--module=no_such_module"], "no_such_module"),
    (
        ["data", "tag", "{tmp}/empty.jsonl", "--output_dir={tmp}/tagged"],
        "data tag: no conversation was read from {tmp}/empty.jsonl",
    ),
    (["data", "fetch", "xquad", "--data_dir={tmp}/empty.jsonl"], "--data_dir {tmp}/empty.jsonl:"),
    (
        ["data", "fetch", "xquad", "--data_dir={tmp}/d", "--cache_dir={tmp}/empty.jsonl/c"],
        "--cache_dir {tmp}/empty.jsonl/c: cannot be created",
    ),
    (["sweep", "--root={tmp}/sweep", "--grid=X=[1]"], "give the training flags after --"),
    (["sweep", "--root={tmp}/sweep", "--grid=X", "--", "--gin_file=a.gin"], "NAME=[value"),
    (["sweep", "--root={tmp}/sweep", "--grid=X=[", "--", "--gin_file=a"], "not a Python literal"),
    (["sweep", "--root={tmp}/sweep", "--grid=X=[]", "--", "--gin_file=a"], "non-empty list"),
    (["sweep", "--root={tmp}/sweep", "--tpu=v", "--", "--gin_file=a"], "--tpu needs --zone"),
    (["tpu", "create", "--name=x", "--zone=z", "--accelerator=v9-8"], "v9-8"),
    (["tpu", "explode", "--name=x"], "invalid choice: 'explode'"),
    (
        ["tpu", "create", "--name=--impersonate-service-account=x@y", "--zone=z", "--dry_run"],
        "--name '--impersonate-service-account=x@y': expected a plain name",
    ),
    (["tpu", "delete", "--name=pj", "--zone=us central", "--dry_run"], "--zone 'us central'"),
    (["tpu", "install", "--name=pj", "--zone=z", "--project=p;rm", "--dry_run"], "--project"),
    (["tpu", "create", "--name=pj", "--zone=z", "--version=-x", "--dry_run"], "--version '-x'"),
    (["tpu", "logs", "--name=pj", "--zone=z", "--log_dir=h:/x", "--dry_run"], "--log_dir"),
    (["tpu", "train", "--name=pj", "--zone=--x", "--dry_run", "--", "--gin_file=a"], "--zone"),
    (["sweep", "--root={tmp}/sw", "--tpu=--x", "--zone=z", "--dry_run", "--", "-g"], "--tpu '--x'"),
    (["tpu", "train", "--name=x", "--zone=z"], "give the training flags after --"),
    (["demo", "--steps=3"], "unrecognized arguments: --steps=3"),
]


IDS = [f"{i}:{argv[0]}:{argv[-1][:40]}" for i, (argv, _) in enumerate(CASES)]


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=IDS)
def test_bad_command_is_one_line(tmp, capsys, demo_tasks, argv, expected):
    argv = [a.replace("{tmp}", str(tmp)) for a in argv]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    if expected is not None:
        assert expected.replace("{tmp}", str(tmp)) in errors[0], errors[0]


def test_the_tables_hold_over_a_hundred_bad_inputs():
    """The bad-input tables of every command and reader, counted together."""
    tables = {"commands": CASES}
    for name in ("data", "infer", "judge"):
        path = pathlib.Path(__file__).with_name(f"test_bad_inputs_{name}.py")
        spec = importlib.util.spec_from_file_location(f"_bad_inputs_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for key, value in vars(module).items():
            if key in ("CASES", "EVAL_CASES", "ROWS"):
                tables[f"{name}.{key}"] = value
    sizes = {name: len(table) for name, table in tables.items()}
    assert set(sizes) == {"commands", "data.CASES", "data.EVAL_CASES", "infer.CASES", "judge.ROWS"}
    assert sum(sizes.values()) >= 100, sizes


def test_fetch_without_network_says_the_source_could_not_be_reached(tmp, capsys, monkeypatch):
    """``datasets`` calls an unreachable URL missing ("Unable to find"); the error says why."""
    common.setup_logging()  # log to this test's stderr: importing datasets logs
    import datasets

    def offline(*args, **kwargs):
        raise FileNotFoundError(f"Unable to find '{kwargs.get('data_files')}'")

    def no_route(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr("socket.create_connection", no_route)
    monkeypatch.delenv("POLYGLOT_JAX_HUB_MIRROR", raising=False)
    code = cli.main(["data", "fetch", "xcopa", "--languages=et", f"--data_dir={tmp}/data"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "could not be reached (" in line and "Network is unreachable" in line, line
    assert "not found" not in line, line


NATIVE_LINES = ("absl::InitializeLog", "oneDNN", "cuda drivers", "cpu_feature_guard")


def test_a_command_prints_no_native_start_up_lines():
    """TensorFlow's C++ start-up lines are held back unless the user sets its log level."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = [sys.executable, "-m", "polyglot_jax.cli", "data", "--help"]  # imports TensorFlow
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: polyglot-jax data"), result.stdout
    for noise in NATIVE_LINES:
        assert noise not in result.stdout + result.stderr, result.stderr


def test_native_lines_are_dropped_and_the_rest_kept(capfd):
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796670669.032938    8518 cudart_stub.cc:31] Could not find cuda drivers",
        "W0000 00:00:1796670669.032145    8518 port.cc:153] oneDNN custom operations are on.",
    ]
    with common.quiet_native_logs():
        os.write(sys.stderr.fileno(), ("\n".join([*noise, "a real problem"]) + "\n").encode())
    err = capfd.readouterr().err
    assert err == "a real problem\n", err
