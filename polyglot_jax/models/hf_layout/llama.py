"""Llama 1/2/3, OpenLLaMA, Mistral and Qwen2: separate q/k/v projections, RMSNorm, SwiGLU."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.hf_layout.base import (
    Getter,
    Layout,
    Path,
    check_allowed,
    dense_in,
    dense_out,
    first_set,
)


class LlamaLayout(Layout):
    """Llama 1/2/3, OpenLLaMA, Mistral and Qwen2: separate q/k/v projections."""

    prefix = "model."
    embed = "embed_tokens.weight"
    final_norm = "norm"
    layer = "layers.{i}"
    attn_out = "self_attn.o_proj"
    mlp = {"gate_proj": "mlp.gate_proj", "up_proj": "mlp.up_proj", "down_proj": "mlp.down_proj"}  # noqa: RUF012
    buffers = ("rotary_emb.inv_freq",)

    def __init__(self, model_type: str) -> None:
        self.model_type = model_type

    def config_fields(self, hf: dict, where: str) -> tuple[dict, set[str]]:
        check_allowed(hf, "hidden_act", ("silu",), where)
        heads = hf["num_attention_heads"]
        fields = {
            "vocab_size": hf["vocab_size"],
            "embed_dim": hf["hidden_size"],
            "num_layers": hf["num_hidden_layers"],
            "num_heads": heads,
            "num_kv_heads": first_set(hf, "num_key_value_heads", default=heads),
            "head_dim": first_set(hf, "head_dim", default=hf["hidden_size"] // heads),
            "mlp_dim": hf["intermediate_size"],
            "norm_eps": hf.get("rms_norm_eps", 1e-6),
            "tie_embeddings": hf.get("tie_word_embeddings", False),
            "mlp_bias": hf.get("mlp_bias", False),
        }
        if self.model_type == "qwen2":
            check_allowed(hf, "use_sliding_window", (False,), where)
            fields["qkv_bias"] = True
        else:
            fields["qkv_bias"] = fields["out_bias"] = hf.get("attention_bias", False)
        if self.model_type == "mistral":
            fields["sliding_window"] = hf.get("sliding_window")
        handled = {
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "intermediate_size",
            "rms_norm_eps",
            "tie_word_embeddings",
            "mlp_bias",
            "attention_bias",
            "hidden_act",
            "use_sliding_window",
            "sliding_window",
        }
        if self.model_type == "qwen2" and not hf.get("use_sliding_window", False):
            handled.add("sliding_window")
        return fields, handled

    def config_dict(self, cfg: DecoderConfig) -> dict:
        arch = {
            "llama": "LlamaForCausalLM",
            "mistral": "MistralForCausalLM",
            "qwen2": "Qwen2ForCausalLM",
        }[self.model_type]
        hf = {
            "architectures": [arch],
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.embed_dim,
            "intermediate_size": cfg.mlp_dim,
            "num_hidden_layers": cfg.num_layers,
            "num_attention_heads": cfg.num_heads,
            "num_key_value_heads": cfg.num_kv_heads,
            "head_dim": cfg.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": cfg.norm_eps,
            "max_position_embeddings": cfg.max_length,
            "tie_word_embeddings": cfg.tie_embeddings,
            "rope_theta": cfg.rope_theta,
            "rope_scaling": None,
        }
        if cfg.rope_scaling_factor is not None:
            hf["rope_scaling"] = {
                "rope_type": "llama3",
                "factor": cfg.rope_scaling_factor,
                "low_freq_factor": cfg.rope_low_freq_factor,
                "high_freq_factor": cfg.rope_high_freq_factor,
                "original_max_position_embeddings": cfg.rope_original_max_length,
            }
        if self.model_type == "llama":
            hf["attention_bias"], hf["mlp_bias"] = cfg.qkv_bias, cfg.mlp_bias
        if self.model_type == "mistral":
            hf["sliding_window"] = cfg.sliding_window
        return hf

    def norm_names(self, cfg: DecoderConfig) -> dict[str, str]:
        return {"input_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm"}

    def split_qkv(
        self, get: Getter, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[Path, np.ndarray]]:
        base = self.layer.format(i=i)
        for proj, heads in (
            ("q_proj", cfg.num_heads),
            ("k_proj", cfg.num_kv_heads),
            ("v_proj", cfg.num_kv_heads),
        ):
            yield (
                (proj, "kernel"),
                dense_in(get(f"{base}.self_attn.{proj}.weight"), heads, cfg.head_dim),
            )
            if cfg.qkv_bias:
                bias = get(f"{base}.self_attn.{proj}.bias")
                yield (proj, "bias"), bias.reshape(heads, cfg.head_dim)

    def fuse_qkv(
        self, param: Callable, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[str, np.ndarray]]:
        layer = f"layers_{i}"
        for proj in ("q_proj", "k_proj", "v_proj"):
            yield f"self_attn.{proj}.weight", dense_out(param(layer, "attention", proj, "kernel"))
            if cfg.qkv_bias:
                yield f"self_attn.{proj}.bias", param(layer, "attention", proj, "bias").reshape(-1)
