"""NUM_EPOCHS: steps from the mixture's rows, and refused together with TRAIN_STEPS."""

import logging
import math

import pytest

from polyglot_jax.data import describe
from polyglot_jax.errors import ConfigError
from polyglot_jax.models import DecoderConfig
from polyglot_jax.training import loop, trainer

LENGTHS = {"targets": 48}


def test_unpacked_epochs_count_the_mixture_examples(demo_tasks, caplog):
    caplog.set_level(logging.INFO)
    examples = sum(r["examples"] for r in describe.describe("demo_pinch", length=48).values())
    steps = loop.resolve_steps(None, 3, "demo_pinch", LENGTHS, 8, pack=False)
    assert steps == math.ceil(3 * examples / 8)
    assert f"3 epochs of {examples} unpacked rows at batch size 8 = {steps} steps" in caplog.text


def test_packed_epochs_count_packed_rows(demo_tasks):
    long_rows = {"targets": 512}
    table = describe.describe("demo_pinch", length=512)
    examples = sum(r["examples"] for r in table.values())
    tokens = sum(r["tokens"] for r in table.values())
    rows = loop.resolve_steps(None, 1, "demo_pinch", long_rows, 1)  # batch 1: steps are rows
    assert tokens / 512 <= rows < examples
    assert loop.resolve_steps(None, 2.5, "demo_pinch", long_rows, 4) == math.ceil(2.5 * rows / 4)


@pytest.mark.parametrize(
    ("train_steps", "num_epochs", "message"),
    [
        (300, 3, r"TRAIN_STEPS \(300\) and NUM_EPOCHS \(3\)"),
        (None, None, r"TRAIN_STEPS \(None\) and NUM_EPOCHS \(None\)"),
        (None, 0, "NUM_EPOCHS must be a positive number, got 0"),
        (None, "3", "NUM_EPOCHS must be a positive number, got '3'"),
    ],
)
def test_bad_step_settings_are_named(train_steps, num_epochs, message):
    with pytest.raises(ConfigError, match=message):
        loop.resolve_steps(train_steps, num_epochs, "demo_pinch", LENGTHS, 4)


def test_train_runs_its_epochs_with_the_schedule_over_them(tmp_path, demo_tasks):
    tiny = DecoderConfig(
        vocab_size=1024,
        embed_dim=32,
        num_layers=2,
        num_heads=2,
        num_kv_heads=1,
        head_dim=16,
        mlp_dim=64,
        max_length=64,
        scan_layers=True,
    )
    seen = {}

    def optimizer(decay_steps):
        seen["decay_steps"] = decay_steps
        return trainer.make_optimizer(warmup_steps=1, decay_steps=decay_steps, schedule="cosine")

    result = loop.train(
        model_dir=str(tmp_path / "run"),
        mixture_or_task_name="demo_pinch",
        task_feature_lengths=LENGTHS,
        num_epochs=0.5,
        batch_size=16,
        model_config=tiny,
        optimizer=optimizer,
        describe_data=False,
        eval_every=0,
        progress=False,
        z_loss=1e-4,
    )
    expected = loop.resolve_steps(None, 0.5, "demo_pinch", LENGTHS, 16)
    assert result.step == seen["decay_steps"] == expected
    assert (tmp_path / "run" / f"checkpoint_{expected}").is_dir()
