"""One configurable decoder-only transformer in Flax linen.

The blocks of Llama, Mistral, Qwen2, Falcon, BLOOM, GPT-NeoX and PaLM differ in a handful of
choices (norm type, gated or plain MLP, RoPE or ALiBi, biases, parallel or sequential residual);
:class:`~polyglot_jax.models.config.DecoderConfig` names them and this module and its parts
(:mod:`~polyglot_jax.models.layers`, :mod:`~polyglot_jax.models.attention`) implement each once.

The KV cache is explicit: ``Decoder.__call__`` takes a cache pytree and returns the updated one.
With ``DecoderConfig.scan_layers`` the blocks are one ``nn.scan`` over a single layer body:
parameters live under ``layers`` with a leading layer axis (logical name ``"layers"``), and the
cache is one dict of stacked arrays instead of a tuple of per-layer dicts.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from polyglot_jax.models.attention import Attention, attention_mask
from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.layers import KERNEL_INIT, Norm, Projection, constrain, partitioned

Array = jax.Array
# Unrolled: per layer {"k", "v"}: [batch, kv_heads, max_length, head_dim].
# Scanned: one {"k", "v"}: [layers, batch, kv_heads, max_length, head_dim].
Cache = tuple[dict[str, Array], ...] | dict[str, Array]
LAYER_AXIS = "layers"


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
            quantized=cfg.weight_quantization != "none",
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
        hidden = constrain(hidden, ("batch", "length", "act_mlp"))
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
        x: Array,  # [batch, length, embed]
        positions: Array,  # [batch, length]
        mask: Array,  # [batch, length, keys] bool
        key_positions: Array,  # [batch, keys]
        cache: dict[str, Array] | None,
    ) -> tuple[Array, dict[str, Array] | None]:
        """Returns the block's output [batch, length, embed] and the layer's updated cache."""
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
        return constrain(x, ("batch", "length", "act_embed")), cache


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
            embedding_init=partitioned(KERNEL_INIT, ("vocab", "embed")),
            dtype=cfg.compute_dtype,
            param_dtype=cfg.storage_dtype,
            name="embed",
        )
        x = embed(tokens)
        if cfg.embedding_norm:
            x = Norm(name="embed_norm", **norm)(x)
        x = constrain(x, ("batch", "length", "act_embed"))
        if cache is None:
            num_keys = tokens.shape[1]
        else:  # [(layers,) batch, kv_heads, max_length, head_dim]
            num_keys = (cache["k"] if cfg.scan_layers else cache[0]["k"]).shape[-2]
        mask, key_positions = attention_mask(
            segment_ids, positions, num_keys, cache is not None, cfg.sliding_window
        )
        if cfg.scan_layers:
            x, new_cache = _scanned(cfg)(cfg, deterministic, name=LAYER_AXIS)(
                x, positions, mask, key_positions, cache
            )
        else:
            block = _remat(Block, cfg.remat, prevent_cse=True)
            layer_caches = []
            for i in range(cfg.num_layers):
                x, layer_cache = block(cfg, deterministic, name=f"layers_{i}")(
                    x, positions, mask, key_positions, None if cache is None else cache[i]
                )
                layer_caches.append(layer_cache)
            new_cache = tuple(layer_caches) if cache is not None else None
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
                quantized=cfg.weight_quantization != "none",
                name="lm_head",
            )(x)
        logits = constrain(logits.astype(jnp.float32), ("batch", "length", "act_vocab"))
        return logits, new_cache


def _remat(module: type[nn.Module], policy: str, prevent_cse: bool) -> type[nn.Module]:
    """``module`` wrapped for rematerialisation by name (see ``DecoderConfig.remat``)."""
    if policy == "none":
        return module
    policies = {
        "full": None,
        "dots": jax.checkpoint_policies.checkpoint_dots,
        "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
    }
    return nn.remat(module, policy=policies[policy], prevent_cse=prevent_cse)


def _scanned(cfg: DecoderConfig) -> type[nn.Module]:
    """:class:`Block` (rematerialised per ``cfg.remat``) scanned over ``cfg.num_layers``.

    The residual stream is the carry; positions, mask and key positions are shared by every
    layer; the cache (or None) is scanned over its leading layer axis and returned stacked.
    """
    # Inside a scan the loop boundary already keeps XLA from merging the recomputation with
    # the forward pass, so CSE prevention would only add barriers.
    body = _remat(Block, cfg.remat, prevent_cse=False)
    return nn.scan(
        body,
        variable_axes={"params": 0},
        split_rngs={"params": True, "dropout": True},
        in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, 0),
        length=cfg.num_layers,
        metadata_params={nn.PARTITION_NAME: LAYER_AXIS},
    )


def init_cache(config: DecoderConfig, batch_size: int, max_length: int | None = None) -> Cache:
    """An empty KV cache for ``config``'s layout (see :data:`Cache`).

    Unrolled: per layer ``k``/``v`` of [batch, kv_heads, max_length, head_dim]; scanned: one
    ``k``/``v`` of [layers, batch, kv_heads, max_length, head_dim].
    """
    shape = (batch_size, config.num_kv_heads, max_length or config.max_length, config.head_dim)
    if config.scan_layers:
        stacked = (config.num_layers, *shape)
        return {k: jnp.zeros(stacked, config.compute_dtype) for k in ("k", "v")}
    return tuple(
        {"k": jnp.zeros(shape, config.compute_dtype), "v": jnp.zeros(shape, config.compute_dtype)}
        for _ in range(config.num_layers)
    )


CACHE_AXES = ("batch", "kv_heads", "length", "kv")  # logical axes of one layer's k or v


def cache_batch_axis(x: jax.Array) -> int:
    """The batch axis of a cache array: 0, or 1 behind the layer axis of scanned layers."""
    return x.ndim - len(CACHE_AXES)


def constrain_cache(cache: Cache) -> Cache:
    """The KV cache split over the batch like the activations (no-op outside a mesh)."""
    return jax.tree.map(
        lambda x: nn.with_logical_constraint(x, (None,) * cache_batch_axis(x) + CACHE_AXES), cache
    )


def stack_layers(params: dict, num_layers: int) -> dict:
    """Unrolled parameters (``layers_0`` … ``layers_{n-1}``) → the scanned layout.

    Each leaf of ``layers`` is the per-layer leaves stacked on a new leading axis:
    [layers, *shape].
    """
    out = {k: v for k, v in params.items() if not k.startswith("layers_")}
    per_layer = [params[f"layers_{i}"] for i in range(num_layers)]
    out[LAYER_AXIS] = jax.tree.map(lambda *xs: jnp.stack(xs), *per_layer)
    return out


def unstack_layers(params: dict) -> dict:
    """The scanned layout → unrolled parameters, the inverse of :func:`stack_layers`."""
    out = {k: v for k, v in params.items() if k != LAYER_AXIS}
    num_layers = jax.tree.leaves(params[LAYER_AXIS])[0].shape[0]
    for i in range(num_layers):
        out[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], params[LAYER_AXIS])
    return out
