"""LoRA: train adapters only, merge them into the base, export them in the PEFT layout.

Adapters live next to the kernel they adapt (``.../q_proj/lora_a`` ``[*in, rank]`` and
``.../q_proj/lora_b`` ``[rank, *out]``, B zero-initialised so step 0 is the base model); see
:class:`~polyglot_jax.models.layers.Projection`. A fused ``query_key_value`` adapter (Falcon,
BLOOM, GPT-NeoX) has one A at ``.../attention/query_key_value/lora_a`` ``[embed, rank]`` shared
by the q/k/v projections, each with its own B slice; see
:mod:`~polyglot_jax.models.lora_targets`. :func:`split` separates adapters from the frozen base,
which the train step neither differentiates nor gives optimizer state.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import numpy as np
import safetensors.numpy
from flax import traverse_util

from polyglot_jax.errors import CheckpointError, ConfigError
from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.decoder import LAYER_AXIS, stack_layers, unstack_layers
from polyglot_jax.models.hf_layout import LAYOUTS, FusedLayout, Layout
from polyglot_jax.models.lora_targets import FUSED_QKV

ADAPTER_LEAVES = ("lora_a", "lora_b")
PEFT_FAMILIES = tuple(LAYOUTS)
_QKV = ("q_proj", "k_proj", "v_proj")


def split(params: Any, cfg: DecoderConfig) -> tuple[Any, Any]:
    """``(trainable, frozen)`` parameter trees: adapters and base with LoRA, else all and none.

    The train step differentiates and optimizes only the trainable tree, so frozen weights get
    no gradients and no optimizer state.
    """
    if cfg.lora is None:
        return params, {}
    flat = traverse_util.flatten_dict(params)
    trainable = {k: v for k, v in flat.items() if k[-1] in ADAPTER_LEAVES}
    frozen = {k: v for k, v in flat.items() if k[-1] not in ADAPTER_LEAVES}
    return traverse_util.unflatten_dict(trainable), traverse_util.unflatten_dict(frozen)


def combine(trainable: Any, frozen: Any) -> Any:
    """Inverse of :func:`split`."""
    if not frozen:
        return trainable
    flat = traverse_util.flatten_dict(frozen)
    flat.update(traverse_util.flatten_dict(trainable))
    return traverse_util.unflatten_dict(flat)


def adapters_only(params: Any) -> dict:
    """The LoRA leaves of ``params`` (flat dict keyed by path tuples)."""
    return {k: v for k, v in traverse_util.flatten_dict(params).items() if k[-1] in ADAPTER_LEAVES}


def without_adapters(params: Any) -> Any:
    """``params`` with the LoRA leaves removed (the base model's tree)."""
    flat = traverse_util.flatten_dict(params)
    return traverse_util.unflatten_dict(
        {k: v for k, v in flat.items() if k[-1] not in ADAPTER_LEAVES}
    )


def with_base(params: Any, base: Any) -> Any:
    """``params`` with every non-adapter leaf taken from ``base`` (e.g. an imported checkpoint)."""
    flat = traverse_util.flatten_dict(params)
    base_flat = traverse_util.flatten_dict(base)
    missing = [k for k in flat if k[-1] not in ADAPTER_LEAVES and k not in base_flat]
    if missing:
        raise CheckpointError(f"base parameters lack {'/'.join(missing[0])}")
    merged = {k: (v if k[-1] in ADAPTER_LEAVES else base_flat[k]) for k, v in flat.items()}
    return traverse_util.unflatten_dict(merged)


def _delta(a: jax.Array, b: jax.Array, scale: float) -> jax.Array:
    """``a @ b * scale`` reshaped to the kernel: a [*in, r], b [r, *out] → [*in, *out]."""
    rank = a.shape[-1]
    flat = a.reshape(-1, rank) @ b.reshape(rank, -1)
    return (flat * scale).reshape(*a.shape[:-1], *b.shape[1:])


def merge(params: Any, cfg: DecoderConfig) -> Any:
    """Folds every adapter into its kernel and drops the adapter leaves.

    Scanned parameters (a stacked ``layers`` tree) are merged layer by layer and stacked again.
    """
    if cfg.lora is None:
        return params
    if LAYER_AXIS in params:
        return stack_layers(merge(unstack_layers(params), cfg), cfg.num_layers)
    flat = traverse_util.flatten_dict(params)
    out = {}
    for key, value in flat.items():
        if key[-1] in ADAPTER_LEAVES:
            continue
        if key[-1] == "kernel" and (*key[:-1], "lora_b") in flat:
            a = flat.get((*key[:-1], "lora_a"))
            if a is None:  # a q/k/v slice of a fused adapter
                a = flat[(*key[:-2], FUSED_QKV, "lora_a")]
            b = flat[(*key[:-1], "lora_b")]
            value = (value + _delta(a, b, cfg.lora.scale).astype(value.dtype)).astype(value.dtype)
        out[key] = value
    return traverse_util.unflatten_dict(out)


def _hf_module(layout: Layout, proj: str) -> str:
    """The Hugging Face module, within a layer, that our projection ``proj`` maps to."""
    if proj == FUSED_QKV:
        return layout.qkv
    if proj == "o_proj":
        return layout.attn_out
    if proj in layout.mlp:
        return layout.mlp[proj]
    return f"self_attn.{proj}"  # separate q/k/v of the Llama layout


def _peft_pairs(
    params: Any, cfg: DecoderConfig, layout: Layout
) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """``{(layer, proj): (lora_A.weight [rank, in], lora_B.weight [out, rank])}`` on the host.

    A fused adapter's B slices ``[rank, n, head_dim]`` are put back in the family's fused row
    order, the order in which its ``query_key_value`` weight holds q, k and v.
    """
    flat = {k: np.asarray(jax.device_get(v)) for k, v in adapters_only(params).items()}
    pairs, fused_a, fused_b = {}, {}, {}
    for key, value in flat.items():
        layer, proj = int(key[0].split("_")[1]), key[-2]
        if proj == FUSED_QKV:
            fused_a[layer] = value.T  # [rank, embed]
        elif isinstance(layout, FusedLayout) and proj in _QKV:
            if key[-1] == "lora_a":
                raise ConfigError(
                    f"export_peft: {cfg.family} has no {proj} in Hugging Face; "
                    f"adapt {FUSED_QKV} instead"
                )
            fused_b.setdefault(layer, {})[proj] = value.transpose(1, 2, 0)  # [n, head_dim, r]
        elif key[-1] == "lora_a":
            rank = value.shape[-1]
            b = flat[(*key[:-1], "lora_b")].reshape(rank, -1)  # [rank, out]
            pairs[layer, proj] = (value.reshape(-1, rank).T, b.T)
    for layer, parts in fused_b.items():
        pairs[layer, FUSED_QKV] = (fused_a[layer], layout.fuse_rows(parts, cfg))
    return pairs


def export_peft(
    params: Any,
    cfg: DecoderConfig,
    out_dir: str | pathlib.Path,
    base_model_name_or_path: str = "",
) -> pathlib.Path:
    """Writes ``adapter_model.safetensors`` and ``adapter_config.json`` that ``peft`` loads.

    Modules are named as in the family's Hugging Face model, e.g.
    ``base_model.model.transformer.h.0.self_attention.query_key_value.lora_A.weight`` for a
    fused adapter (one pair on the fused matrix, target module ``query_key_value``).

    Raises:
      ConfigError: no adapters, a family without a Hugging Face layout, or separate q/k/v
        adapters on a family that fuses them.
    """
    if cfg.lora is None:
        raise ConfigError("export_peft: the config has no LoRA adapters")
    if cfg.family not in PEFT_FAMILIES:
        raise ConfigError(
            f"export_peft: {cfg.family} has no Hugging Face layout; merge the adapters "
            f"(lora.merge) and use the merged parameters instead"
        )
    layout = LAYOUTS[cfg.family]
    if LAYER_AXIS in params:  # scanned: one pair per layer, as PEFT names them
        params = unstack_layers(params)
    tensors, modules = {}, set()
    for (layer, proj), (a, b) in sorted(_peft_pairs(params, cfg, layout).items()):
        module = _hf_module(layout, proj)
        name = f"base_model.model.{layout.prefix}{layout.layer.format(i=layer)}.{module}"
        tensors[f"{name}.lora_A.weight"] = np.ascontiguousarray(a)  # [rank, in]
        tensors[f"{name}.lora_B.weight"] = np.ascontiguousarray(b)  # [out, rank]
        modules.add(module.rsplit(".", 1)[-1])
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file(
        tensors, out / "adapter_model.safetensors", metadata={"format": "pt"}
    )
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": cfg.lora.rank,
        "lora_alpha": cfg.lora.alpha,
        "lora_dropout": cfg.lora.dropout,
        "target_modules": sorted(modules),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "base_model_name_or_path": base_model_name_or_path,
    }
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def count(params: Any) -> tuple[int, int]:
    """``(adapter parameters, all parameters)``."""
    adapters = sum(int(np.prod(v.shape)) for v in adapters_only(params).values())
    total = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    return adapters, total
