"""The chunked loss (``DecoderConfig.loss_chunk``) equals the whole-logits loss and its gradient."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder, DecoderConfig
from polyglot_jax.training import trainer

# float32 on CPU: the chunked path computes logsumexp online over vocabulary chunks and adds
# the hidden-state gradient chunk by chunk, so sums are reassociated: a few float32 ulps.
RTOL, ATOL = 1e-5, 1e-6


def packed_batch(length: int = 12) -> dict[str, jax.Array]:
    """Two rows: three packed segments with padding, and one segment; some weights zero."""
    rng = np.random.RandomState(0)
    segments = np.asarray([[1] * 4 + [2] * 5 + [3] * 2 + [0], [1] * 10 + [0] * 2])
    positions = np.concatenate(
        [np.concatenate([np.arange(4), np.arange(5), np.arange(2), [0]])[None], np.zeros((1, 12))]
    )
    positions[1, :10] = np.arange(10)
    weights = (segments > 0).astype(np.float32)
    weights[0, [0, 4]] = 0.0  # prompt tokens
    return {
        "decoder_input_tokens": jnp.asarray(rng.randint(1, 64, (2, length)) * (segments > 0)),
        "decoder_target_tokens": jnp.asarray(rng.randint(1, 64, (2, length)) * (segments > 0)),
        "decoder_segment_ids": jnp.asarray(segments, jnp.int32),
        "decoder_positions": jnp.asarray(positions, jnp.int32),
        "decoder_loss_weights": jnp.asarray(weights),
    }


@pytest.mark.parametrize("tie", [False, True])
def test_chunked_loss_and_gradient_equal_the_whole_logits_path(tiny_config, tie):
    """Vocabulary chunks of 5 (twelve and a remainder of 4) and of 32 (two)."""
    cfg = tiny_config.replace(tie_embeddings=tie)
    batch = packed_batch()
    params = nn.unbox(Decoder(cfg).init(jax.random.PRNGKey(0), batch["decoder_input_tokens"]))
    params = params["params"]

    def run(loss_chunk: int):
        model = Decoder(cfg.replace(loss_chunk=loss_chunk))
        loss = functools.partial(trainer.loss_sums, model=model, z_loss=1e-2)
        return jax.jit(jax.value_and_grad(loss, has_aux=True))(params, batch)

    (whole, whole_sums), whole_grads = run(0)
    for chunk in (5, 32):
        check(run(chunk), (whole, whole_sums), whole_grads)


def check(chunked_run: tuple, whole_value: tuple, whole_grads: dict) -> None:
    (chunked, chunked_sums), chunked_grads = chunked_run
    whole, whole_sums = whole_value
    np.testing.assert_allclose(chunked, whole, rtol=RTOL, atol=ATOL)
    for name in whole_sums:
        np.testing.assert_allclose(chunked_sums[name], whole_sums[name], rtol=RTOL, atol=ATOL)
    assert float(whole_sums["z_loss_sum"]) > 0
    flat_whole = jax.tree_util.tree_leaves_with_path(whole_grads)
    flat_chunked = jax.tree.leaves(chunked_grads)
    for (path, a), b in zip(flat_whole, flat_chunked, strict=True):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL, err_msg=jax.tree_util.keystr(path))


def test_chunked_loss_holds_no_full_logits():
    """Compiled temp memory drops by most of the [batch, length, vocab] float32 logits."""
    cfg = DecoderConfig(vocab_size=32768, embed_dim=64, num_layers=1, num_heads=2, num_kv_heads=1)
    tokens = jax.ShapeDtypeStruct((2, 512), jnp.int32)
    batch = dict.fromkeys(
        ("decoder_input_tokens", "decoder_target_tokens", "decoder_segment_ids"), tokens
    )
    batch["decoder_loss_weights"] = jax.ShapeDtypeStruct((2, 512), jnp.float32)
    params = jax.eval_shape(Decoder(cfg).init, jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))

    def temp(loss_chunk: int) -> int:
        model = Decoder(cfg.replace(loss_chunk=loss_chunk))
        fn = jax.jit(jax.grad(lambda p, b: trainer.loss_sums(p, b, model)[0]))
        return (
            fn.lower(nn.unbox(params["params"]), batch)
            .compile()
            .memory_analysis()
            .temp_size_in_bytes
        )

    logits_bytes = 2 * 512 * 32768 * 4
    whole, chunked = temp(0), temp(4096)
    assert whole > 2 * logits_bytes
    assert chunked < logits_bytes / 2


def test_loss_chunk_is_validated():
    with pytest.raises(ConfigError, match="loss_chunk"):
        DecoderConfig(loss_chunk=-1)
