"""Token cross entropy with z-loss, on the whole logits or over chunks of the vocabulary.

The whole path takes the decoder's float32 logits [batch, length, vocab]. The chunked path
(``DecoderConfig.loss_chunk > 0``) takes the final hidden states [batch, length, embed] and the
output projection, and computes logits for ``loss_chunk`` vocabulary entries at a time in a
``lax.scan`` with a hand-written backward pass (``jax.custom_vjp``) that recomputes each
chunk's logits: no [batch, length, vocab] float32 array is ever held (with BLOOM's 250,880-word
vocabulary that array is 1 GiB per 1,024 tokens, and its gradient as much again). Chunks of the
vocabulary, not of the sequence: each chunk owns a disjoint slice of the head's gradient, so
nothing [embed, vocab]-sized is accumulated over chunks.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from polyglot_jax.models.config import DecoderConfig

Array = jax.Array
Sums = dict[str, Array]


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
    return vocab_chunked_sums(
        hidden, transposed, head, targets, weights, chunk, z_loss, cfg.compute_dtype
    )


def _vocab_slices(vocab: int, chunk: int) -> list[tuple[int, int, int]]:
    """``(start, size, count)`` runs covering ``vocab``: full chunks, then the remainder."""
    runs = [(0, chunk, vocab // chunk)] if vocab >= chunk else []
    if vocab % chunk:
        runs.append((vocab - vocab % chunk, vocab % chunk, 1))
    return runs


def _head_slice(head: Array, transposed: bool, start: Array | int, size: int) -> Array:
    """Columns ``start:start+size`` of the [embed, vocab] head (rows when transposed)."""
    axis = 0 if transposed else 1
    return jax.lax.dynamic_slice_in_dim(head, start, size, axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 5, 6, 7))
def vocab_chunked_sums(
    hidden: Array,  # [batch, length, embed]
    transposed: bool,
    head: Array,  # [embed, vocab], or [vocab, embed] when transposed
    targets: Array,  # [batch, length] int
    weights: Array,  # [batch, length] float32
    chunk: int,
    z_loss: float,
    dtype: jnp.dtype,
) -> Sums:
    """:func:`logits_sums` of ``head_logits(hidden)``, ``chunk`` vocabulary entries at a time.

    The forward pass keeps a running max, sum of exponentials, target logit and argmax over
    the vocabulary chunks; the backward pass recomputes each chunk's logits from the saved
    logsumexp and writes that chunk's slice of the head gradient (slices are disjoint, so
    nothing [embed, vocab]-sized is accumulated or held besides the gradient itself).
    """
    return _vocab_forward(hidden, transposed, head, targets, weights, chunk, z_loss, dtype)[0]


def _vocab_forward(
    hidden: Array,  # [batch, length, embed]
    transposed: bool,
    head: Array,  # [embed, vocab] or [vocab, embed]
    targets: Array,  # [batch, length]
    weights: Array,  # [batch, length]
    chunk: int,
    z_loss: float,
    dtype: jnp.dtype,
) -> tuple[Sums, tuple[Array, ...]]:
    """The sums and the residuals of the backward pass (inputs and logsumexp [b, t])."""
    batch, length = targets.shape
    neg = jnp.full((batch, length), -jnp.inf, jnp.float32)
    carry = (neg, jnp.zeros_like(neg), jnp.zeros_like(neg), neg, jnp.zeros_like(targets))

    def visit(carry: tuple, start: Array, size: int) -> tuple:
        top, total, target_logit, best, best_index = carry
        logits = head_logits(hidden, _head_slice(head, transposed, start, size), transposed, dtype)
        new_top = jnp.maximum(top, logits.max(-1))
        total = total * jnp.exp(top - new_top) + jnp.exp(logits - new_top[..., None]).sum(-1)
        local = targets - start
        inside = (local >= 0) & (local < size)
        picked = jnp.take_along_axis(logits, jnp.clip(local, 0, size - 1)[..., None], -1)[..., 0]
        target_logit = target_logit + jnp.where(inside, picked, 0.0)
        chunk_best = logits.max(-1)
        better = chunk_best > best
        best_index = jnp.where(better, start + jnp.argmax(logits, -1), best_index)
        return new_top, total, target_logit, jnp.maximum(best, chunk_best), best_index

    for first, size, count in _vocab_slices(head.shape[0 if transposed else 1], chunk):
        starts = first + size * jnp.arange(count)
        carry, _ = jax.lax.scan(lambda c, s, size=size: (visit(c, s, size), None), carry, starts)
    top, total, target_logit, _, best_index = carry
    lse = top + jnp.log(total)  # [batch, length]
    sums = {
        "loss_sum": jnp.sum((lse - target_logit) * weights),
        "z_loss_sum": z_loss * jnp.sum(jnp.square(lse) * weights) if z_loss else jnp.float32(0),
        "correct": jnp.sum((best_index == targets).astype(jnp.float32) * weights),
        "num_tokens": weights.sum(),
    }
    return sums, (hidden, head, targets, weights, lse)


def _vocab_backward(
    transposed: bool,
    chunk: int,
    z_loss: float,
    dtype: jnp.dtype,
    residuals: tuple[Array, ...],
    g: Sums,
) -> tuple[Array, Array, np.ndarray, Array]:
    """Cotangents of hidden, head, targets (float0) and weights (zero: the data's) from ``g``.

    d logits = loss_g * w * (softmax - onehot) + z_g * z_loss * 2 * lse * w * softmax, made per
    chunk in float32 and cast to the compute dtype as autodiff of the decoder's head would.
    """
    hidden, head, targets, weights, lse = residuals
    a = g["loss_sum"] * weights  # [batch, length]
    b = a + (2.0 * z_loss * g["z_loss_sum"]) * lse * weights if z_loss else a
    x = hidden.astype(dtype)
    carry = (jnp.zeros(hidden.shape, jnp.float32), jnp.zeros(head.shape, head.dtype))

    def visit(carry: tuple, start: Array, size: int) -> tuple:
        d_hidden, d_head = carry
        w = _head_slice(head, transposed, start, size).astype(dtype)
        logits = head_logits(x, w, transposed, dtype)  # [batch, length, size]
        onehot = jax.nn.one_hot(targets - start, size, dtype=jnp.float32)
        d_logits = b[..., None] * jnp.exp(logits - lse[..., None]) - a[..., None] * onehot
        d_logits = d_logits.astype(dtype)
        back = "btv,ve->bte" if transposed else "btv,ev->bte"
        d_hidden = d_hidden + jnp.einsum(back, d_logits, w, preferred_element_type=jnp.float32)
        grad = "btv,bte->ve" if transposed else "bte,btv->ev"
        operands = (d_logits, x) if transposed else (x, d_logits)
        d_w = jnp.einsum(grad, *operands).astype(head.dtype)
        axis = 0 if transposed else 1
        d_head = jax.lax.dynamic_update_slice_in_dim(d_head, d_w, start, axis)
        return d_hidden, d_head

    for first, size, count in _vocab_slices(head.shape[0 if transposed else 1], chunk):
        starts = first + size * jnp.arange(count)
        carry, _ = jax.lax.scan(lambda c, s, size=size: (visit(c, s, size), None), carry, starts)
    d_hidden, d_head = carry
    no_targets = np.zeros(targets.shape, jax.dtypes.float0)
    return d_hidden.astype(hidden.dtype), d_head, no_targets, jnp.zeros_like(weights)


vocab_chunked_sums.defvjp(
    lambda h, t, hd, tg, w, c, z, d: _vocab_forward(h, t, hd, tg, w, c, z, d), _vocab_backward
)
