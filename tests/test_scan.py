"""Scanned layers: same numbers as unrolled ones, stacked parameters and cache, remat inside."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax.models import Decoder, init_cache
from polyglot_jax.models.decoder import stack_layers, unstack_layers
from polyglot_jax.training import optimizers, partitioning, trainer

LAYERS = 3


@pytest.fixture()
def configs(tiny_config):
    unrolled = tiny_config.replace(num_layers=LAYERS)
    return unrolled, unrolled.replace(scan_layers=True)


def tokens(shape, seed=0):
    return jnp.asarray(np.random.RandomState(seed).randint(1, 64, shape), jnp.int32)


def init(cfg, length=8):
    return nn.unbox(Decoder(cfg).init(jax.random.PRNGKey(0), tokens((1, length)))["params"])


@pytest.mark.parametrize(
    "changes",
    [{}, {"parallel_block": True, "shared_block_norm": True}, {"sliding_window": 3}],
    ids=["sequential", "parallel", "sliding_window"],
)
def test_scanned_logits_equal_unrolled_ones(configs, changes):
    unrolled, scanned = (c.replace(**changes) for c in configs)
    params = init(unrolled)
    stacked = stack_layers(params, LAYERS)
    # [layers, embed, heads, head_dim]: one leading layer axis on every block parameter.
    assert stacked["layers"]["attention"]["q_proj"]["kernel"].shape == (LAYERS, 32, 4, 8)
    assert jax.tree.structure(init(scanned)) == jax.tree.structure(stacked)
    batch = tokens((2, 12), 1)
    want, _ = Decoder(unrolled).apply({"params": params}, batch)
    got, _ = Decoder(scanned).apply({"params": stacked}, batch)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(unstack_layers(stacked)), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_stacked_parameters_carry_an_unsharded_layers_axis(configs):
    _, scanned = configs
    boxed = Decoder(scanned).init(jax.random.PRNGKey(0), tokens((1, 4)))
    specs = nn.get_partition_spec(boxed["params"])
    assert tuple(specs["layers"]["attention"]["q_proj"]["kernel"]) == (
        "layers",
        "embed",
        "heads",
        "kv",
    )
    assert tuple(specs["layers"]["input_norm"]["scale"]) == ("layers", "embed")
    assert tuple(specs["embed"]["embedding"]) == ("vocab", "embed")
    mesh_axes = nn.logical_to_mesh_axes(
        ("layers", "embed", "heads", "kv"), partitioning.standard_logical_axis_rules()
    )
    assert tuple(mesh_axes) == (None, "fsdp", "model", None)


def test_kv_cache_decode_with_a_stacked_cache(configs):
    _, scanned = configs
    model, params = Decoder(scanned), init(scanned)
    batch = tokens((3, 14), 3)
    full, _ = model.apply({"params": params}, batch)
    cache = init_cache(scanned, 3, 32)
    assert cache["k"].shape == (LAYERS, 3, scanned.num_kv_heads, 32, scanned.head_dim)
    prefill, cache = model.apply({"params": params}, batch[:, :9], cache=cache)
    assert cache["v"].shape == (LAYERS, 3, scanned.num_kv_heads, 32, scanned.head_dim)
    steps = [prefill]
    for t in range(9, 14):
        logits, cache = model.apply(
            {"params": params}, batch[:, t : t + 1], jnp.full((3, 1), t), cache=cache
        )
        steps.append(logits)
    np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("remat", ["full", "dots", "dots_no_batch"])
def test_remat_in_the_scanned_body_keeps_the_gradient(configs, remat):
    _, scanned = configs
    params, batch = init(scanned), tokens((2, 10), 2)

    def loss(cfg, p):
        logits, _ = Decoder(cfg).apply({"params": p}, batch)
        return jnp.mean(jax.nn.logsumexp(logits, -1))  # [] a smooth function of every layer

    want = jax.grad(lambda p: loss(scanned, p))(params)
    got = jax.grad(lambda p: loss(scanned.replace(remat=remat), p))(params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)


def test_the_scanned_train_step_compiles_one_layer_body(configs):
    _, scanned = configs
    steps = trainer.ShardedSteps(
        Decoder(scanned.replace(remat="full")),
        optimizers.make_optimizer(warmup_steps=1),
        partitioning.create_mesh(),
        partitioning.standard_logical_axis_rules(),
        seq_length=8,
    )
    spec = jax.ShapeDtypeStruct((2, 8), jnp.int32, sharding=steps.batch_sharding)
    names = ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights")
    with steps.context():
        hlo = steps._train.lower(steps.abstract_state, dict.fromkeys(names, spec)).as_text()
    assert "while" in hlo  # forward and backward each loop over the layers
    assert steps.abstract_state.params["layers"]["mlp"]["up_proj"]["kernel"].shape[0] == LAYERS
