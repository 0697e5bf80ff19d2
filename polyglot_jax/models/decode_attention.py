"""Attention over a KV cache that reads only its filled part ("ragged" decode attention).

The dense path (:meth:`~polyglot_jax.models.attention.Attention._einsum`) scores every query
against all ``max_length`` cache slots and masks the unfilled ones, so a decode step costs
``max_length`` whatever the rows hold. :func:`ragged_attention` instead walks the cache in
blocks of ``block`` keys with an online softmax (flash-decoding style) inside a
``lax.while_loop`` whose trip count is ``ceil(longest filled row / block)``: a step's cost
follows the longest row of the batch, not the cache size. Rows shorter than the longest are
masked inside the blocks they do not fill; a block a row cannot see leaves its running
maximum, sum and output bit-for-bit unchanged (its correction factor is exactly 1 and its
weights exactly 0), so a row's result does not depend on how long the other rows are.

With a sliding window (Mistral) the loop starts at the first block any row's window reaches;
blocks wholly left of every window are never read. ALiBi biases are added per block.

A cache of at most two blocks is read in one pass, without the loop: each block the loop slices
out is a copy (XLA materialises a dynamic slice), and reading one block and copying it costs
more than reading two blocks in place (on CPU, ~5 % of a ``benchmarks/generate.py`` step).

The design follows Pallas TPU ragged paged attention (one kernel that reads each row's cache up
to its own length); this is its portable form in plain JAX, the same on CPU, GPU and TPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def block_range(
    positions: Array,  # [batch, length] int
    block: int,
    sliding_window: int | None,
) -> tuple[Array, Array]:
    """The first and one-past-last key block any query of the batch can see (int scalars).

    A query at position ``p`` sees cache slots ``max(0, p - window + 1) .. p``.
    """
    end = (jnp.max(positions) + block) // block  # ceil((max position + 1) / block)
    if sliding_window is None:
        return jnp.int32(0), end.astype(jnp.int32)
    first_key = jnp.maximum(jnp.min(positions) - sliding_window + 1, 0)
    return (first_key // block).astype(jnp.int32), end.astype(jnp.int32)


def ragged_attention(
    q: Array,  # [batch, length, heads, head_dim]
    k: Array,  # [batch, kv_heads, max_length, head_dim] the updated cache
    v: Array,  # [batch, kv_heads, max_length, head_dim]
    positions: Array,  # [batch, length] int, each query's position (its key is written)
    *,
    block: int,
    sliding_window: int | None = None,
    slopes: Array | None = None,  # [heads] ALiBi slopes, or None
    dtype: jnp.dtype = jnp.float32,
) -> Array:
    """Causal grouped-query attention over the filled part of a KV cache.

    Key ``s`` of the cache is the token at position ``s``; a query at position ``p`` attends to
    keys ``s <= p`` (and ``p - s < sliding_window``), exactly as the dense cached path does.

    Args:
      q: queries, RoPE already applied.
      k: the cache's keys after this call's keys were written.
      v: the cache's values likewise.
      positions: each query's position.
      block: keys per block; a cache of at most ``2 * block`` keys is one block.
      sliding_window: Mistral's window, or None.
      slopes: ALiBi slopes per query head (bias ``slope * key_position``), or None.
      dtype: the compute dtype of the probabilities-times-values product.

    Returns:
      [batch, length, heads, head_dim] in ``dtype``.
    """
    batch, length, heads, dim = q.shape
    kv_heads, max_length = k.shape[1], k.shape[2]
    groups = heads // kv_heads
    # A cache of at most two blocks is read in one pass, without a loop: the loop reads at
    # least one whole block and copies every block it slices out of the cache (a dynamic slice
    # is materialised), which costs more than reading two blocks in place.
    block = max_length if max_length <= 2 * block else block
    qg = q.reshape(batch, length, kv_heads, groups, dim)  # [b, t, kv_heads, groups, d]
    scale = 1.0 / jnp.sqrt(jnp.float32(dim))
    bias = None if slopes is None else slopes.reshape(kv_heads, groups)[None, :, :, None, None]
    first, end = block_range(positions, block, sliding_window)

    def body(i: Array, carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        top, total, acc = carry  # [b, kv, g, t], [b, kv, g, t], [b, kv, g, t, d] float32
        nominal = i * block
        # The last block of a cache that is not a multiple of ``block`` is read from an
        # earlier start; the keys it shares with the block before are masked out below.
        start = jnp.minimum(nominal, max_length - block)
        kb = jax.lax.dynamic_slice_in_dim(k, start, block, axis=2)  # [b, kv, block, d]
        vb = jax.lax.dynamic_slice_in_dim(v, start, block, axis=2)
        key_pos = start + jnp.arange(block)  # [block]
        scores = jnp.einsum(
            "btkgd,bksd->bkgts", qg, kb.astype(q.dtype), preferred_element_type=jnp.float32
        )
        scores = scores * scale  # [b, kv, g, t, block]
        if bias is not None:
            scores = scores + bias * key_pos.astype(jnp.float32)
        seen = (key_pos >= nominal)[None, None, :] & (
            key_pos[None, None, :] <= positions[:, :, None]
        )  # [b, t, block]
        if sliding_window is not None:
            seen &= positions[:, :, None] - key_pos[None, None, :] < sliding_window
        scores = jnp.where(seen[:, None, None], scores, -jnp.inf)
        new_top = jnp.maximum(top, scores.max(axis=-1))
        shift = jnp.where(jnp.isfinite(new_top), new_top, 0.0)  # no key seen yet: any shift
        weights = jnp.exp(scores - shift[..., None])  # masked keys: exactly 0
        correction = jnp.exp(top - shift)  # exactly 1 when the maximum did not move
        total = total * correction + weights.sum(axis=-1)
        update = jnp.einsum(
            "bkgts,bksd->bkgtd",
            weights.astype(dtype),
            vb.astype(dtype),
            preferred_element_type=jnp.float32,
        )
        return new_top, total, acc * correction[..., None] + update

    stats = (batch, kv_heads, groups, length)
    init = (
        jnp.full(stats, -jnp.inf, jnp.float32),
        jnp.zeros(stats, jnp.float32),
        jnp.zeros((*stats, dim), jnp.float32),
    )
    if block == max_length:
        _, total, acc = body(jnp.int32(0), init)
    else:
        _, total, acc = jax.lax.fori_loop(first, end, body, init)
    out = acc / total[..., None]  # [b, kv, g, t, d]; every query sees at least its own key
    return out.transpose(0, 3, 1, 2, 4).reshape(batch, length, heads, dim).astype(dtype)
