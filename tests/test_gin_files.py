"""Gin files: order does not change a run, conflicts are refused by name, defaults are logged."""

import logging

import gin
import pytest

from polyglot_jax import gin_utils
from polyglot_jax.models import DecoderConfig

RUN = ['MODEL_DIR = "/tmp/unused"']


def configure(*files, bindings=()):
    return gin_utils.configure(gin_utils.GinArgs(files=list(files), bindings=[*RUN, *bindings]))


def settings() -> dict:
    """What a run would train: the model, the mixture and the learning rate."""
    cfg = DecoderConfig()
    return {
        "layers": cfg.num_layers,
        "embed": cfg.embed_dim,
        "lora": cfg.lora,
        "mixture": repr(gin.query_parameter("%MIXTURE_OR_TASK_NAME")),
        "learning_rate": gin.query_parameter("%LEARNING_RATE"),
    }


@pytest.mark.parametrize(
    "files",
    [
        ("models/llama2_7b.gin", "mix_pinch.gin"),
        ("mix_pinch.gin", "models/llama2_7b.gin"),
    ],
)
def test_a_model_file_is_used_whatever_its_place(files):
    configure(*files)
    assert settings()["layers"] == 32 and settings()["embed"] == 4096


def test_mixture_and_lora_files_in_either_order_give_one_run():
    configure("models/tiny.gin", "mix_pinch.gin", "runs/lora.gin")
    first = settings()
    configure("models/tiny.gin", "runs/lora.gin", "mix_pinch.gin")
    second = settings()
    assert first == second
    assert first["learning_rate"] == 3e-4 and first["lora"].rank == 8
    assert "pinch_mixture" in first["mixture"]


def test_two_files_that_disagree_are_refused_by_name():
    with pytest.raises(gin_utils.GinError) as e:
        configure("models/tiny.gin", "models/llama2_7b.gin")
    message = str(e.value)
    assert "config.DecoderConfig.vocab_size is set to 1024 by" in message
    assert "tiny.gin:7" in message and "llama2_base.gin" in message and "32000" in message


def test_command_line_bindings_settle_a_conflict():
    bindings = ["config.DecoderConfig.num_layers = 2", 'MIXTURE_OR_TASK_NAME = "demo_pinch"']
    configure("models/llama2_7b.gin", "runs/finetune.gin", bindings=bindings)
    assert DecoderConfig().num_layers == 2


def test_a_mistyped_macro_is_refused_with_a_suggestion():
    with pytest.raises(gin_utils.GinError, match=r"unknown gin macro BATCH_SIZ: .*BATCH_SIZE"):
        configure("models/tiny.gin", "runs/finetune.gin", bindings=["BATCH_SIZ = 8"])


def test_default_model_is_logged(caplog):
    caplog.set_level(logging.WARNING)
    configure("mix_pinch.gin")
    assert settings()["embed"] == 128
    assert "no gin file sets MODEL_CONFIG: using the default models/tiny.gin" in caplog.text


def test_folders_named_like_config_folders_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "models" / "tiny.gin").mkdir(parents=True)
    (tmp_path / "runs" / "finetune.gin").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    configure("models/llama2_7b.gin", "mix_pinch.gin")
    assert settings()["layers"] == 32


def test_an_include_cycle_is_named(tmp_path):
    (tmp_path / "a.gin").write_text("include 'b.gin'\n")
    (tmp_path / "b.gin").write_text("include 'a.gin'\n")
    with pytest.raises(gin_utils.GinError, match="includes itself"):
        configure(str(tmp_path / "a.gin"))


def test_a_syntax_error_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.gin").write_text("X = 1\nY = [1, 2\n")
    with pytest.raises(gin_utils.GinError, match=r"bad\.gin:\d+"):
        configure(str(tmp_path / "bad.gin"))
