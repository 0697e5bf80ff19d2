"""Grouped-query self-attention, its positional encodings (RoPE, ALiBi) and its mask.

The KV cache is explicit: :class:`Attention` takes one layer's cache and returns the updated
one. New keys and values are written at each token's position, so rows of a batch may sit at
different positions (prompts of different lengths need no left padding).

``DecoderConfig.attention_impl`` picks the kernel (:mod:`~polyglot_jax.models.kernels`): the
einsum path below, cuDNN flash attention on GPU or splash attention on TPU. With a cache,
``DecoderConfig.decode_attention`` picks between the einsum path over the whole cache and the
ragged path (:mod:`~polyglot_jax.models.decode_attention`) that reads only its filled blocks.
"""

from __future__ import annotations

import math

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from polyglot_jax.models import kernels
from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.decode_attention import ragged_attention
from polyglot_jax.models.layers import Projection, constrain
from polyglot_jax.models.lora_targets import FusedQKVDown

Array = jax.Array


def rope_frequencies(cfg: DecoderConfig) -> Array:
    """Inverse frequencies [rotary_dim / 2], with Llama 3 scaling when configured."""
    dim = cfg.rotary_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))
    if cfg.rope_scaling_factor is None:
        return inv_freq
    factor, low, high = cfg.rope_scaling_factor, cfg.rope_low_freq_factor, cfg.rope_high_freq_factor
    old = cfg.rope_original_max_length
    wavelength = 2 * math.pi / inv_freq
    scaled = jnp.where(wavelength > old / low, inv_freq / factor, inv_freq)
    smooth = (old / wavelength - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelength >= old / high) & (wavelength <= old / low)
    return jnp.where(medium, smoothed, scaled)


def rotary_embedding(x: Array, positions: Array, inv_freq: Array) -> Array:
    """Rotates the first ``2 * len(inv_freq)`` dims of ``x`` [batch, length, heads, head_dim].

    Half-split layout (Hugging Face ``rotate_half``): dimension ``i`` pairs with ``i + d / 2``
    within the rotated part; the remaining dimensions pass through (partial rotary).
    """
    half = inv_freq.shape[0]
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [batch, length, half]
    sin = jnp.sin(angles)[:, :, None, :]
    cos = jnp.cos(angles)[:, :, None, :]
    x32 = x.astype(jnp.float32)
    x1, x2, rest = x32[..., :half], x32[..., half : 2 * half], x32[..., 2 * half :]
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], axis=-1)
    return out.astype(x.dtype)


def alibi_slopes(num_heads: int) -> Array:
    """ALiBi head slopes [num_heads] (Press et al.; non-powers of two interleave a finer set)."""
    closest = 2 ** math.floor(math.log2(num_heads))
    base = 2.0 ** (-(2.0 ** -(math.log2(closest) - 3)))
    slopes = [base ** (i + 1) for i in range(closest)]
    if closest != num_heads:
        extra = 2.0 ** (-(2.0 ** -(math.log2(2 * closest) - 3)))
        slopes += [extra ** (2 * i + 1) for i in range(num_heads - closest)]
    return jnp.asarray(slopes, jnp.float32)


@flax.struct.dataclass
class AttentionMask:
    """The mask of one forward pass, dense and as the segment ids it was made from.

    The einsum path reads ``dense``; fused kernels (:mod:`~polyglot_jax.models.kernels`) build
    their own from ``segment_ids`` (and XLA drops the unread dense mask).
    """

    dense: Array  # [batch, length, keys] bool
    segment_ids: Array | None  # [batch, length] int, 0 = padding; None: one segment per row


def attention_mask(
    segment_ids: Array | None,
    positions: Array,
    num_keys: int,
    cached: bool,
    sliding_window: int | None = None,
) -> tuple[AttentionMask, Array]:
    """Which keys each query may attend to (:class:`AttentionMask`) and key positions [b, keys].

    Without a cache, keys are the queries themselves: causal by index, within the same packed
    segment, never padding (segment 0). With a cache, key ``s`` is the token at position ``s``,
    visible to a query at position ``p`` when ``s <= p``. A sliding window also hides keys
    ``window`` or more positions back.
    """
    if cached:
        key_positions = jnp.broadcast_to(jnp.arange(num_keys), (positions.shape[0], num_keys))
        mask = key_positions[:, None, :] <= positions[:, :, None]
    else:
        key_positions = positions
        length = positions.shape[1]
        mask = jnp.broadcast_to(
            jnp.tril(jnp.ones((length, length), dtype=bool))[None],
            (positions.shape[0], length, length),
        )
        if segment_ids is not None:
            same = segment_ids[:, :, None] == segment_ids[:, None, :]
            mask = mask & same & (segment_ids[:, None, :] != 0)
    if sliding_window is not None:
        mask = mask & (positions[:, :, None] - key_positions[:, None, :] < sliding_window)
    return AttentionMask(mask, None if cached else segment_ids), key_positions


class Attention(nn.Module):
    """Grouped-query self-attention with RoPE or ALiBi and an optional KV cache."""

    config: DecoderConfig
    deterministic: bool = True

    @nn.compact
    def __call__(
        self,
        x: Array,  # [batch, length, embed]
        positions: Array,  # [batch, length]
        mask: AttentionMask | Array,  # or a dense [batch, length, keys] bool
        key_positions: Array,  # [batch, keys]
        cache: dict[str, Array] | None,
    ) -> tuple[Array, dict[str, Array] | None]:
        """Returns the output [batch, length, embed] and the layer's updated cache."""
        cfg = self.config
        e, h, kvh, d = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        common = dict(
            dtype=cfg.compute_dtype,
            param_dtype=cfg.storage_dtype,
            quantized=cfg.weight_quantization != "none",
            lora=cfg.lora,
            deterministic=self.deterministic,
            num_in=1,
        )
        kv_axes = ("embed", "kv_heads", "kv")
        qkv = dict(equation="bte,ehd->bthd", use_bias=cfg.qkv_bias, **common)
        # A fused query_key_value adapter: [batch, length, rank], or None.
        down = FusedQKVDown(cfg, self.deterministic, name="query_key_value")(x)
        q = Projection((e, h, d), ("embed", "heads", "kv"), name="q_proj", **qkv)(x, down)
        k = Projection((e, kvh, d), kv_axes, name="k_proj", **qkv)(x, down)
        v = Projection((e, kvh, d), kv_axes, name="v_proj", **qkv)(x, down)
        if cfg.position == "rope":
            inv_freq = rope_frequencies(cfg)
            q = rotary_embedding(q, positions, inv_freq)  # [batch, length, heads, head_dim]
            k = rotary_embedding(k, positions, inv_freq)  # [batch, length, kv_heads, head_dim]
        q = constrain(q, ("batch", "length", "act_heads", "act_kv"))
        if cache is not None:
            # The cache is [batch, kv_heads, max_length, head_dim]: attention reads it without
            # a transposed copy per step. ``[rows, :, positions]`` addresses [batch, length, ...].
            rows = jnp.arange(x.shape[0])[:, None]  # [batch, 1]
            k = cache["k"].at[rows, :, positions].set(k.astype(cache["k"].dtype))
            v = cache["v"].at[rows, :, positions].set(v.astype(cache["v"].dtype))
            cache = {"k": k, "v": v}
        structured = isinstance(mask, AttentionMask)
        if cache is not None and kernels.select_decode(cfg, structured=structured) == "ragged":
            out = ragged_attention(
                q,
                k,
                v,
                positions,
                block=cfg.decode_block,
                sliding_window=cfg.sliding_window,
                slopes=alibi_slopes(h) if cfg.position == "alibi" else None,
                dtype=cfg.compute_dtype,
            )  # [batch, length, heads, head_dim]
            return self._output(out, common), cache
        impl = kernels.select(
            cfg, cached=cache is not None, length=x.shape[1], structured=structured
        )
        if impl != "xla":
            out = kernels.fused_attention(
                impl, q, k, v, mask.segment_ids, cfg.sliding_window
            )  # [batch, length, heads, head_dim]
            return self._output(out.astype(cfg.compute_dtype), common), cache
        dense = mask.dense if structured else mask  # [batch, length, keys] bool
        return self._output(self._einsum(q, k, v, dense, key_positions, cache), common), cache

    def _einsum(
        self,
        q: Array,  # [batch, length, heads, head_dim]
        k: Array,  # [batch, length, kv_heads, head_dim]
        v: Array,  # [batch, length, kv_heads, head_dim]
        mask: Array,  # [batch, length, keys] bool
        key_positions: Array,  # [batch, keys]
        cache: dict[str, Array] | None,
    ) -> Array:
        """The ``"xla"`` kernel: scores, mask, softmax, values: [batch, length, heads, d].

        With a cache, ``k``/``v`` are the updated cache [batch, kv_heads, max_length, d].
        """
        cfg = self.config
        h, kvh, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        keys = "bskd"  # [batch, keys, kv_heads, head_dim]
        if cache is not None:
            keys = "bksd"  # the cache is [batch, kv_heads, max_length, head_dim]

        batch, length = q.shape[:2]
        q = q.reshape(
            batch, length, kvh, h // kvh, d
        )  # [batch, length, kv_heads, groups, head_dim]
        scores = jnp.einsum(f"btkgd,{keys}->bkgts", q, k.astype(q.dtype)).astype(jnp.float32)
        scores = scores / jnp.sqrt(jnp.float32(d))
        if cfg.position == "alibi":
            slopes = alibi_slopes(h).reshape(kvh, h // kvh)  # [kv_heads, groups]
            bias = slopes[None, :, :, None, None] * key_positions[:, None, None, None, :]
            scores = scores + bias
        scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(cfg.compute_dtype)  # [b, kv, g, t, s]
        out = jnp.einsum(f"bkgts,{keys}->btkgd", probs, v.astype(cfg.compute_dtype))
        return out.reshape(batch, length, h, d)

    def _output(self, out: Array, common: dict) -> Array:
        """The output projection of heads [batch, length, heads, head_dim] → [b, t, embed]."""
        cfg = self.config
        h, d, e = cfg.num_heads, cfg.head_dim, cfg.embed_dim
        out = constrain(out, ("batch", "length", "act_heads", "act_kv"))
        return Projection(
            (h, d, e),
            ("heads", "kv", "embed"),
            "bthd,hde->bte",
            use_bias=cfg.out_bias,
            name="o_proj",
            **{**common, "num_in": 2},
        )(out)
