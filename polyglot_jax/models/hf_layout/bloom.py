"""BLOOM: fused qkv, ALiBi positions, LayerNorm after the embedding."""

from __future__ import annotations

from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.hf_layout.base import check_allowed, first_set
from polyglot_jax.models.hf_layout.fused import FusedLayout

# Megatron-DeepSpeed training switches kept in the released BLOOM configs; transformers does not
# read them, so neither does this decoder.
MEGATRON_FLAGS = frozenset(
    {
        "attention_softmax_in_fp32",
        "bias_dropout_fusion",
        "masked_softmax_fusion",
        "offset_alibi",
        "skip_bias_add",
        "skip_bias_add_qkv",
    }
)


class BloomLayout(FusedLayout):
    """BLOOM and BLOOMZ: per-head interleaved fused qkv."""

    prefix = "transformer."
    embed = "word_embeddings.weight"
    embed_norm = "word_embeddings_layernorm"
    final_norm = "ln_f"
    layer = "h.{i}"
    qkv = "self_attention.query_key_value"
    attn_out = "self_attention.dense"
    mlp = {"up_proj": "mlp.dense_h_to_4h", "down_proj": "mlp.dense_4h_to_h"}  # noqa: RUF012

    def config_fields(self, hf: dict, where: str) -> tuple[dict, set[str]]:
        check_allowed(hf, "apply_residual_connection_post_layernorm", (False,), where)
        hidden = first_set(hf, "hidden_size", "n_embed")
        check_allowed(hf, "n_inner", (None, 4 * hidden), where)
        heads = first_set(hf, "n_head", "num_attention_heads")
        fields = {
            "vocab_size": hf["vocab_size"],
            "embed_dim": hidden,
            "num_layers": first_set(hf, "n_layer", "num_hidden_layers"),
            "num_heads": heads,
            "num_kv_heads": heads,
            "head_dim": hidden // heads,
            "mlp_dim": 4 * hidden,
            "norm": "layernorm",
            "norm_eps": hf.get("layer_norm_epsilon", 1e-5),
            "activation": "gelu_tanh",
            "position": "alibi",
            "qkv_bias": True,
            "out_bias": True,
            "mlp_bias": True,
            "embedding_norm": True,
            "tie_embeddings": hf.get("tie_word_embeddings", True),
        }
        handled = {
            *MEGATRON_FLAGS,
            "n_inner",
            "vocab_size",
            "hidden_size",
            "n_embed",
            "n_layer",
            "num_hidden_layers",
            "n_head",
            "num_attention_heads",
            "layer_norm_epsilon",
            "tie_word_embeddings",
            "apply_residual_connection_post_layernorm",
        }
        return fields, handled

    def config_dict(self, cfg: DecoderConfig) -> dict:
        return {
            "architectures": ["BloomForCausalLM"],
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.embed_dim,
            "n_layer": cfg.num_layers,
            "n_head": cfg.num_heads,
            "layer_norm_epsilon": cfg.norm_eps,
            "tie_word_embeddings": cfg.tie_embeddings,
        }

    def norm_names(self, cfg: DecoderConfig) -> dict[str, str]:
        return {"input_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm"}
