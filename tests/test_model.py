"""Causal masking, packing isolation and KV-cache decoding of the decoder."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax.models import Decoder, DecoderConfig, init_cache


@pytest.fixture()
def model_and_params(tiny_config):
    model = Decoder(tiny_config)
    tokens = jnp.ones((1, 8), jnp.int32)
    params = nn.unbox(model.init(jax.random.PRNGKey(0), tokens)["params"])
    return model, params


def random_tokens(shape, seed=0, vocab=64):
    return jnp.asarray(np.random.RandomState(seed).randint(1, vocab, shape), jnp.int32)


def test_changing_a_future_token_never_changes_an_earlier_logit(model_and_params):
    model, params = model_and_params
    tokens = random_tokens((2, 12))
    logits, _ = model.apply({"params": params}, tokens)
    changed = tokens.at[:, 7].set((tokens[:, 7] + 1) % 64)
    logits2, _ = model.apply({"params": params}, changed)
    np.testing.assert_array_equal(logits[:, :7], logits2[:, :7])
    assert not np.allclose(logits[:, 7:], logits2[:, 7:])


def test_packed_segments_do_not_see_each_other(model_and_params):
    model, params = model_and_params
    a, b = random_tokens((1, 5), 1), random_tokens((1, 7), 2)
    packed = jnp.concatenate([a, b, jnp.zeros((1, 4), jnp.int32)], axis=1)
    segments = jnp.asarray([[1] * 5 + [2] * 7 + [0] * 4])
    positions = jnp.asarray([list(range(5)) + list(range(7)) + [0] * 4])
    logits, _ = model.apply({"params": params}, packed, positions, segments)
    alone_b, _ = model.apply({"params": params}, b)
    alone_a, _ = model.apply({"params": params}, a)
    np.testing.assert_allclose(logits[:, :5], alone_a, atol=1e-5)
    np.testing.assert_allclose(logits[:, 5:12], alone_b, atol=1e-5)
    assert np.all(np.isfinite(logits))


def test_kv_cache_decode_matches_full_forward(model_and_params, tiny_config):
    model, params = model_and_params
    tokens = random_tokens((3, 14), 3)
    full, _ = model.apply({"params": params}, tokens)
    cache = init_cache(tiny_config, 3, 32)
    prefill, cache = model.apply({"params": params}, tokens[:, :9], cache=cache)
    steps = [prefill]
    for t in range(9, 14):
        step_logits, cache = model.apply(
            {"params": params}, tokens[:, t : t + 1], jnp.full((3, 1), t), cache=cache
        )
        steps.append(step_logits)
    np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=1e-5, rtol=1e-5)


def test_logits_at_selects_one_position_per_row(model_and_params, tiny_config):
    model, params = model_and_params
    tokens = random_tokens((3, 10), 6)
    full, _ = model.apply({"params": params}, tokens)
    at = jnp.asarray([9, 4, 0])
    cache = init_cache(tiny_config, 3, 16)
    picked, cache = model.apply({"params": params}, tokens, cache=cache, logits_at=at)
    assert picked.shape == (3, 1, tiny_config.vocab_size)
    np.testing.assert_allclose(picked[:, 0], full[jnp.arange(3), at], atol=1e-5, rtol=1e-5)
    nxt, _ = model.apply({"params": params}, tokens[:, :1], jnp.full((3, 1), 10), cache=cache)
    ref, _ = model.apply({"params": params}, jnp.concatenate([tokens, tokens[:, :1]], axis=1))
    np.testing.assert_allclose(nxt[:, 0], ref[:, -1], atol=1e-5, rtol=1e-5)  # cache is complete


def test_rows_at_different_positions_share_one_cache(model_and_params, tiny_config):
    model, params = model_and_params
    long, short = random_tokens((1, 10), 4), random_tokens((1, 6), 5)
    prompts = jnp.concatenate([long, jnp.pad(short, ((0, 0), (0, 4)))], axis=0)
    cache = init_cache(tiny_config, 2, 16)
    _, cache = model.apply({"params": params}, prompts, cache=cache)
    nxt = jnp.asarray([[7], [9]])
    step, _ = model.apply({"params": params}, nxt, jnp.asarray([[10], [6]]), cache=cache)
    ref_long, _ = model.apply({"params": params}, jnp.concatenate([long, nxt[:1]], axis=1))
    ref_short, _ = model.apply({"params": params}, jnp.concatenate([short, nxt[1:]], axis=1))
    np.testing.assert_allclose(step[0, 0], ref_long[0, -1], atol=1e-5)
    np.testing.assert_allclose(step[1, 0], ref_short[0, -1], atol=1e-5)


def test_parameters_carry_logical_axes(tiny_config):
    boxed = Decoder(tiny_config).init(jax.random.PRNGKey(0), jnp.ones((1, 4), jnp.int32))
    specs = nn.get_partition_spec(boxed["params"])
    assert tuple(specs["layers_0"]["attention"]["q_proj"]["kernel"]) == ("embed", "heads", "kv")
    assert tuple(specs["layers_1"]["mlp"]["down_proj"]["kernel"]) == ("mlp", "embed")
    assert tuple(specs["embed"]["embedding"]) == ("vocab", "embed")


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="num_kv_heads"):
        DecoderConfig(num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match="dtype: unknown dtype 'float33'"):
        DecoderConfig(dtype="float33")
