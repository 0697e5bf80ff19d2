"""LoRA: train adapters only, merge them into the base, export them in the PEFT layout.

Adapters live next to the kernel they adapt (``.../q_proj/lora_a`` ``[*in, rank]`` and
``.../q_proj/lora_b`` ``[rank, *out]``, B zero-initialised so step 0 is the base model); see
:class:`~polyglot_jax.models.layers.Projection`. :func:`split` separates them from the frozen
base, which the train step neither differentiates nor gives optimizer state.
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

ADAPTER_LEAVES = ("lora_a", "lora_b")
# Our projection names and their Hugging Face module names (Llama-layout families).
_HF_MODULES = {
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "o_proj": "self_attn.o_proj",
    "gate_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "down_proj": "mlp.down_proj",
}
PEFT_FAMILIES = ("llama", "mistral", "qwen2")


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
    """Folds every adapter into its kernel and drops the adapter leaves."""
    if cfg.lora is None:
        return params
    flat = traverse_util.flatten_dict(params)
    out = {}
    for key, value in flat.items():
        if key[-1] in ADAPTER_LEAVES:
            continue
        if key[-1] == "kernel" and (*key[:-1], "lora_a") in flat:
            a, b = flat[(*key[:-1], "lora_a")], flat[(*key[:-1], "lora_b")]
            value = (value + _delta(a, b, cfg.lora.scale).astype(value.dtype)).astype(value.dtype)
        out[key] = value
    return traverse_util.unflatten_dict(out)


def export_peft(
    params: Any,
    cfg: DecoderConfig,
    out_dir: str | pathlib.Path,
    base_model_name_or_path: str = "",
) -> pathlib.Path:
    """Writes ``adapter_model.safetensors`` and ``adapter_config.json`` that ``peft`` loads.

    Raises:
      ValueError: no adapters, or a family whose attention is fused in Hugging Face
        (merge and export the full model instead).
    """
    if cfg.lora is None:
        raise ConfigError("export_peft: the config has no LoRA adapters")
    if cfg.family not in PEFT_FAMILIES:
        raise ConfigError(
            f"export_peft: {cfg.family} fuses q/k/v in Hugging Face; merge the adapters "
            f"(lora.merge) and export the full model instead"
        )
    tensors, modules = {}, set()
    for key, a in adapters_only(params).items():
        if key[-1] != "lora_a":
            continue
        b = params
        for k in (*key[:-1], "lora_b"):
            b = b[k]
        layer, proj = int(key[0].split("_")[1]), key[-2]
        name = f"base_model.model.model.layers.{layer}.{_HF_MODULES[proj]}"
        a_host, b_host = np.asarray(jax.device_get(a)), np.asarray(jax.device_get(b))
        rank = a_host.shape[-1]
        tensors[f"{name}.lora_A.weight"] = np.ascontiguousarray(a_host.reshape(-1, rank).T)
        tensors[f"{name}.lora_B.weight"] = np.ascontiguousarray(b_host.reshape(rank, -1).T)
        modules.add(proj)
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
