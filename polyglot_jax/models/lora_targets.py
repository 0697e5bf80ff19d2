"""Which projections a LoRA target names, and the fused ``query_key_value`` adapter.

Targets are regular expressions searched in a projection's layer-free path
(``attention/q_proj``, ``mlp/down_proj``: the same whether layers are scanned or unrolled) and
name the modules of the family's Hugging Face layout, so that an adapter trained here is an
adapter ``peft`` can load. Llama-layout families have ``q_proj``, ``k_proj`` and ``v_proj``;
Falcon, BLOOM and GPT-NeoX have one fused ``query_key_value`` instead. A target that names no
module of the family (a layer index such as ``layers_0/attention/q_proj`` among them) is
refused.

A ``query_key_value`` adapter is one LoRA pair on the fused matrix: the q, k and v projections
share one A ``[embed, rank]`` (``attention/query_key_value/lora_a``) and each holds the slice of
the fused B that the family's fused row order assigns to it (``attention/q_proj/lora_b``
``[rank, heads, head_dim]``, ``k_proj``/``v_proj`` ``[rank, kv_heads, head_dim]``), so
``A @ B_q`` is the q part of the fused update.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from polyglot_jax.errors import ConfigError
from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.hf_layout import LAYOUTS, FusedLayout
from polyglot_jax.models.layers import module_path, partitioned

Array = jax.Array

FUSED_QKV = "query_key_value"
_SEPARATE_QKV = ("q_proj", "k_proj", "v_proj")


def has_fused_qkv(cfg: DecoderConfig) -> bool:
    """Whether the family stores q/k/v as one fused matrix in Hugging Face."""
    return isinstance(LAYOUTS.get(cfg.family), FusedLayout)


def layer_modules(cfg: DecoderConfig) -> tuple[str, ...]:
    """The adaptable modules of one layer, as ``attention/<name>`` and ``mlp/<name>``."""
    qkv = (FUSED_QKV,) if has_fused_qkv(cfg) else _SEPARATE_QKV
    mlp = (
        ("gate_proj", "up_proj", "down_proj")
        if cfg.activation == "swiglu"
        else ("up_proj", "down_proj")
    )
    return (*(f"attention/{m}" for m in (*qkv, "o_proj")), *(f"mlp/{m}" for m in mlp))


def targeted(cfg: DecoderConfig, scope_path: Sequence[str]) -> bool:
    """Whether a LoRA target names the projection at ``scope_path``."""
    path = module_path(scope_path)
    return cfg.lora is not None and any(re.search(t, path) for t in cfg.lora.targets)


@functools.lru_cache(maxsize=64)
def check_targets(cfg: DecoderConfig) -> None:
    """Refuses a LoRA target that matches no module of the family.

    Raises:
      ConfigError: e.g. ``query_key_value`` on Llama, ``q_proj`` on BLOOM, or a layer-indexed
        ``layers_0/attention/q_proj`` (targets name modules, not layers).
    """
    if cfg.lora is None:
        return
    modules = layer_modules(cfg)
    for target in cfg.lora.targets:
        if not any(re.search(target, m) for m in modules):
            raise ConfigError(
                f"LoRA target {target!r} names no module of a {cfg.family} model; targets are "
                f"matched in every layer against {', '.join(modules)}"
            )


def fused_qkv_targeted(cfg: DecoderConfig, attention_path: str) -> bool:
    """Whether the attention module at ``attention_path`` gets a fused q/k/v adapter."""
    if cfg.lora is None or not has_fused_qkv(cfg):
        return False
    return targeted(cfg, (*attention_path.split("/"), FUSED_QKV))


class FusedQKVDown(nn.Module):
    """The shared down-projection ``dropout(x) @ A`` of a fused q/k/v adapter.

    Called under the name ``query_key_value`` inside the attention module; returns None (and
    makes no parameter) when no target names that module, else ``[batch, length, rank]``, which
    the q, k and v projections lift with their own B slices.
    """

    config: DecoderConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array | None:  # x: [batch, length, embed]
        cfg = self.config
        check_targets(cfg)
        attention_path = "/".join(str(p) for p in self.scope.path[:-1])
        if not fused_qkv_targeted(cfg, attention_path):
            return None
        a = self.param(
            "lora_a",
            partitioned(nn.initializers.he_uniform(in_axis=0, out_axis=-1), ("embed", None)),
            (cfg.embed_dim, cfg.lora.rank),
            cfg.storage_dtype,
        )  # [embed, rank]
        x = nn.Dropout(cfg.lora.dropout)(x, deterministic=self.deterministic)
        return jnp.einsum("bte,er->btr", x.astype(cfg.compute_dtype), a.astype(cfg.compute_dtype))
