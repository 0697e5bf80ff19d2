"""Token cross entropy with z-loss, whole or over chunks of the sequence.

The whole path takes the decoder's float32 logits [batch, length, vocab]. The chunked path
(``DecoderConfig.loss_chunk > 0``) takes the final hidden states [batch, length, embed] and the
output projection, and computes logits ``loss_chunk`` positions at a time inside a
``lax.scan`` whose body is under ``jax.checkpoint``: the backward pass recomputes each chunk's
logits, so no [batch, length, vocab] float32 array is ever held (with BLOOM's 250,880-word
vocabulary that array is 1 GiB per 1,024 tokens, and its gradient as much again).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from polyglot_jax.models.config import DecoderConfig

Array = jax.Array
Sums = dict[str, Array]
SUM_NAMES = ("loss_sum", "z_loss_sum", "correct", "num_tokens")


def logits_sums(
    logits: Array,  # [batch, length, vocab] float32
    targets: Array,  # [batch, length] int
    weights: Array,  # [batch, length] float32
    z_loss: float,
) -> Sums:
    """Weighted sums of cross entropy, z-loss and correct argmax, and the weight total.

    ``z_loss_sum = z_loss * sum(weights * logsumexp(logits)^2)`` (PaLM's auxiliary loss).
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)  # [batch, length]
    correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    z_loss_sum = jnp.float32(0.0)
    if z_loss:
        log_z = jax.nn.logsumexp(logits, axis=-1)  # [batch, length]
        z_loss_sum = z_loss * jnp.sum(jnp.square(log_z) * weights)
    return {
        "loss_sum": jnp.sum(ce * weights),
        "z_loss_sum": z_loss_sum,
        "correct": jnp.sum(correct * weights),
        "num_tokens": weights.sum(),
    }


def head_weights(params: Any, config: DecoderConfig) -> tuple[Array, bool]:
    """The output projection: ``(lm_head kernel [embed, vocab], False)`` or, with tied
    embeddings, ``(embedding [vocab, embed], True)`` (the flag says it is transposed)."""
    params = nn.unbox(params)
    if config.tie_embeddings:
        return params["embed"]["embedding"], True
    return params["lm_head"]["kernel"], False


def head_logits(hidden: Array, head: Array, transposed: bool, dtype: jnp.dtype) -> Array:
    """Logits [batch, length, vocab] float32 of ``hidden`` [batch, length, embed].

    The decoder's own arithmetic: both operands in the compute dtype, the product cast to
    float32 (``Projection`` for ``lm_head``, ``nn.Embed.attend`` for tied embeddings).
    """
    equation = "bte,ve->btv" if transposed else "bte,ev->btv"
    return jnp.einsum(equation, hidden.astype(dtype), head.astype(dtype)).astype(jnp.float32)


def chunked_sums(
    hidden: Array,  # [batch, length, embed] final-norm output
    head: Array,  # [embed, vocab], or [vocab, embed] when transposed
    transposed: bool,
    targets: Array,  # [batch, length] int
    weights: Array,  # [batch, length] float32
    chunk: int,
    z_loss: float,
    dtype: jnp.dtype,
) -> Sums:
    """:func:`logits_sums` of ``head_logits(hidden)`` computed ``chunk`` positions at a time.

    The sequence is padded (weight 0) to a multiple of ``chunk``; each chunk's logits
    [batch, chunk, vocab] are made, reduced to the four sums and dropped, and recomputed in
    the backward pass (``jax.checkpoint``), whose gradient for ``head`` adds up over chunks.
    """
    batch, length = hidden.shape[:2]
    num_chunks = -(-length // chunk)
    pad = num_chunks * chunk - length
    if pad:
        hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
        targets = jnp.pad(targets, ((0, 0), (0, pad)))
        weights = jnp.pad(weights, ((0, 0), (0, pad)))

    def by_chunk(x: Array) -> Array:  # [batch, chunks * chunk, ...] → [chunks, batch, chunk, ...]
        return x.reshape(batch, num_chunks, chunk, *x.shape[2:]).swapaxes(0, 1)

    @jax.checkpoint
    def one_chunk(head: Array, x: Array, tgt: Array, w: Array) -> Sums:
        logits = head_logits(x, head, transposed, dtype)  # [batch, chunk, vocab] float32
        return logits_sums(logits, tgt, w, z_loss)

    def step(carry: Sums, xs: tuple[Array, Array, Array]) -> tuple[Sums, None]:
        sums = one_chunk(head, *xs)
        return {k: carry[k] + sums[k] for k in SUM_NAMES}, None

    zeros = dict.fromkeys(SUM_NAMES, jnp.float32(0.0))
    sums, _ = jax.lax.scan(step, zeros, (by_chunk(hidden), by_chunk(targets), by_chunk(weights)))
    return sums


def is_final_norm(module: nn.Module, method_name: str) -> bool:
    """``capture_intermediates`` filter: the decoder's final norm (the head's input)."""
    return module.name == "final_norm" and method_name == "__call__"


def decoder_sums(
    params: Any,
    batch: dict[str, Array],
    model: nn.Module,
    dropout_rng: Array | None,
    z_loss: float,
) -> Sums:
    """The four loss sums of ``model`` on ``batch``, chunked when ``loss_chunk > 0``.

    Chunked, the decoder's hidden states are taken from its final norm
    (``capture_intermediates``); its own logits are then unused and XLA removes them, so the
    only vocabulary-sized arrays are one chunk's.
    """
    cfg: DecoderConfig = model.config
    chunk = cfg.loss_chunk
    kwargs = dict(
        deterministic=dropout_rng is None,
        rngs={} if dropout_rng is None else {"dropout": dropout_rng},
    )
    inputs = (
        batch["decoder_input_tokens"],
        batch.get("decoder_positions"),
        batch.get("decoder_segment_ids"),
    )
    targets = batch["decoder_target_tokens"]  # [batch, length]
    weights = batch["decoder_loss_weights"].astype(jnp.float32)  # [batch, length]
    if not chunk:
        logits, _ = model.apply({"params": params}, *inputs, **kwargs)  # [batch, length, vocab]
        return logits_sums(logits, targets, weights, z_loss)
    _, state = model.apply(
        {"params": params},
        *inputs,
        capture_intermediates=is_final_norm,
        mutable=["intermediates"],
        **kwargs,
    )
    (hidden,) = state["intermediates"]["final_norm"]["__call__"]  # [batch, length, embed]
    head, transposed = head_weights(params, cfg)
    return chunked_sums(
        hidden, head, transposed, targets, weights, chunk, z_loss, cfg.compute_dtype
    )
