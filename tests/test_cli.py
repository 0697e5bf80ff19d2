"""Command lines: gin flags, one-line errors for bad input."""

import json

import pytest

from polyglot_jax import cli, gin_utils
from polyglot_jax.cli import common, judge, train


def test_gin_flags_are_rewritten_to_bindings():
    argv = ["--gin_file=a.gin", "--gin_file", "b.gin", '--gin.MODEL_DIR="/x"']
    args = gin_utils.parse_args([*argv, "--gin_search_paths=p,q", "--other"])
    assert args.files == ["a.gin", "b.gin"]
    assert args.bindings == ['MODEL_DIR = "/x"']
    assert args.search_paths == ["p", "q"]
    assert args.rest == ["--other"]


def one_line_error(capsys, fn) -> str:
    """Runs ``fn`` as a command: exit status 2, one ``error:`` line, no traceback."""
    assert common.run(fn) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_missing_required_macro_is_named(capsys):
    argv = [
        "--gin_file=models/tiny.gin",
        "--gin_file=runs/finetune.gin",
        '--gin.MIXTURE_OR_TASK_NAME="demo_pinch"',
    ]
    line = one_line_error(capsys, lambda: train.main(argv))
    assert line == "error: gin macro MODEL_DIR is required: pass --gin.MODEL_DIR=..."


def test_unknown_gin_file_and_bad_binding(capsys):
    line = one_line_error(capsys, lambda: train.main(["--gin_file=nope.gin"]))
    assert "gin file 'nope.gin' not found" in line
    argv = ["--gin_file=models/tiny.gin", "--gin.DecoderConfig.num_layerz=3"]
    line = one_line_error(capsys, lambda: train.main(argv))
    assert line.startswith("error: gin:") and "num_layerz" in line


def test_bad_gin_value_is_named(capsys, tmp_path):
    argv = [
        "--gin_file=models/tiny.gin",
        "--gin_file=runs/finetune.gin",
        f'--gin.MODEL_DIR="{tmp_path}"',
        '--gin.MIXTURE_OR_TASK_NAME="demo_pinch"',
        '--gin.DecoderConfig.dtype="float33"',
    ]
    line = one_line_error(capsys, lambda: train.main(argv))
    assert "unknown dtype 'float33'" in line


def test_unknown_language_is_named(capsys, tmp_path):
    (tmp_path / "infer").mkdir()
    (tmp_path / "infer" / "x.jsonl").write_text('{"id": "1", "lang": "fi", "response": "Moi"}\n')
    argv = ["--outputs", str(tmp_path / "infer"), "--languages", "fi,xx"]
    line = one_line_error(capsys, lambda: judge.main(argv))
    assert "unknown language code 'xx'" in line


def test_malformed_output_line_names_file_and_line(capsys, tmp_path):
    path = tmp_path / "infer" / "x.jsonl"
    path.parent.mkdir()
    good = json.dumps({"id": "1", "lang": "fi", "response": "Moi"})
    path.write_text(good + "\n" + good[:-3] + "\n")
    line = one_line_error(capsys, lambda: judge.main(["--outputs", str(path.parent)]))
    assert line.startswith(f"error: {path}:2: malformed JSON")


def test_cli_dispatch_and_unknown_command(capsys):
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "polyglot-jax demo" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["judge", "--help"])


def test_lora_run_file_binds_adapters(tmp_path):
    from polyglot_jax.models import DecoderConfig

    gin_utils.configure(
        gin_utils.GinArgs(
            files=["models/tiny.gin", "runs/lora.gin"],
            bindings=[
                f'MODEL_DIR = "{tmp_path}"',
                'MIXTURE_OR_TASK_NAME = "demo_pinch"',
                "LORA_RANK = 4",
            ],
        )
    )
    cfg = DecoderConfig()
    assert cfg.lora is not None and cfg.lora.rank == 4 and cfg.lora.targets == ("q_proj", "v_proj")


def test_train_from_a_mixture_gin_file(tmp_path, capsys):
    argv = [
        "--gin_file=mix_pinch.gin",
        f'--gin.MODEL_DIR="{tmp_path}"',
        "--gin.PINCH_EXAMPLES=11",
        "--gin.TRAIN_STEPS=2",
        "--gin.BATCH_SIZE=2",
        "--gin.PINCH_LANGUAGES=['fi', 'sw']",
    ]
    assert common.run(lambda: train.main(argv)) == 0
    assert "to step 2" in capsys.readouterr().out
    assert "PINCH_EXAMPLES = 11" in (tmp_path / "config.gin").read_text()
    from polyglot_jax.data import recipes

    assert recipes.counts("demo_pinch11_fi_sw_s0") == {"en": 57, "fi": 6, "sw": 5}
