"""PaLM-style training: the z-loss term and its gradient, Adafactor's factored state."""

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from polyglot_jax import gin_utils
from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder, DecoderConfig
from polyglot_jax.training import optimizers, partitioning, trainer

# Wide enough for Adafactor to factor its matrices (dimensions >= 128).
WIDE = DecoderConfig(
    vocab_size=256,
    embed_dim=128,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=32,
    mlp_dim=256,
    max_length=64,
)


def fixed_batch(length=16, batch=4, vocab=64):
    t = np.random.RandomState(0).randint(2, vocab, (batch, length)).astype(np.int32)
    weights = np.ones_like(t)
    weights[:, :3] = 0  # prompt tokens: no loss
    return {
        "decoder_target_tokens": t,
        "decoder_input_tokens": np.concatenate([np.zeros((batch, 1), np.int32), t[:, :-1]], 1),
        "decoder_loss_weights": weights,
    }


def params_of(cfg):
    return Decoder(cfg).init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))["params"]


def test_z_loss_is_its_formula(tiny_config):
    model, batch = Decoder(tiny_config), fixed_batch()
    params = nn.unbox(params_of(tiny_config))
    plain, plain_sums = trainer.loss_sums(params, batch, model)
    total, sums = trainer.loss_sums(params, batch, model, z_loss=1e-4)
    logits, _ = model.apply({"params": params}, batch["decoder_input_tokens"])
    log_z = jax.nn.logsumexp(logits, axis=-1)  # [batch, length]
    w = batch["decoder_loss_weights"]
    expected = 1e-4 * np.sum(w * np.square(log_z)) / w.sum()
    assert plain_sums["z_loss_sum"] == 0.0
    np.testing.assert_allclose(trainer.mean_metrics(sums)["z_loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(total - plain, sums["z_loss_sum"], rtol=1e-4)
    assert sums["loss_sum"] == plain_sums["loss_sum"]  # the logged loss stays cross entropy


def test_z_loss_gradient_pulls_logsumexp_toward_zero(tiny_config):
    model, batch = Decoder(tiny_config), fixed_batch()
    params = nn.unbox(params_of(tiny_config))

    def mean_log_z(p):
        logits, _ = model.apply({"params": p}, batch["decoder_input_tokens"])
        return float(jnp.mean(jnp.abs(jax.nn.logsumexp(logits, -1))))

    def z_only(p):
        return trainer.loss_sums(p, batch, model, z_loss=1.0)[1]["z_loss_sum"]

    before = mean_log_z(params)
    assert before > 1.0  # log(vocab) at initialisation
    for _ in range(5):
        grads = jax.grad(z_only)(params)
        params = jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads)
    assert mean_log_z(params) < 0.9 * before


@pytest.mark.parametrize("scan", [False, True], ids=["unrolled", "scanned"])
def test_adafactor_state_is_factored(scan):
    cfg = WIDE.replace(scan_layers=scan)
    params = jax.eval_shape(lambda: nn.unbox(params_of(cfg)))
    adafactor = optimizers.make_optimizer(name="adafactor", max_grad_norm=None)
    state = jax.eval_shape(adafactor.init, params)
    factored = [s for s in jax.tree.leaves(state, is_leaf=_is_factored) if _is_factored(s)]
    assert len(factored) == 1
    up = "layers" if scan else "layers_0"
    lead = (2,) if scan else ()
    v_row = factored[0].v_row[up]["mlp"]["up_proj"]["kernel"]
    v_col = factored[0].v_col[up]["mlp"]["up_proj"]["kernel"]
    # A [embed, mlp] matrix keeps a row vector [embed] and a column vector [mlp].
    assert (v_row.shape, v_col.shape) == ((*lead, 128), (*lead, 256))
    adam = jax.eval_shape(optimizers.make_optimizer(max_grad_norm=None).init, params)
    size = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    assert _count(adam) >= 2 * size
    # The [embed, heads, head_dim] attention kernels (head_dim 32 < 128) keep a full moment.
    assert _count(state) < 0.5 * size


def _is_factored(x):
    return isinstance(x, optax.FactoredState)


def _count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("scan", [False, True], ids=["unrolled", "scanned"])
def test_adafactor_with_z_loss_reduces_the_loss_on_a_fixed_batch(scan):
    steps = trainer.ShardedSteps(
        Decoder(WIDE.replace(scan_layers=scan)),
        optimizers.make_optimizer(
            name="adafactor", learning_rate=0.1, warmup_steps=1, schedule="constant"
        ),
        partitioning.create_mesh(),
        partitioning.standard_logical_axis_rules(),
        seq_length=16,
        z_loss=1e-4,
    )
    state = steps.init(0)
    batch = steps.place_batch(fixed_batch())
    losses = []
    for _ in range(10):
        state, metrics = steps.train(state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.8 * losses[0]
    assert float(metrics["z_loss"]) > 0


def test_unknown_optimizer_is_named():
    with pytest.raises(ConfigError, match=r"OPTIMIZER .* got 'sgd'"):
        optimizers.make_optimizer(name="sgd")


def test_palm_finetune_gin_sets_the_palm_recipe():
    gin_utils.configure(
        gin_utils.GinArgs(
            files=["runs/palm_finetune.gin"],
            bindings=['MODEL_DIR = "/tmp/unused"', 'MIXTURE_OR_TASK_NAME = "demo_pinch"'],
        )
    )
    cfg = DecoderConfig()
    assert (cfg.family, cfg.parallel_block, cfg.scan_layers) == ("palm", True, True)
    assert gin.query_parameter("%OPTIMIZER") == "adafactor"
    assert gin.query_parameter("%Z_LOSS") == 1e-4
    assert gin.query_parameter("%NUM_EPOCHS") == 3
    assert gin.query_parameter("%TRAIN_STEPS") is None
