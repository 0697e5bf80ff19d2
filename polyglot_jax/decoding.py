"""Batched generation: one prefill, then one token per step in a jitted ``lax.while_loop``.

Prompts are right-padded to a bucket length; each row continues from its own length, so short
prompts waste no decode steps and need no left padding. Greedy when ``temperature == 0``,
otherwise sampling from ``softmax(logits / temperature)``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from polyglot_jax.models import Decoder, init_cache


@dataclasses.dataclass(frozen=True)
class Generation:
    """Generated continuations of a batch of prompts.

    Attributes:
      tokens: per prompt, the new token ids without the stop token.
      finish_reasons: ``"eos"`` when the model stopped, ``"length"`` at ``max_new_tokens``.
    """

    tokens: list[list[int]]
    finish_reasons: list[str]


def bucket_length(length: int, multiple: int = 16) -> int:
    """``length`` rounded up to a multiple, so few prompt shapes need compiling."""
    return max(multiple, -(-length // multiple) * multiple)


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens"))
def _generate(
    model: Decoder,
    params: Any,
    prompts: jax.Array,  # [batch, prompt_length] right-padded
    lengths: jax.Array,  # [batch]
    rng: jax.Array,
    temperature: jax.Array,  # scalar
    eos_id: int | jax.Array,
    max_new_tokens: int,
) -> tuple[jax.Array, jax.Array]:
    batch, prompt_length = prompts.shape
    cache = init_cache(model.config, batch, prompt_length + max_new_tokens)
    positions = jnp.broadcast_to(jnp.arange(prompt_length), prompts.shape)
    logits, cache = model.apply({"params": params}, prompts, positions, cache=cache)
    last = logits[jnp.arange(batch), lengths - 1]  # [batch, vocab]

    def sample(logits: jax.Array, key: jax.Array) -> jax.Array:
        greedy = jnp.argmax(logits, axis=-1)
        scaled = logits / jnp.maximum(temperature, 1e-6)
        sampled = jax.random.categorical(key, scaled, axis=-1)
        return jnp.where(temperature > 0, sampled, greedy).astype(jnp.int32)

    def cond(carry: tuple) -> jax.Array:
        step, _, _, _, done, _ = carry
        return (step < max_new_tokens) & ~jnp.all(done)

    def body(carry: tuple) -> tuple:
        step, logits, cache, out, done, rng = carry
        rng, key = jax.random.split(rng)
        token = jnp.where(done, eos_id, sample(logits, key))  # [batch]
        out = out.at[:, step].set(token)
        done = done | (token == eos_id)
        logits, cache = model.apply(
            {"params": params}, token[:, None], (lengths + step)[:, None], cache=cache
        )
        return step + 1, logits[:, 0], cache, out, done, rng

    out = jnp.full((batch, max_new_tokens), eos_id, jnp.int32)
    done = jnp.zeros((batch,), bool)
    carry = (jnp.int32(0), last, cache, out, done, rng)
    _, _, _, out, done, _ = jax.lax.while_loop(cond, body, carry)
    return out, done


def generate(
    model: Decoder,
    params: Any,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    eos_id: int,
    temperature: float = 0.0,
    seed: int = 0,
    pad_id: int = 0,
) -> Generation:
    """Continues each prompt until EOS or ``max_new_tokens`` new tokens.

    Args:
      model: the decoder module.
      params: its parameters.
      prompts: token ids per prompt (non-empty).
      max_new_tokens: the most tokens generated per prompt.
      eos_id: the stop token.
      temperature: 0 for greedy decoding.
      seed: sampling seed.
      pad_id: id used to pad prompts to the bucket length.
    """
    if any(len(p) == 0 for p in prompts):
        raise ValueError("generate: every prompt needs at least one token")
    lengths = np.array([len(p) for p in prompts], np.int32)
    padded = np.full((len(prompts), bucket_length(int(lengths.max()))), pad_id, np.int32)
    for row, prompt in enumerate(prompts):
        padded[row, : len(prompt)] = prompt
    out, _ = _generate(
        model,
        params,
        jnp.asarray(padded),
        jnp.asarray(lengths),
        jax.random.PRNGKey(seed),
        jnp.float32(temperature),
        eos_id,
        max_new_tokens,
    )
    tokens, reasons = [], []
    for row in np.asarray(out).tolist():
        if eos_id in row:
            tokens.append(row[: row.index(eos_id)])
            reasons.append("eos")
        else:
            tokens.append(row)
            reasons.append("length")
    return Generation(tokens=tokens, finish_reasons=reasons)
