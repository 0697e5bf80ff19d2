"""The ragged cache path (``DecoderConfig.decode_attention="ragged"``) against the dense one.

Tokens (greedy, sampled, beam search, the serving engine's slots) are equal; logits of every
decode step agree within a fixed float32 tolerance; rows of different lengths and a cache
length that is not a multiple of the block are in every batch. The ragged path never reads
the blocks past the longest row (nor left of every sliding window): NaNs there change nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder, DecoderConfig, init_cache, kernels
from polyglot_jax.models.attention import alibi_slopes
from polyglot_jax.models.decode_attention import block_range, ragged_attention
from polyglot_jax.runtime import decoding
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.serving import engine, jobs

ATOL = 1e-5  # float32 logits, dense vs ragged
SIZES = dict(vocab_size=64, embed_dim=32, num_layers=2, mlp_dim=64, max_length=64, decode_block=8)
CONFIGS = {
    "llama_gqa": DecoderConfig(num_heads=4, num_kv_heads=2, head_dim=8, **SIZES),
    "mqa": DecoderConfig(num_heads=4, num_kv_heads=1, head_dim=8, **SIZES),
    "bloom_alibi": DecoderConfig(
        family="bloom",
        num_heads=4,
        num_kv_heads=4,
        head_dim=8,
        position="alibi",
        norm="layernorm",
        activation="gelu",
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
        embedding_norm=True,
        tie_embeddings=True,
        **SIZES,
    ),
    "mistral_window": DecoderConfig(
        family="mistral", num_heads=4, num_kv_heads=2, head_dim=8, sliding_window=5, **SIZES
    ),
    "llama_scanned": DecoderConfig(
        num_heads=4, num_kv_heads=2, head_dim=8, scan_layers=True, **SIZES
    ),
}
# Lengths 3..17: a bucket of 32, cache 32 + NEW = 44 keys (not a multiple of the block of 8).
PROMPTS = [[1, 2, 3], list(range(5, 16)), [7, 9] * 8 + [4], [3, 4, 5, 6, 7, 8]]
NEW = 12
STOP = 63  # the random models rarely choose it: most rows run NEW steps


def _params(cfg: DecoderConfig) -> dict:
    init = Decoder(cfg).init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))["params"]
    # Larger weights than the initializer's make the tiny models' logits less flat.
    return jax.tree.map(lambda x: x * 3.0, init)


def _both(cfg: DecoderConfig) -> tuple[Decoder, Decoder]:
    return Decoder(cfg.replace(decode_attention="dense")), Decoder(
        cfg.replace(decode_attention="ragged")
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_greedy_and_sampled_tokens_equal_dense(name):
    cfg = CONFIGS[name]
    params = _params(cfg)
    dense, ragged = _both(cfg)
    for sampling in (
        decoding.Sampling(),
        decoding.Sampling(temperature=0.9, top_k=20, top_p=0.95, repetition_penalty=1.2),
    ):
        want = decoding.generate(dense, params, PROMPTS, NEW, STOP, sampling, seeds=[1, 2, 3, 4])
        got = decoding.generate(ragged, params, PROMPTS, NEW, STOP, sampling, seeds=[1, 2, 3, 4])
        assert got == want, (name, sampling)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_decode_step_has_the_dense_logits(name):
    cfg = CONFIGS[name]
    params = _params(cfg)
    batch, width = len(PROMPTS), 32
    prompts = np.zeros((batch, width), np.int32)
    lengths = np.asarray([len(p) for p in PROMPTS], np.int32)
    for row, prompt in enumerate(PROMPTS):
        prompts[row, : len(prompt)] = prompt
    fed = np.asarray(jax.random.randint(jax.random.PRNGKey(1), (NEW, batch), 0, 64))

    def run(model: Decoder) -> list[np.ndarray]:
        apply = jax.jit(model.apply)
        cache = init_cache(cfg, batch, width + NEW)
        positions = jnp.broadcast_to(jnp.arange(width), prompts.shape)
        logits, cache = apply(
            {"params": params}, prompts, positions, cache=cache, logits_at=lengths - 1
        )
        steps = [np.asarray(logits[:, 0])]
        for step in range(NEW):
            at = (lengths + step)[:, None]
            logits, cache = apply({"params": params}, fed[step][:, None], at, cache=cache)
            steps.append(np.asarray(logits[:, 0]))
        return steps

    want, got = run(_both(cfg)[0]), run(_both(cfg)[1])
    for step, (a, b) in enumerate(zip(want, got, strict=True)):
        np.testing.assert_allclose(b, a, rtol=0, atol=ATOL, err_msg=f"{name} step {step}")


@pytest.mark.parametrize("name", ["bloom_alibi", "llama_gqa", "mistral_window"])
def test_beam_search_equals_dense(name):
    cfg = CONFIGS[name]
    params = _params(cfg)
    dense, ragged = _both(cfg)
    sampling = decoding.Sampling(num_beams=3, length_penalty=0.8)
    want = decoding.generate(dense, params, PROMPTS, NEW, STOP, sampling)
    got = decoding.generate(ragged, params, PROMPTS, NEW, STOP, sampling)
    assert got == want


def test_serving_slots_of_different_lengths_equal_dense(tmp_path, demo_tasks, random_run):
    """Two slots, four requests: rows join as others leave, each at its own length."""
    sizes = {k: v for k, v in SIZES.items() if k != "vocab_size"}
    cfg = DecoderConfig(
        vocab_size=demo_tasks.VOCABULARY.vocab_size,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
        **{**sizes, "max_length": 96},
    )
    chat = {"mixture_or_task_name": "demo_uniform"}
    answers = {}
    for mode in ("dense", "ragged"):
        run = random_run(tmp_path / mode, cfg.replace(decode_attention=mode), chat)
        batcher = engine.Engine(ChatModel.load(str(run)), max_batch=2)
        sampled = decoding.Sampling(temperature=0.8, top_p=0.9)
        submitted = [
            jobs.Job([[5, 6, 7]], [9], seeds=[0]),
            jobs.Job([list(range(10, 40))], [5], seeds=[1], sampling=sampled),
            jobs.Job([[8] * 17], [7], seeds=[2]),
            jobs.Job([[11, 12]], [11], seeds=[3], sampling=sampled),
        ]
        futures = [batcher.submit(job) for job in submitted]
        answers[mode] = [[row.tokens for row in f.result(timeout=300)] for f in futures]
        batcher.close()
    assert answers["ragged"] == answers["dense"]
    assert any(answers["dense"])


def _cache(key: jax.Array, batch: int, kv_heads: int, length: int, dim: int) -> jax.Array:
    return jax.random.normal(key, (batch, kv_heads, length, dim))  # [b, kv, length, d]


@pytest.mark.parametrize("window", [None, 6])
def test_blocks_past_the_longest_row_are_never_read(window):
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    q = jax.random.normal(keys[0], (2, 1, 4, 8))  # [b, t, heads, d]
    k, v = _cache(keys[1], 2, 2, 64, 8), _cache(keys[2], 2, 2, 64, 8)
    positions = jnp.asarray([[19], [29]])  # blocks of 8: 0..3 hold the keys
    want = ragged_attention(q, k, v, positions, block=8, sliding_window=window)
    poison = jnp.arange(64) >= 32  # past block 3
    if window is not None:  # keys 14.. and 24.. are in the windows: block 0 is read by none
        poison |= jnp.arange(64) < 8
        assert [int(x) for x in block_range(positions, 8, window)] == [1, 4]
    bad_k = jnp.where(poison[None, None, :, None], jnp.nan, k)
    bad_v = jnp.where(poison[None, None, :, None], jnp.nan, v)
    got = ragged_attention(q, bad_k, bad_v, positions, block=8, sliding_window=window)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_a_rows_output_does_not_depend_on_the_longest_row():
    """More loop trips for a longer neighbour leave a short row's output bit-for-bit equal."""
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    q = jax.random.normal(keys[0], (2, 1, 4, 8))
    k, v = _cache(keys[1], 2, 1, 64, 8), _cache(keys[2], 2, 1, 64, 8)
    slopes = alibi_slopes(4)
    run = jax.jit(lambda p: ragged_attention(q, k, v, p, block=8, slopes=slopes))
    short = run(jnp.asarray([[5], [6]]))
    long = run(jnp.asarray([[5], [60]]))
    np.testing.assert_array_equal(np.asarray(long[0]), np.asarray(short[0]))


def _one_line(error: pytest.ExceptionInfo) -> str:
    """The message, one line (gin adds a line naming the configurable, shown after it)."""
    message, *rest = str(error.value).splitlines()
    assert all(line.startswith("  In call to configurable") for line in rest), rest
    return message


def test_a_bad_setting_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as bad:
        DecoderConfig(decode_attention="flash")
    assert _one_line(bad) == (
        "DecoderConfig.decode_attention must be one of ('auto', 'dense', 'ragged'), got 'flash'"
    )
    with pytest.raises(ConfigError) as bad:
        DecoderConfig(decode_block=0)
    assert _one_line(bad) == "DecoderConfig.decode_block must be a positive integer, got 0"


def test_the_dense_setting_and_a_dense_mask_choose_the_dense_path():
    cfg = CONFIGS["llama_gqa"]
    assert kernels.select_decode(cfg) == "ragged"
    assert kernels.select_decode(cfg.replace(decode_attention="dense")) == "dense"
    assert kernels.select_decode(cfg, structured=False) == "dense"
