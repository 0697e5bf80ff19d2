"""Decode step time, dense vs ragged attention over the KV cache (``decode_attention``).

A random Llama-style decoder (``--layers``, ``--hidden``, grouped-query heads) reads
``--batch`` prompts of ``--prompt`` tokens into a cache of ``max_length`` slots, then decodes
``--steps`` greedy tokens in one jitted ``lax.scan`` (as the decode loops do). The dense path
scores all ``max_length`` slots every step; the ragged path reads blocks of ``--block`` keys up
to the longest filled row.
The time per step (best of ``--repeats``, compilation excluded) is printed for each cache size,
with the ratio; both paths choose the same tokens (checked).

  python benchmarks/decode_attention.py [--max_lengths 512,2048 --prompt 32 --batch 4]

Runs unchanged on CPU, GPU or TPU (the default JAX backend).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from polyglot_jax.models import Decoder, DecoderConfig, init_cache


def model_config(args: argparse.Namespace, max_length: int) -> DecoderConfig:
    """The benchmarked decoder, its cache sized ``max_length``."""
    return DecoderConfig(
        vocab_size=args.vocab,
        embed_dim=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        head_dim=args.hidden // args.heads,
        mlp_dim=4 * args.hidden,
        max_length=max_length,
        dtype=args.dtype,
        param_dtype=args.dtype,
        decode_block=args.block,
    )


def step_seconds(
    model: Decoder, params: Any, prompts: np.ndarray, steps: int, repeats: int
) -> tuple[float, np.ndarray]:
    """Seconds per decode step (best of ``repeats``) and the greedy tokens [batch, steps]."""
    cfg = model.config
    batch, width = prompts.shape

    @jax.jit
    def prefill(params: Any, prompts: jax.Array) -> tuple[jax.Array, Any]:
        cache = init_cache(cfg, batch, cfg.max_length)
        positions = jnp.broadcast_to(jnp.arange(width), prompts.shape)
        logits, cache = model.apply({"params": params}, prompts, positions, cache=cache)
        return jnp.argmax(logits[:, -1], axis=-1).astype(jnp.int32), cache

    @jax.jit
    def decode(params: Any, token: jax.Array, cache: Any) -> jax.Array:
        """``steps`` greedy steps in one ``lax.scan``, as the decode loops run them."""

        def one(carry: tuple[jax.Array, Any], i: jax.Array) -> tuple[tuple, jax.Array]:
            token, cache = carry
            positions = jnp.full((batch, 1), width + i, jnp.int32)
            logits, cache = model.apply({"params": params}, token[:, None], positions, cache=cache)
            token = jnp.argmax(logits[:, 0], axis=-1).astype(jnp.int32)
            return (token, cache), token

        return jax.lax.scan(one, (token, cache), jnp.arange(steps))[1].T  # [batch, steps]

    best, tokens = float("inf"), None
    for repeat in range(repeats + 1):  # pass 0 compiles
        token, cache = jax.block_until_ready(prefill(params, prompts))
        start = time.perf_counter()
        tokens = jax.block_until_ready(decode(params, token, cache))
        if repeat:
            best = min(best, (time.perf_counter() - start) / steps)
    return best, np.asarray(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_lengths", default="512,2048", help="cache sizes, comma-separated")
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens per row")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=32, help="decode steps timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv_heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--block", type=int, default=128, help="decode_block of the ragged path")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    prompts = rng.integers(0, args.vocab, (args.batch, args.prompt)).astype(np.int32)
    rows = []
    for max_length in (int(x) for x in args.max_lengths.split(",")):
        cfg = model_config(args, max_length)
        params = Decoder(cfg).init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))["params"]
        times, outputs = {}, {}
        for mode in ("dense", "ragged"):
            model = Decoder(cfg.replace(decode_attention=mode))
            times[mode], outputs[mode] = step_seconds(
                model, params, prompts, args.steps, args.repeats
            )
        same = bool(np.array_equal(outputs["dense"], outputs["ragged"]))
        rows.append((max_length, times["dense"], times["ragged"], same))

    device = jax.devices()[0]
    print(
        f"{device.platform} ({device.device_kind}), {args.layers} layers, hidden {args.hidden}, "
        f"{args.heads} heads / {args.kv_heads} kv heads, {args.dtype}, batch {args.batch}, "
        f"prompt {args.prompt}, {args.steps} steps timed (positions {args.prompt}.."
        f"{args.prompt + args.steps - 1}), block {args.block}"
    )
    print("| max_length | dense ms/step | ragged ms/step | dense / ragged | same tokens |")
    print("|---|---|---|---|---|")
    for max_length, dense, ragged, same in rows:
        print(
            f"| {max_length} | {1000 * dense:.2f} | {1000 * ragged:.2f} | "
            f"{dense / ragged:.1f}x | {same} |"
        )


if __name__ == "__main__":
    main()
