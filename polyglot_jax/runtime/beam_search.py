"""Beam search and no-repeat n-gram blocking with ``transformers`` semantics.

:func:`beam_search` is one jitted ``lax.while_loop`` that follows ``transformers``' beam search
step for step (length penalty, ``early_stopping=False``):

- each step ranks ``(1 + stop tokens) * num_beams`` continuations of all beams by their summed
  log-probability; the best ``num_beams`` that do not end in a stop token (nor reach
  ``max_new_tokens``) keep running;
- continuations among the best ``num_beams`` that do end become finished hypotheses scored
  ``sum_logprob / generated_length ** length_penalty`` (the stop token counted); the
  ``num_beams`` best finished hypotheses are kept;
- a prompt is done when ``num_beams`` hypotheses are finished and the best running beam, scored
  at its current length, cannot beat the worst of them.

:func:`ngram_bans` is ``NoRepeatNGramLogitsProcessor``: an n-gram may occur once in a row's
whole sequence, prompt included.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from polyglot_jax.models import Decoder, init_cache
from polyglot_jax.models.decoder import cache_batch_axis, constrain_cache

_NEG = -1.0e9  # transformers' "never" score for beams that must not be chosen


def ngram_bans(history: jax.Array, length: jax.Array, ngram: int, vocab: int) -> jax.Array:
    """Tokens that would repeat an n-gram of the sequence, [rows, vocab] bool.

    Args:
      history: [rows, total] token ids; a row's sequence is its first ``length`` tokens.
      length: [rows] tokens in each sequence so far.
      ngram: the n-gram size n.
      vocab: the vocabulary size.
    """
    rows, total = history.shape
    if total < ngram:
        return jnp.zeros((rows, vocab), bool)
    starts = jnp.arange(total - ngram + 1)  # [windows]
    windows = history[:, starts[:, None] + jnp.arange(ngram)]  # [rows, windows, ngram]
    at = length[:, None] - (ngram - 1) + jnp.arange(ngram - 1)  # [rows, ngram - 1]
    prefix = jnp.take_along_axis(history, jnp.clip(at, 0, total - 1), axis=1)
    match = jnp.all(windows[:, :, :-1] == prefix[:, None, :], axis=-1)  # [rows, windows]
    # A window counts when it lies inside the sequence: its last token is already there.
    match &= (starts[None, :] + ngram <= length[:, None]) & (length[:, None] >= ngram)
    banned_ids = jnp.where(match, windows[:, :, -1], vocab)  # misses go to a spare column
    banned = jnp.zeros((rows, vocab + 1), bool).at[jnp.arange(rows)[:, None], banned_ids].set(True)
    return banned[:, :vocab]


def _gather(x: jax.Array, index: jax.Array) -> jax.Array:
    """``x[b, index[b, j]]`` for x [batch, beams, ...] and index [batch, picks]."""
    index = index.reshape(index.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, index, axis=1)


def beam_search(
    model: Decoder,
    params: Any,
    prompts: jax.Array,  # [batch, prompt_length] right-padded
    lengths: jax.Array,  # [batch]
    stop_ids: jax.Array,  # [num_stop]
    *,
    max_new_tokens: int,
    num_beams: int,
    ngram: int,
    length_penalty: float,
) -> jax.Array:
    """The best finished hypothesis of each prompt, [batch, max_new_tokens].

    Tokens after a hypothesis's end are ``stop_ids[0]``; one that ended with a stop token keeps
    it, so the caller's cut at the first stop token gives its text and finish reason.
    """
    batch, prompt_length = prompts.shape
    beams, vocab = num_beams, model.config.vocab_size
    total = prompt_length + max_new_tokens
    keep = max(2, 1 + stop_ids.shape[0]) * beams  # candidates ranked per step
    cache = constrain_cache(init_cache(model.config, batch, total))
    positions = jnp.broadcast_to(jnp.arange(prompt_length), prompts.shape)
    logits, cache = model.apply(
        {"params": params}, prompts, positions, cache=cache, logits_at=lengths - 1
    )
    # Every beam starts as the prompt: [batch * beams, ...] rows, beams of a prompt adjacent.
    cache = jax.tree.map(lambda x: jnp.repeat(x, beams, axis=cache_batch_axis(x)), cache)
    cache = constrain_cache(cache)
    logits = jnp.repeat(logits[:, 0], beams, axis=0)  # [batch * beams, vocab]
    history = jnp.concatenate(
        [prompts, jnp.zeros((batch, max_new_tokens), prompts.dtype)], axis=1
    )  # [batch, total]
    running = jnp.broadcast_to(history[:, None], (batch, beams, total))
    running_scores = jnp.where(jnp.arange(beams) == 0, 0.0, _NEG) * jnp.ones((batch, 1))
    flat_lengths = jnp.repeat(lengths, beams)  # [batch * beams]
    top_slots = jnp.arange(keep) < beams  # [keep]: candidates that may be finalised
    carry = (
        jnp.int32(0),
        logits,
        cache,
        running,  # [batch, beams, total]
        running_scores.astype(jnp.float32),  # [batch, beams]
        running,  # finished hypotheses [batch, beams, total]
        jnp.full((batch, beams), _NEG, jnp.float32),  # their normalised scores
        jnp.zeros((batch, beams), jnp.int32),  # their generated lengths
        jnp.zeros((batch, beams), bool),  # which finished slots hold a hypothesis
        jnp.ones((batch,), bool),  # prompts whose finished set can still improve
    )

    def cond(carry: tuple) -> jax.Array:
        return (carry[0] < max_new_tokens) & jnp.any(carry[-1])

    def body(carry: tuple) -> tuple:
        step, logits, cache, running, running_scores, done, done_scores, done_len, full, open_ = (
            carry
        )
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)  # [batch * beams, vocab]
        if ngram:
            seen = flat_lengths + step
            bans = ngram_bans(running.reshape(batch * beams, total), seen, ngram, vocab)
            logp = jnp.where(bans, -jnp.inf, logp)
        candidates = logp.reshape(batch, beams, vocab) + running_scores[:, :, None]
        top_scores, top_index = jax.lax.top_k(candidates.reshape(batch, -1), keep)
        source, token = top_index // vocab, top_index % vocab  # [batch, keep]
        at = (lengths + step)[:, None, None] == jnp.arange(total)  # [batch, 1, total]
        top_seqs = jnp.where(at, token[:, :, None], _gather(running, source))
        ends = jnp.isin(token, stop_ids) | (step + 1 >= max_new_tokens)  # [batch, keep]

        alive = top_scores + ends * _NEG
        pick = jax.lax.top_k(alive, beams)[1]  # [batch, beams]
        running, running_scores = _gather(top_seqs, pick), _gather(alive, pick)

        finals = top_scores / (step + 1).astype(jnp.float32) ** length_penalty
        finals += (~open_[:, None]) * _NEG + ~(ends & top_slots) * _NEG
        merged_scores = jnp.concatenate([done_scores, finals], axis=1)
        best = jax.lax.top_k(merged_scores, beams)[1]
        done = _gather(jnp.concatenate([done, top_seqs], axis=1), best)
        done_scores = _gather(merged_scores, best)
        new_len = jnp.full((batch, keep), step + 1, jnp.int32)
        done_len = _gather(jnp.concatenate([done_len, new_len], axis=1), best)
        full = _gather(jnp.concatenate([full, ends & top_slots], axis=1), best)

        rows = (jnp.arange(batch)[:, None] * beams + _gather(source, pick)).reshape(-1)
        cache = jax.tree.map(lambda x: jnp.take(x, rows, axis=cache_batch_axis(x)), cache)
        cache = constrain_cache(cache)
        hoped = running_scores[:, 0] / (step + 1).astype(jnp.float32) ** length_penalty
        worst = jnp.where(full, jnp.min(done_scores, axis=1, keepdims=True), _NEG)
        open_ &= jnp.any(hoped[:, None] > worst, axis=1)

        last = (flat_lengths + step)[:, None]  # [batch * beams, 1]
        tokens = jnp.take_along_axis(running.reshape(batch * beams, total), last, axis=1)
        # Beams of a prompt whose hypotheses are final read at position 0, so under the ragged
        # cache path a step costs as much as the longest open prompt.
        at = jnp.where(jnp.repeat(open_, beams)[:, None], last, 0)  # [batch * beams, 1]
        logits, cache = model.apply({"params": params}, tokens, at, cache=cache)
        return (
            step + 1,
            logits[:, 0],
            cache,
            running,
            running_scores,
            done,
            done_scores,
            done_len,
            full,
            open_,
        )

    _, _, _, _, _, done, _, done_len, _, _ = jax.lax.while_loop(cond, body, carry)
    offsets = jnp.arange(max_new_tokens)
    best = jnp.take_along_axis(done[:, 0], lengths[:, None] + offsets, axis=1)  # [batch, new]
    return jnp.where(offsets < done_len[:, :1], best, stop_ids[0]).astype(jnp.int32)
