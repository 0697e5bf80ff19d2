"""NUM_EPOCHS and BATCH_UNIT: steps from the mixture's rows or examples; bad settings named."""

import logging
import math

import pytest

from polyglot_jax.data import describe
from polyglot_jax.errors import ConfigError
from polyglot_jax.models import DecoderConfig
from polyglot_jax.training import budget, loop, optimizers
from polyglot_jax.training.config import DataConfig, TrainConfig

LENGTHS = {"targets": 48}


def settings(steps, epochs, batch_size=4, **kwargs):
    """A run's settings for step plans (its directory and model do not count)."""
    return TrainConfig(
        "/unused", DecoderConfig(), batch_size, train_steps=steps, num_epochs=epochs, **kwargs
    )


def plan_steps(steps, epochs, lengths, batch_size, batch_unit="rows", pack=True, multiple_of=1):
    config = settings(steps, epochs, batch_size, batch_unit=batch_unit)
    return budget.plan_steps(config, DataConfig("demo_pinch", lengths, pack=pack), multiple_of)


def test_unpacked_epochs_count_the_mixture_examples(demo_tasks, caplog):
    caplog.set_level(logging.INFO)
    examples = sum(r["examples"] for r in describe.describe("demo_pinch", length=48).values())
    plan = plan_steps(None, 3, LENGTHS, 8, pack=False)
    assert plan.steps == math.ceil(3 * examples / 8)
    assert (plan.examples, plan.rows, plan.rows_per_step) == (examples, examples, 8)
    assert f"{plan.steps} steps of 8 examples (8 rows) per update" in caplog.text


def test_packed_epochs_count_packed_rows(demo_tasks):
    long_rows = {"targets": 512}
    table = describe.describe("demo_pinch", length=512)
    examples = sum(r["examples"] for r in table.values())
    tokens = sum(r["tokens"] for r in table.values())
    rows = plan_steps(None, 1, long_rows, 1).steps  # batch 1: steps = rows
    assert tokens / 512 <= rows < examples
    plan = plan_steps(None, 2.5, long_rows, 4)
    assert (plan.steps, plan.rows_per_step) == (math.ceil(2.5 * rows / 4), 4)


def test_examples_per_update_set_the_steps_and_packed_rows_carry_them(demo_tasks):
    long_rows = {"targets": 512}
    examples = sum(r["examples"] for r in describe.describe("demo_pinch", length=512).values())
    rows = plan_steps(None, 1, long_rows, 1).steps
    plan = plan_steps(None, 3, long_rows, 12, batch_unit="examples")
    assert (plan.examples, plan.rows) == (examples, rows)
    assert plan.steps == math.ceil(3 * examples / 12)  # the paper's count, not the rows'
    assert plan.rows_per_step == max(1, round(12 * rows / examples))
    fixed = plan_steps(7, None, long_rows, 12, "examples", multiple_of=4)
    assert fixed.steps == 7 and fixed.rows_per_step % 4 == 0


@pytest.mark.parametrize(
    ("train_steps", "num_epochs", "message"),
    [
        (300, 3, r"TRAIN_STEPS \(300\) and NUM_EPOCHS \(3\)"),
        (None, None, r"TRAIN_STEPS \(None\) and NUM_EPOCHS \(None\)"),
        (None, 0, "NUM_EPOCHS must be a positive number, got 0"),
        (None, "3", "NUM_EPOCHS must be a positive number, got '3'"),
        (0, None, "TRAIN_STEPS .* must be a positive integer, got 0"),
    ],
)
def test_bad_step_settings_are_named(train_steps, num_epochs, message):
    with pytest.raises(ConfigError, match=message):
        settings(train_steps, num_epochs)


def test_unknown_batch_unit_is_named():
    with pytest.raises(ConfigError, match="BATCH_UNIT must be one of"):
        settings(3, None, batch_unit="tokens")


@pytest.mark.parametrize(
    ("ratio", "steps", "expected"), [(0.03, 600, 18), (0.03, 2000, 60), (0.1, 7, 1)]
)
def test_warmup_ratio_counts_as_hugging_face(ratio, steps, expected):
    assert optimizers._warmup_from_ratio(ratio, 0, steps) == expected
    optimizers.make_optimizer(warmup_steps=0, warmup_ratio=ratio, decay_steps=steps)


def test_warmup_steps_and_ratio_together_are_refused():
    with pytest.raises(ConfigError, match=r"WARMUP_STEPS \(30\) and WARMUP_RATIO"):
        optimizers.make_optimizer(warmup_steps=30, warmup_ratio=0.03, decay_steps=100)


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
        return optimizers.make_optimizer(warmup_steps=1, decay_steps=decay_steps, schedule="cosine")

    config = TrainConfig(
        str(tmp_path / "run"),
        tiny,
        batch_size=16,
        num_epochs=0.5,
        optimizer=optimizer,
        describe_data=False,
        eval_every=0,
        z_loss=1e-4,
    )
    result = loop.train(config, DataConfig("demo_pinch", LENGTHS), progress=False)
    expected = plan_steps(None, 0.5, LENGTHS, 16).steps
    assert result.step == seen["decay_steps"] == expected
    assert (tmp_path / "run" / f"checkpoint_{expected}").is_dir()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_decay_ends_at_the_final_learning_rate_ratio(schedule):
    import jax.numpy as jnp

    optimizer = optimizers.make_optimizer(  # b1 = b2 = 0: every update is -lr * sign(gradient)
        learning_rate=1.0,
        warmup_steps=0,
        decay_steps=10,
        schedule=schedule,
        final_lr_ratio=0.1,
        max_grad_norm=None,
        b1=0.0,
        b2=0.0,
        eps=1e-30,
    )
    params = {"w": jnp.ones((2, 2))}
    state = optimizer.init(params)
    rates = []
    for _ in range(12):
        updates, state = optimizer.update({"w": jnp.ones((2, 2))}, state, params)
        rates.append(-float(updates["w"][0, 0]))
    assert rates[0] == pytest.approx(1.0)
    assert rates[10] == rates[11] == pytest.approx(0.1)  # pasero's min_lr = lr / 10


def test_bad_final_learning_rate_ratio_is_named():
    with pytest.raises(ConfigError, match="FINAL_LR_RATIO must be a number in"):
        optimizers.make_optimizer(final_lr_ratio=2, decay_steps=10)
