"""One configurable decoder-only transformer in Flax linen (Llama family).

RMSNorm, rotary position embeddings (half-split layout, as in Hugging Face Llama), SwiGLU MLP and
grouped-query attention. Every parameter and activation carries logical axis names
(``vocab, embed, mlp, heads, kv_heads, kv`` for parameters; ``batch, length, act_*`` for
activations) that ``partitioning`` maps to mesh axes.

The KV cache is explicit: ``Decoder.__call__`` takes a cache pytree and returns the updated one.
New keys and values are written at each token's position, so rows of a batch may sit at
different positions (prompts of different lengths need no left padding).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from polyglot_jax.models.config import DecoderConfig

Array = jax.Array
Cache = tuple[
    dict[str, Array], ...
]  # per layer {"k", "v"}: [batch, max_length, kv_heads, head_dim]

_KERNEL_INIT = nn.initializers.normal(stddev=0.02)


def _param(init: Any, axes: tuple[str, ...]) -> Any:
    return nn.with_logical_partitioning(init, axes)


def _constrain(x: Array, axes: tuple[str, ...]) -> Array:
    return nn.with_logical_constraint(x, axes)


def rotary_embedding(x: Array, positions: Array, theta: float) -> Array:
    """Rotates ``x`` [batch, length, heads, head_dim] by ``positions`` [batch, length].

    Half-split layout: dimension ``i`` pairs with ``i + head_dim / 2``.
    """
    half = x.shape[-1] // 2
    freq = 1.0 / (theta ** (jnp.arange(half, dtype=jnp.float32) / half))  # [half]
    angles = positions.astype(jnp.float32)[..., None] * freq  # [batch, length, half]
    sin = jnp.sin(angles)[:, :, None, :]
    cos = jnp.cos(angles)[:, :, None, :]
    x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)


class RMSNorm(nn.Module):
    """Root-mean-square layer norm, computed in float32."""

    eps: float
    dtype: Any
    param_dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:
        scale = self.param(
            "scale", _param(nn.initializers.ones, ("embed",)), (x.shape[-1],), self.param_dtype
        )
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (normed * scale.astype(jnp.float32)).astype(self.dtype)


class Projection(nn.Module):
    """A bias-free linear map written as one einsum over a kernel with logical axes.

    Attributes:
      shape: kernel shape, e.g. ``(embed, heads, head_dim)``.
      axes: logical axis name of each kernel dimension.
      equation: einsum of input and kernel, e.g. ``"bte,ehd->bthd"``.
      dtype: compute dtype.
      param_dtype: storage dtype of the kernel.
    """

    shape: tuple[int, ...]
    axes: tuple[str, ...]
    equation: str
    dtype: Any
    param_dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", _param(_KERNEL_INIT, self.axes), self.shape, self.param_dtype)
        return jnp.einsum(self.equation, x.astype(self.dtype), kernel.astype(self.dtype))


class Attention(nn.Module):
    """Grouped-query self-attention with RoPE and an optional KV cache."""

    config: DecoderConfig

    @nn.compact
    def __call__(
        self,
        x: Array,  # [batch, length, embed]
        positions: Array,  # [batch, length]
        mask: Array,  # [batch, length, keys] bool
        cache: dict[str, Array] | None,
    ) -> tuple[Array, dict[str, Array] | None]:
        cfg = self.config
        e, h, kvh, d = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        dt = dict(dtype=cfg.compute_dtype, param_dtype=cfg.storage_dtype)
        q = Projection((e, h, d), ("embed", "heads", "kv"), "bte,ehd->bthd", name="q_proj", **dt)(x)
        kv_axes = ("embed", "kv_heads", "kv")
        k = Projection((e, kvh, d), kv_axes, "bte,ehd->bthd", name="k_proj", **dt)(x)
        v = Projection((e, kvh, d), kv_axes, "bte,ehd->bthd", name="v_proj", **dt)(x)
        q = rotary_embedding(q, positions, cfg.rope_theta)  # [batch, length, heads, head_dim]
        q = _constrain(q, ("batch", "length", "act_heads", "act_kv"))
        k = rotary_embedding(k, positions, cfg.rope_theta)  # [batch, length, kv_heads, head_dim]

        if cache is not None:
            rows = jnp.arange(x.shape[0])[:, None]  # [batch, 1]
            k = cache["k"].at[rows, positions].set(k.astype(cache["k"].dtype))
            v = cache["v"].at[rows, positions].set(v.astype(cache["v"].dtype))
            cache = {"k": k, "v": v}  # [batch, max_length, kv_heads, head_dim]

        batch, length = q.shape[:2]
        q = q.reshape(
            batch, length, kvh, h // kvh, d
        )  # [batch, length, kv_heads, groups, head_dim]
        scores = jnp.einsum("btkgd,bskd->bkgts", q, k.astype(q.dtype)).astype(jnp.float32)
        scores = scores / jnp.sqrt(jnp.float32(d))
        scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(cfg.compute_dtype)  # [b, kv, g, t, s]
        out = jnp.einsum("bkgts,bskd->btkgd", probs, v.astype(cfg.compute_dtype))
        out = _constrain(
            out.reshape(batch, length, h, d), ("batch", "length", "act_heads", "act_kv")
        )
        out = Projection((h, d, e), ("heads", "kv", "embed"), "bthd,hde->bte", name="o_proj", **dt)(
            out
        )
        return out, cache


class MLP(nn.Module):
    """SwiGLU feed-forward block: ``down(silu(gate(x)) * up(x))``."""

    config: DecoderConfig

    @nn.compact
    def __call__(self, x: Array) -> Array:  # [batch, length, embed]
        cfg = self.config
        dt = dict(dtype=cfg.compute_dtype, param_dtype=cfg.storage_dtype)
        up_shape, up_axes = (cfg.embed_dim, cfg.mlp_dim), ("embed", "mlp")
        gate = Projection(up_shape, up_axes, "bte,em->btm", name="gate_proj", **dt)(x)
        up = Projection(up_shape, up_axes, "bte,em->btm", name="up_proj", **dt)(x)
        hidden = _constrain(nn.silu(gate) * up, ("batch", "length", "act_mlp"))
        return Projection(
            (cfg.mlp_dim, cfg.embed_dim), ("mlp", "embed"), "btm,me->bte", name="down_proj", **dt
        )(hidden)


class Block(nn.Module):
    """Pre-norm residual block: attention then MLP."""

    config: DecoderConfig

    @nn.compact
    def __call__(
        self, x: Array, positions: Array, mask: Array, cache: dict[str, Array] | None
    ) -> tuple[Array, dict[str, Array] | None]:
        cfg = self.config
        norm = dict(eps=cfg.norm_eps, dtype=cfg.compute_dtype, param_dtype=cfg.storage_dtype)
        h, cache = Attention(cfg, name="attention")(
            RMSNorm(name="input_norm", **norm)(x), positions, mask, cache
        )
        x = x + h
        x = x + MLP(cfg, name="mlp")(RMSNorm(name="post_attention_norm", **norm)(x))
        return _constrain(x, ("batch", "length", "act_embed")), cache


def attention_mask(
    segment_ids: Array | None, positions: Array, num_keys: int, cached: bool
) -> Array:
    """Which keys each query may attend to: [batch, length, keys] bool.

    Without a cache, keys are the queries themselves: causal by index, within the same packed
    segment, never padding (segment 0). With a cache, key ``s`` is the token at position ``s``,
    visible to a query at position ``p`` when ``s <= p``.
    """
    if cached:
        keys = jnp.arange(num_keys)[None, None, :]
        return keys <= positions[:, :, None]
    length = positions.shape[1]
    causal = jnp.tril(jnp.ones((length, length), dtype=bool))[None]
    if segment_ids is None:
        return jnp.broadcast_to(causal, (positions.shape[0], length, length))
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    return causal & same & (segment_ids[:, None, :] != 0)


class Decoder(nn.Module):
    """The decoder: token ids in, next-token logits out."""

    config: DecoderConfig

    @nn.compact
    def __call__(
        self,
        tokens: Array,  # [batch, length] int
        positions: Array | None = None,  # [batch, length] int
        segment_ids: Array | None = None,  # [batch, length] int, 0 = padding
        cache: Cache | None = None,
    ) -> tuple[Array, Cache | None]:
        """Returns logits [batch, length, vocab] (float32) and the updated cache (or None)."""
        cfg = self.config
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        embed = nn.Embed(
            cfg.vocab_size,
            cfg.embed_dim,
            embedding_init=_param(_KERNEL_INIT, ("vocab", "embed")),
            dtype=cfg.compute_dtype,
            param_dtype=cfg.storage_dtype,
            name="embed",
        )
        x = _constrain(embed(tokens), ("batch", "length", "act_embed"))
        num_keys = cache[0]["k"].shape[1] if cache is not None else tokens.shape[1]
        mask = attention_mask(segment_ids, positions, num_keys, cached=cache is not None)
        new_cache = []
        for i in range(cfg.num_layers):
            x, layer_cache = Block(cfg, name=f"layers_{i}")(
                x, positions, mask, None if cache is None else cache[i]
            )
            new_cache.append(layer_cache)
        x = RMSNorm(cfg.norm_eps, cfg.compute_dtype, cfg.storage_dtype, name="final_norm")(x)
        if cfg.tie_embeddings:
            logits = embed.attend(x)
        else:
            logits = Projection(
                (cfg.embed_dim, cfg.vocab_size),
                ("embed", "vocab"),
                "bte,ev->btv",
                cfg.compute_dtype,
                cfg.storage_dtype,
                name="lm_head",
            )(x)
        logits = _constrain(logits.astype(jnp.float32), ("batch", "length", "act_vocab"))
        return logits, (tuple(new_cache) if cache is not None else None)


def init_cache(config: DecoderConfig, batch_size: int, max_length: int | None = None) -> Cache:
    """An empty KV cache: per layer ``k``/``v`` of [batch, max_length, kv_heads, head_dim]."""
    shape = (batch_size, max_length or config.max_length, config.num_kv_heads, config.head_dim)
    return tuple(
        {"k": jnp.zeros(shape, config.compute_dtype), "v": jnp.zeros(shape, config.compute_dtype)}
        for _ in range(config.num_layers)
    )
