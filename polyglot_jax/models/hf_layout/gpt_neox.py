"""GPT-NeoX and Pythia: fused qkv, partial rotary embedding, parallel residual."""

from __future__ import annotations

from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.hf_layout.base import NO_PREFIX, check_allowed
from polyglot_jax.models.hf_layout.fused import FusedLayout


class GPTNeoXLayout(FusedLayout):
    """GPT-NeoX and Pythia: per-head interleaved fused qkv, output head ``embed_out``."""

    prefix = "gpt_neox."
    embed = "embed_in.weight"
    final_norm = "final_layer_norm"
    lm_head = NO_PREFIX + "embed_out.weight"
    layer = "layers.{i}"
    qkv = "attention.query_key_value"
    attn_out = "attention.dense"
    mlp = {"up_proj": "mlp.dense_h_to_4h", "down_proj": "mlp.dense_4h_to_h"}  # noqa: RUF012
    buffers = (".attention.bias", ".attention.masked_bias", "rotary_emb.inv_freq")

    def config_fields(self, hf: dict, where: str) -> tuple[dict, set[str]]:
        check_allowed(hf, "hidden_act", ("gelu", "gelu_new"), where)
        rope = hf.get("rope_parameters") or {}
        fraction = rope.get("partial_rotary_factor", hf.get("rotary_pct", 0.25))
        hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
        bias = hf.get("attention_bias", True)
        fields = {
            "vocab_size": hf["vocab_size"],
            "embed_dim": hidden,
            "num_layers": hf["num_hidden_layers"],
            "num_heads": heads,
            "num_kv_heads": heads,
            "head_dim": hidden // heads,
            "mlp_dim": hf["intermediate_size"],
            "norm": "layernorm",
            "norm_eps": hf.get("layer_norm_eps", 1e-5),
            "activation": "gelu" if hf.get("hidden_act", "gelu") == "gelu" else "gelu_tanh",
            "rotary_fraction": float(fraction),
            "qkv_bias": bias,
            "out_bias": bias,
            "mlp_bias": True,
            "parallel_block": hf.get("use_parallel_residual", True),
            "tie_embeddings": hf.get("tie_word_embeddings", False),
        }
        handled = {
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "hidden_act",
            "layer_norm_eps",
            "rotary_pct",
            "rotary_emb_base",
            "use_parallel_residual",
            "attention_bias",
            "tie_word_embeddings",
        }
        return fields, handled

    def config_dict(self, cfg: DecoderConfig) -> dict:
        return {
            "architectures": ["GPTNeoXForCausalLM"],
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.embed_dim,
            "num_hidden_layers": cfg.num_layers,
            "num_attention_heads": cfg.num_heads,
            "intermediate_size": cfg.mlp_dim,
            "hidden_act": "gelu" if cfg.activation == "gelu" else "gelu_new",
            "layer_norm_eps": cfg.norm_eps,
            "rotary_pct": cfg.rotary_fraction,
            "rotary_emb_base": cfg.rope_theta,
            "rope_parameters": {
                "rope_theta": cfg.rope_theta,
                "rope_type": "default",
                "partial_rotary_factor": cfg.rotary_fraction,
            },
            "use_parallel_residual": cfg.parallel_block,
            "attention_bias": cfg.qkv_bias,
            "max_position_embeddings": cfg.max_length,
            "tie_word_embeddings": cfg.tie_embeddings,
        }

    def norm_names(self, cfg: DecoderConfig) -> dict[str, str]:
        return {"input_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm"}
