"""Training: the loss falls on a fixed batch; a resumed run ends where an uninterrupted one does."""

import json
import logging
import re

import jax
import numpy as np
import optax
import pytest

from polyglot_jax.data import describe
from polyglot_jax.models import Decoder, DecoderConfig
from polyglot_jax.training import loop, optimizers, partitioning, runs, trainer
from polyglot_jax.training.config import DataConfig, TrainConfig

TINY = DecoderConfig(
    vocab_size=1024,
    embed_dim=32,
    num_layers=1,
    num_heads=2,
    num_kv_heads=1,
    head_dim=16,
    mlp_dim=64,
    max_length=64,
)


def fixed_batch(length=16, batch=4, vocab=64):
    t = np.random.RandomState(0).randint(2, vocab, (batch, length)).astype(np.int32)
    return {
        "decoder_target_tokens": t,
        "decoder_input_tokens": np.concatenate([np.zeros((batch, 1), np.int32), t[:, :-1]], 1),
        "decoder_loss_weights": np.ones_like(t),
        "decoder_segment_ids": np.ones_like(t),
        "decoder_positions": np.tile(np.arange(length, dtype=np.int32), (batch, 1)),
    }


def test_loss_decreases_on_a_fixed_batch(tiny_config):
    steps = trainer.ShardedSteps(
        Decoder(tiny_config),
        optimizers.make_optimizer(learning_rate=1e-2, warmup_steps=1, schedule="constant"),
        partitioning.create_mesh(),
        partitioning.standard_logical_axis_rules(),
        seq_length=16,
    )
    state = steps.init(0)
    batch = steps.place_batch(fixed_batch())
    losses = []
    for _ in range(30):
        state, metrics = steps.train(state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]
    assert int(state.step) == 30


QUICK = {"describe_data": False, "eval_every": 0}  # for tests about other things


def run(model_dir, steps, **kwargs):
    config = TrainConfig(
        str(model_dir),
        TINY,
        batch_size=4,
        train_steps=steps,
        optimizer=optimizers.make_optimizer(learning_rate=3e-3, warmup_steps=2, decay_steps=6),
        checkpoint_every=3,
        log_every=3,
        **kwargs,
    )
    return loop.train(config, DataConfig("demo_pinch", {"targets": 48}), progress=False)


def test_resume_ends_with_the_same_parameters(tmp_path, demo_tasks, caplog):
    caplog.set_level(logging.INFO)
    straight = run(tmp_path / "straight", 6)
    summary = json.loads((tmp_path / "straight" / "data_summary.json").read_text())
    assert summary["languages"] == describe.describe("demo_pinch", length=48)
    over = summary["languages"]["en"]["over_length"]
    assert over > 0
    assert (
        f"{over} of 46 en examples are longer than 48 tokens and will be truncated" in caplog.text
    )
    run(tmp_path / "resumed", 3)
    resumed = run(tmp_path / "resumed", 6)
    assert resumed.step == straight.step == 6
    assert set(straight.validation) == set(describe.describe("demo_pinch", split="validation"))
    assert all(np.isfinite(v) for v in straight.validation.values())
    assert resumed.validation == straight.validation
    for a, b in zip(jax.tree.leaves(straight.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (tmp_path / "resumed" / "checkpoint_6").is_dir()
    assert (tmp_path / "resumed" / "config.gin").exists()
    assert list((tmp_path / "resumed" / "train").glob("events.out.tfevents.*"))


def test_resume_with_another_seed_is_refused(tmp_path, demo_tasks):
    run(tmp_path / "r", 3, **QUICK)
    with pytest.raises(ValueError, match=r"different seed \(0, this run has 1\)"):
        run(tmp_path / "r", 6, seed=1, **QUICK)


def test_vocabulary_larger_than_the_model_is_an_error(tmp_path, demo_tasks):
    small = DecoderConfig(vocab_size=100, embed_dim=32, num_heads=2, num_kv_heads=1, head_dim=16)
    with pytest.raises(ValueError, match=r"DecoderConfig\.vocab_size is 100"):
        loop.train(
            TrainConfig(str(tmp_path), small, batch_size=2, train_steps=1),
            DataConfig("demo_en_only", {"targets": 32}),
            progress=False,
        )


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path, demo_tasks, caplog):
    run(tmp_path / "r", 6, **QUICK)
    latest = tmp_path / "r" / "checkpoint_6"
    for path in latest.rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    resumed = run(tmp_path / "r", 9, **QUICK)
    assert "checkpoint_6 is unreadable" in caplog.text
    straight = run(tmp_path / "s", 9, **QUICK)
    for a, b in zip(jax.tree.leaves(straight.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _steps(config, microbatches=1, optimizer=None):
    return trainer.ShardedSteps(
        Decoder(config),
        optimizer
        or optimizers.make_optimizer(learning_rate=1e-2, warmup_steps=1, schedule="constant"),
        partitioning.create_mesh(),
        partitioning.standard_logical_axis_rules(),
        seq_length=16,
        microbatches=microbatches,
    )


def test_gradient_accumulation_equals_one_big_batch(tiny_config):
    batch = fixed_batch(batch=8)
    batch["decoder_loss_weights"][:, :5] = 0  # uneven token counts per microbatch
    batch["decoder_loss_weights"][3, :] = 0
    results = []
    for microbatches in (1, 4):
        # SGD: parameters move by the gradient itself (Adam would magnify rounding in ~0 grads).
        steps = _steps(tiny_config, microbatches, optax.sgd(0.5))
        state = steps.init(0)
        for _ in range(2):
            state, metrics = steps.train(state, steps.place_batch(batch))
        results.append((state, metrics))
    (a, ma), (b, mb) = results
    np.testing.assert_allclose(float(ma["loss"]), float(mb["loss"]), rtol=1e-6)
    assert float(ma["num_tokens"]) == float(mb["num_tokens"]) == 7 * 11
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)


def test_bfloat16_compute_keeps_float32_master_weights(tiny_config):
    losses = {}
    for dtype in ("float32", "bfloat16"):
        steps = _steps(tiny_config.replace(dtype=dtype, param_dtype="float32"))
        state = steps.init(0)
        batch = steps.place_batch(fixed_batch())
        for _ in range(10):
            state, metrics = steps.train(state, batch)
        losses[dtype] = float(metrics["loss"])
        assert {x.dtype for x in jax.tree.leaves(state.params)} == {np.dtype("float32")}
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.05)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, demo_tasks):
    with pytest.raises(
        FloatingPointError, match=r"training diverged at step (\d+) .*; stopped"
    ) as info:
        config = TrainConfig(
            str(tmp_path),
            TINY,
            batch_size=2,
            train_steps=20,
            optimizer=optimizers.make_optimizer(learning_rate=1e9, warmup_steps=1),
            checkpoint_every=1,
            describe_data=False,
        )
        loop.train(config, DataConfig("demo_en_only", {"targets": 48}), progress=False)
    bad_step = int(re.search(r"at step (\d+)", str(info.value)).group(1))
    kept = int(re.search(r"checkpoint_(\d+)", str(info.value)).group(1))
    assert kept < bad_step
    steps_on_disk = sorted(int(p.name.split("_")[1]) for p in tmp_path.glob("checkpoint_*"))
    assert steps_on_disk[-1] == kept
    _, params = runs.load_model(tmp_path)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))
