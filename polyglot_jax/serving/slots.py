"""Continuous batching on the device: a fixed set of decode slots that requests enter and leave.

The state (:class:`Slots`) holds a KV cache of ``slots`` rows and, per row, the next-token logits,
its position, its sampling key and step, the tokens it has seen (for the penalties) and its own
decoding settings. :func:`prefill` reads new prompts and writes their cache rows and logits
into free slots; :func:`decode` chooses one token for every slot and advances them all, a few
steps per call. Shapes are fixed, so few programs compile (prefill once per bucket of rows and
prompt width), and a row's arithmetic never depends on the other rows: a request's answer does
not depend on who else is being served. Token choice is :mod:`next_token`'s (the same penalties,
filters and per-row keys as :func:`decoding.generate`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from polyglot_jax.models import Decoder, init_cache
from polyglot_jax.models.decoder import cache_batch_axis, constrain_cache
from polyglot_jax.runtime import next_token

KNOBS = ("temperature", "top_k", "top_p", "repetition_penalty", "frequency_penalty")


class Slots(NamedTuple):
    """The decode state of every slot (a pytree)."""

    cache: Any  # KV cache, one row per slot (see ``init_cache``)
    logits: jax.Array  # [slots, vocab] float32, each slot's next-token logits
    positions: jax.Array  # [slots] int32, tokens in the slot's sequence
    steps: jax.Array  # [slots] int32, tokens chosen since the prompt (the sampling counter)
    keys: jax.Array  # [slots, 2] uint32, the slot's sampling key
    seen: jax.Array  # [slots, vocab] bool, tokens of the prompt or continuation
    counts: jax.Array  # [slots, vocab] float32, occurrences in the continuation
    knobs: dict[str, jax.Array]  # each [slots, 1]: the slot's decoding settings


def empty(model: Decoder, slots: int, length: int) -> Slots:
    """Idle slots with room for ``length`` tokens each (prompt and continuation)."""
    vocab = model.config.vocab_size
    cache = constrain_cache(init_cache(model.config, slots, length))
    return Slots(
        cache=cache,
        logits=jnp.zeros((slots, vocab), jnp.float32),
        positions=jnp.zeros((slots,), jnp.int32),
        steps=jnp.zeros((slots,), jnp.int32),
        keys=jnp.zeros((slots, 2), jnp.uint32),
        seen=jnp.zeros((slots, vocab), bool),
        counts=jnp.zeros((slots, vocab), jnp.float32),
        knobs={name: jnp.zeros((slots, 1), jnp.float32) for name in KNOBS},
    )


def prefill(
    model: Decoder,
    params: Any,
    state: Slots,
    slot_ids: jax.Array,  # [rows] int32; an id past the last slot drops its row (padding)
    prompts: jax.Array,  # [rows, width] right-padded
    lengths: jax.Array,  # [rows] int32, each prompt's tokens
    keys: jax.Array,  # [rows, 2] uint32
    knobs: dict[str, jax.Array],  # each [rows], :data:`KNOBS`
    done: jax.Array,  # [rows] int32, tokens at the end of the prompt the row already chose
) -> Slots:
    """``state`` with each prompt read into its slot (cache row, logits and settings).

    The prompts are read as :func:`decoding.generate` reads them: right-padded, each row's
    logits taken at its last token. A row read in again (its slot lost after a failure) is its
    prompt followed by the ``done`` tokens it had chosen: its sampling step and the counts of
    the frequency penalty go on from there.
    """
    rows, width = prompts.shape
    cache_length = jax.tree.leaves(state.cache)[0].shape[-2]
    cache = init_cache(model.config, rows, cache_length)
    positions = jnp.broadcast_to(jnp.arange(width), prompts.shape)
    logits, cache = model.apply(
        {"params": params}, prompts, positions, cache=cache, logits_at=lengths - 1
    )

    def put(old: jax.Array, new: jax.Array, axis: int = 0) -> jax.Array:
        at = (slice(None),) * axis + (slot_ids,)
        return old.at[at].set(new.astype(old.dtype), mode="drop")

    merged = jax.tree.map(lambda old, new: put(old, new, cache_batch_axis(old)), state.cache, cache)
    in_prompt = jnp.arange(width)[None, :] < lengths[:, None]  # [rows, width]
    vocab = model.config.vocab_size
    seen = jnp.zeros((rows, vocab), bool).at[jnp.arange(rows)[:, None], prompts].max(in_prompt)
    chosen = in_prompt & (jnp.arange(width)[None, :] >= (lengths - done)[:, None])
    counts = (
        jnp.zeros((rows, vocab))
        .at[jnp.arange(rows)[:, None], prompts]
        .add(chosen.astype(jnp.float32))
    )
    return Slots(
        cache=constrain_cache(merged),
        logits=put(state.logits, logits[:, 0]),
        positions=put(state.positions, lengths),
        steps=put(state.steps, done),
        keys=put(state.keys, keys),
        seen=put(state.seen, seen),
        counts=put(state.counts, counts),
        knobs={k: put(v, knobs[k][:, None]) for k, v in state.knobs.items()},
    )


def decode(
    model: Decoder,
    params: Any,
    state: Slots,
    active: jax.Array,  # [slots] bool, slots that hold a request
    *,
    steps: int,
    penalties: bool,
    sampling: bool,
) -> tuple[jax.Array, Slots]:
    """``steps`` decode steps of every slot: ``(tokens [steps, slots], state)``.

    Each step chooses every slot's next token and reads it in. Several steps per call save a
    round trip to the host per token; a row that ends within them computes on until the call
    returns, and its extra tokens are ignored. ``penalties`` and ``sampling`` say whether any
    slot uses a penalty or a temperature > 0 (otherwise those paths are left out of the
    program). Idle slots compute too, but never move.

    Under ``DecoderConfig.decode_attention`` ``"ragged"`` (or ``"auto"``) a step reads each
    layer's cache up to the longest busy row only (see
    :mod:`~polyglot_jax.models.decode_attention`); a row's tokens do not depend on that length.
    """
    rows = jnp.arange(active.shape[0])
    moved = active.astype(jnp.int32)

    def step(state: Slots, _: None) -> tuple[Slots, jax.Array]:
        knobs, logits = state.knobs, state.logits
        if penalties:
            logits = next_token.penalize(
                logits,
                state.seen,
                state.counts,
                knobs["repetition_penalty"],
                knobs["frequency_penalty"],
            )
        token = jnp.argmax(logits, axis=-1).astype(jnp.int32)  # [slots]
        if sampling:
            greedy = knobs["temperature"] == 0
            temperature = jnp.where(greedy, 1.0, knobs["temperature"])
            top_k = knobs["top_k"].astype(jnp.int32)
            drawn = next_token.sample(
                logits, state.keys, state.steps, temperature, top_k, knobs["top_p"]
            )
            token = jnp.where(greedy[:, 0], token, drawn)
        # Idle slots read at position 0: a step of the ragged cache path costs as much as its
        # longest row, and a slot's cache row is written whole when a request takes it.
        at = jnp.where(active, state.positions, 0)  # [slots]
        new_logits, cache = model.apply(
            {"params": params}, token[:, None], at[:, None], cache=state.cache
        )
        state = state._replace(
            cache=constrain_cache(cache),
            logits=new_logits[:, 0].astype(jnp.float32),
            positions=state.positions + moved,
            steps=state.steps + moved,
            seen=state.seen.at[rows, token].max(active),
            counts=state.counts.at[rows, token].add(moved.astype(jnp.float32)),
        )
        return state, token

    state, tokens = jax.lax.scan(step, state, None, length=steps)
    return tokens, state
