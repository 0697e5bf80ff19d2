"""One configurable decoder-only transformer in Flax linen.

The blocks of Llama, Mistral, Qwen2, Falcon, BLOOM, GPT-NeoX and PaLM differ in a handful of
choices (norm type, gated or plain MLP, RoPE or ALiBi, biases, parallel or sequential residual);
:class:`~polyglot_jax.models.config.DecoderConfig` names them and this module implements each
once. Every parameter and activation carries logical axis names (``vocab, embed, mlp, heads,
kv_heads, kv`` for parameters; ``batch, length, act_*`` for activations) that ``partitioning``
maps to mesh axes.

The KV cache is explicit: ``Decoder.__call__`` takes a cache pytree and returns the updated one.
New keys and values are written at each token's position, so rows of a batch may sit at
different positions (prompts of different lengths need no left padding).
"""

from __future__ import annotations

import math
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from polyglot_jax.models.config import DecoderConfig, LoRAConfig

Array = jax.Array
Cache = tuple[
    dict[str, Array], ...
]  # per layer {"k", "v"}: [batch, kv_heads, max_length, head_dim]

_KERNEL_INIT = nn.initializers.normal(stddev=0.02)


def _param(init: Any, axes: tuple[str, ...]) -> Any:
    return nn.with_logical_partitioning(init, axes)


def _constrain(x: Array, axes: tuple[str, ...]) -> Array:
    return nn.with_logical_constraint(x, axes)


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


class Norm(nn.Module):
    """RMSNorm (scale only) or LayerNorm (scale and bias), computed in float32."""

    kind: str
    eps: float
    dtype: Any
    param_dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:  # [..., embed]
        dim = x.shape[-1]
        scale = self.param(
            "scale", _param(nn.initializers.ones, ("embed",)), (dim,), self.param_dtype
        )
        x32 = x.astype(jnp.float32)
        if self.kind == "layernorm":
            x32 = x32 - jnp.mean(x32, axis=-1, keepdims=True)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        normed = normed * scale.astype(jnp.float32)
        if self.kind == "layernorm":
            bias = self.param(
                "bias", _param(nn.initializers.zeros, ("embed",)), (dim,), self.param_dtype
            )
            normed = normed + bias.astype(jnp.float32)
        return normed.astype(self.dtype)


class Projection(nn.Module):
    """A linear map written as one einsum over a kernel with logical axes, with optional LoRA.

    Attributes:
      shape: kernel shape, e.g. ``(embed, heads, head_dim)``.
      axes: logical axis name of each kernel dimension.
      equation: einsum of input and kernel, e.g. ``"bte,ehd->bthd"``.
      num_in: how many leading kernel dimensions are contracted with the input.
      dtype: compute dtype.
      param_dtype: storage dtype.
      use_bias: add a bias over the output dimensions.
      lora: adapters, applied when this module's path matches one of its targets.
    """

    shape: tuple[int, ...]
    axes: tuple[str, ...]
    equation: str
    num_in: int
    dtype: Any
    param_dtype: Any
    use_bias: bool = False
    lora: LoRAConfig | None = None
    deterministic: bool = True

    def _equation_parts(self) -> tuple[str, str, str]:
        """``(input, kernel, output)`` subscripts of :attr:`equation`."""
        ins, rest = self.equation.split(",")
        kernel_in, out = rest.split("->")
        return ins, kernel_in, out

    def lora_active(self) -> bool:
        if self.lora is None:
            return False
        path = "/".join(str(p) for p in self.scope.path)
        return any(re.search(t, path) for t in self.lora.targets)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", _param(_KERNEL_INIT, self.axes), self.shape, self.param_dtype)
        equation, inputs, weights = self.equation, x, kernel
        if self.num_in > 1:
            # Contract the flattened input dims in one 2-D dot: left as several dims, XLA may
            # transpose the whole kernel to match the activation's layout on every call.
            ins, kernel_in, out = self._equation_parts()
            equation = f"{ins[: -self.num_in]}z,z{kernel_in[self.num_in :]}->{out}"
            inputs = x.reshape(*x.shape[: -self.num_in], -1)
            weights = kernel.reshape(-1, *self.shape[self.num_in :])
        y = jnp.einsum(equation, inputs.astype(self.dtype), weights.astype(self.dtype))
        if self.use_bias:
            out_shape, out_axes = self.shape[self.num_in :], self.axes[self.num_in :]
            bias = self.param(
                "bias", _param(nn.initializers.zeros, out_axes), out_shape, self.param_dtype
            )
            y = y + bias.astype(self.dtype)
        if self.lora_active():
            y = y + self._lora(x)
        return y

    def _lora(self, x: Array) -> Array:
        r = self.lora.rank
        in_shape, out_shape = self.shape[: self.num_in], self.shape[self.num_in :]
        in_axes, out_axes = self.axes[: self.num_in], self.axes[self.num_in :]
        a = self.param(
            "lora_a",
            _param(
                nn.initializers.he_uniform(in_axis=tuple(range(self.num_in)), out_axis=-1),
                (*in_axes, None),
            ),
            (*in_shape, r),
            self.param_dtype,
        )
        b = self.param(
            "lora_b",
            _param(nn.initializers.zeros, (None, *out_axes)),
            (r, *out_shape),
            self.param_dtype,
        )
        x = nn.Dropout(self.lora.dropout)(x, deterministic=self.deterministic)
        ins, kernel_in, out = self._equation_parts()
        down = jnp.einsum(
            f"{ins},{kernel_in[: self.num_in]}r->{ins[: -self.num_in]}r",
            x.astype(self.dtype),
            a.astype(self.dtype),
        )
        up = jnp.einsum(
            f"{ins[: -self.num_in]}r,r{kernel_in[self.num_in :]}->{out}", down, b.astype(self.dtype)
        )
        return up * self.lora.scale


class Attention(nn.Module):
    """Grouped-query self-attention with RoPE or ALiBi and an optional KV cache."""

    config: DecoderConfig
    deterministic: bool = True

    @nn.compact
    def __call__(
        self,
        x: Array,  # [batch, length, embed]
        positions: Array,  # [batch, length]
        mask: Array,  # [batch, length, keys] bool
        key_positions: Array,  # [batch, keys]
        cache: dict[str, Array] | None,
    ) -> tuple[Array, dict[str, Array] | None]:
        cfg = self.config
        e, h, kvh, d = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        common = dict(
            dtype=cfg.compute_dtype,
            param_dtype=cfg.storage_dtype,
            lora=cfg.lora,
            deterministic=self.deterministic,
            num_in=1,
        )
        kv_axes = ("embed", "kv_heads", "kv")
        qkv = dict(equation="bte,ehd->bthd", use_bias=cfg.qkv_bias, **common)
        q = Projection((e, h, d), ("embed", "heads", "kv"), name="q_proj", **qkv)(x)
        k = Projection((e, kvh, d), kv_axes, name="k_proj", **qkv)(x)
        v = Projection((e, kvh, d), kv_axes, name="v_proj", **qkv)(x)
        if cfg.position == "rope":
            inv_freq = rope_frequencies(cfg)
            q = rotary_embedding(q, positions, inv_freq)  # [batch, length, heads, head_dim]
            k = rotary_embedding(k, positions, inv_freq)  # [batch, length, kv_heads, head_dim]
        q = _constrain(q, ("batch", "length", "act_heads", "act_kv"))

        keys = "bskd"  # [batch, keys, kv_heads, head_dim]
        if cache is not None:
            # The cache is [batch, kv_heads, max_length, head_dim]: attention reads it without
            # a transposed copy per step. ``[rows, :, positions]`` addresses [batch, length, ...].
            rows = jnp.arange(x.shape[0])[:, None]  # [batch, 1]
            k = cache["k"].at[rows, :, positions].set(k.astype(cache["k"].dtype))
            v = cache["v"].at[rows, :, positions].set(v.astype(cache["v"].dtype))
            cache, keys = {"k": k, "v": v}, "bksd"

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
        out = _constrain(
            out.reshape(batch, length, h, d), ("batch", "length", "act_heads", "act_kv")
        )
        out = Projection(
            (h, d, e),
            ("heads", "kv", "embed"),
            "bthd,hde->bte",
            use_bias=cfg.out_bias,
            name="o_proj",
            **{**common, "num_in": 2},
        )(out)
        return out, cache


class MLP(nn.Module):
    """SwiGLU (``down(silu(gate(x)) * up(x))``) or plain GELU (``down(gelu(up(x)))``)."""

    config: DecoderConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:  # [batch, length, embed]
        cfg = self.config
        common = dict(
            dtype=cfg.compute_dtype,
            param_dtype=cfg.storage_dtype,
            lora=cfg.lora,
            deterministic=self.deterministic,
            use_bias=cfg.mlp_bias,
            num_in=1,
        )
        up_shape, up_axes = (cfg.embed_dim, cfg.mlp_dim), ("embed", "mlp")
        up = Projection(up_shape, up_axes, "bte,em->btm", name="up_proj", **common)(x)
        if cfg.activation == "swiglu":
            gate = Projection(up_shape, up_axes, "bte,em->btm", name="gate_proj", **common)(x)
            hidden = nn.silu(gate) * up
        else:
            hidden = jax.nn.gelu(up, approximate=cfg.activation == "gelu_tanh")
        hidden = _constrain(hidden, ("batch", "length", "act_mlp"))
        return Projection(
            (cfg.mlp_dim, cfg.embed_dim),
            ("mlp", "embed"),
            "btm,me->bte",
            name="down_proj",
            **common,
        )(hidden)


class Block(nn.Module):
    """A decoder block: sequential (pre-norm) or parallel attention and MLP."""

    config: DecoderConfig
    deterministic: bool = True

    @nn.compact
    def __call__(
        self,
        x: Array,
        positions: Array,
        mask: Array,
        key_positions: Array,
        cache: dict[str, Array] | None,
    ) -> tuple[Array, dict[str, Array] | None]:
        cfg = self.config
        norm = dict(
            kind=cfg.norm, eps=cfg.norm_eps, dtype=cfg.compute_dtype, param_dtype=cfg.storage_dtype
        )
        attention = Attention(cfg, self.deterministic, name="attention")
        mlp = MLP(cfg, self.deterministic, name="mlp")
        h = Norm(name="input_norm", **norm)(x)
        attn_out, cache = attention(h, positions, mask, key_positions, cache)
        if cfg.parallel_block:
            mlp_in = h if cfg.shared_block_norm else Norm(name="post_attention_norm", **norm)(x)
            x = x + attn_out + mlp(mlp_in)
        else:
            x = x + attn_out
            x = x + mlp(Norm(name="post_attention_norm", **norm)(x))
        return _constrain(x, ("batch", "length", "act_embed")), cache


def attention_mask(
    segment_ids: Array | None,
    positions: Array,
    num_keys: int,
    cached: bool,
    sliding_window: int | None = None,
) -> tuple[Array, Array]:
    """Which keys each query may attend to, [batch, length, keys] bool, and key positions.

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
    return mask, key_positions


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
        deterministic: bool = True,
        logits_at: Array | None = None,  # [batch] int
    ) -> tuple[Array, Cache | None]:
        """Returns logits [batch, length, vocab] (float32) and the updated cache (or None).

        With ``logits_at``, only the logits at that index of each row are computed:
        [batch, 1, vocab] (a prefill needs just the last prompt token's).
        """
        cfg = self.config
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        norm = dict(
            kind=cfg.norm, eps=cfg.norm_eps, dtype=cfg.compute_dtype, param_dtype=cfg.storage_dtype
        )
        embed = nn.Embed(
            cfg.vocab_size,
            cfg.embed_dim,
            embedding_init=_param(_KERNEL_INIT, ("vocab", "embed")),
            dtype=cfg.compute_dtype,
            param_dtype=cfg.storage_dtype,
            name="embed",
        )
        x = embed(tokens)
        if cfg.embedding_norm:
            x = Norm(name="embed_norm", **norm)(x)
        x = _constrain(x, ("batch", "length", "act_embed"))
        num_keys = cache[0]["k"].shape[2] if cache is not None else tokens.shape[1]
        mask, key_positions = attention_mask(
            segment_ids, positions, num_keys, cache is not None, cfg.sliding_window
        )
        block = _remat(Block, cfg.remat)
        new_cache = []
        for i in range(cfg.num_layers):
            x, layer_cache = block(cfg, deterministic, name=f"layers_{i}")(
                x, positions, mask, key_positions, None if cache is None else cache[i]
            )
            new_cache.append(layer_cache)
        if logits_at is not None:
            x = x[jnp.arange(x.shape[0]), logits_at][:, None]  # [batch, 1, embed]
        x = Norm(name="final_norm", **norm)(x)
        if cfg.tie_embeddings:
            logits = embed.attend(x)
        else:
            logits = Projection(
                (cfg.embed_dim, cfg.vocab_size),
                ("embed", "vocab"),
                "bte,ev->btv",
                1,
                cfg.compute_dtype,
                cfg.storage_dtype,
                name="lm_head",
            )(x)
        logits = _constrain(logits.astype(jnp.float32), ("batch", "length", "act_vocab"))
        return logits, (tuple(new_cache) if cache is not None else None)


def _remat(module: type[nn.Module], policy: str) -> type[nn.Module]:
    """``module`` wrapped for rematerialisation by name (see ``DecoderConfig.remat``)."""
    if policy == "none":
        return module
    policies = {
        "full": None,
        "dots": jax.checkpoint_policies.checkpoint_dots,
        "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
    }
    return nn.remat(module, policy=policies[policy], prevent_cse=True)


def init_cache(config: DecoderConfig, batch_size: int, max_length: int | None = None) -> Cache:
    """An empty KV cache: per layer ``k``/``v`` of [batch, kv_heads, max_length, head_dim]."""
    shape = (batch_size, config.num_kv_heads, max_length or config.max_length, config.head_dim)
    return tuple(
        {"k": jnp.zeros(shape, config.compute_dtype), "v": jnp.zeros(shape, config.compute_dtype)}
        for _ in range(config.num_layers)
    )
