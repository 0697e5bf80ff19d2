"""Falcon: fused multi-query or grouped qkv, parallel attention and MLP, both decoder layouts."""

from __future__ import annotations

from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.hf_layout.base import UnsupportedConfigError, check_allowed, first_set
from polyglot_jax.models.hf_layout.fused import FusedLayout


class FalconLayout(FusedLayout):
    """Falcon: the original decoder layout (7B, multi-query) and the new one (40B, grouped kv)."""

    prefix = "transformer."
    embed = "word_embeddings.weight"
    final_norm = "ln_f"
    layer = "h.{i}"
    qkv = "self_attention.query_key_value"
    attn_out = "self_attention.dense"
    mlp = {"up_proj": "mlp.dense_h_to_4h", "down_proj": "mlp.dense_4h_to_h"}  # noqa: RUF012

    def config_fields(self, hf: dict, where: str) -> tuple[dict, set[str]]:
        check_allowed(hf, "alibi", (False,), where)
        check_allowed(hf, "activation", ("gelu",), where)
        check_allowed(hf, "apply_residual_connection_post_layernorm", (False,), where)
        heads = first_set(hf, "num_attention_heads", "n_head")
        new_arch = hf.get("new_decoder_architecture", False)
        if new_arch:
            kv = first_set(hf, "num_kv_heads", "n_head_kv", default=heads)
        else:
            kv = 1 if hf.get("multi_query", True) else heads
        # transformers 5 also writes the number of key/value heads it derives from the above
        stated = hf.get("num_key_value_heads")
        if stated is not None and stated != kv:
            raise UnsupportedConfigError(
                f"{where}: num_key_value_heads {stated} disagrees with the {kv} key/value heads "
                f"of new_decoder_architecture / multi_query / num_kv_heads"
            )
        parallel = hf.get("parallel_attn", True) or new_arch
        num_ln = first_set(hf, "num_ln_in_parallel_attn", default=2 if new_arch else 1)
        hidden = hf["hidden_size"]
        bias = hf.get("bias", False)
        fields = {
            "vocab_size": hf["vocab_size"],
            "embed_dim": hidden,
            "num_layers": first_set(hf, "num_hidden_layers", "n_layer"),
            "num_heads": heads,
            "num_kv_heads": kv,
            "head_dim": hidden // heads,
            "mlp_dim": first_set(hf, "ffn_hidden_size", default=4 * hidden),
            "norm": "layernorm",
            "norm_eps": hf.get("layer_norm_epsilon", 1e-5),
            "activation": "gelu",
            "qkv_bias": bias,
            "out_bias": bias,
            "mlp_bias": bias,
            "parallel_block": parallel,
            "shared_block_norm": parallel and not (new_arch and num_ln == 2),
            "tie_embeddings": hf.get("tie_word_embeddings", True),
        }
        handled = {
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "n_layer",
            "num_attention_heads",
            "n_head",
            "num_kv_heads",
            "n_head_kv",
            "num_key_value_heads",
            "multi_query",
            "new_decoder_architecture",
            "num_ln_in_parallel_attn",
            "parallel_attn",
            "bias",
            "layer_norm_epsilon",
            "alibi",
            "ffn_hidden_size",
            "activation",
            "tie_word_embeddings",
            "apply_residual_connection_post_layernorm",
        }
        return fields, handled

    def new_arch(self, cfg: DecoderConfig) -> bool:
        """Whether ``cfg`` needs the new decoder architecture (grouped kv or two block norms)."""
        return 1 < cfg.num_kv_heads < cfg.num_heads or (
            cfg.parallel_block and not cfg.shared_block_norm
        )

    def config_dict(self, cfg: DecoderConfig) -> dict:
        new_arch = self.new_arch(cfg)
        return {
            "architectures": ["FalconForCausalLM"],
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.embed_dim,
            "num_hidden_layers": cfg.num_layers,
            "num_attention_heads": cfg.num_heads,
            "num_kv_heads": cfg.num_kv_heads,
            "new_decoder_architecture": new_arch,
            "num_ln_in_parallel_attn": (1 if cfg.shared_block_norm else 2) if new_arch else None,
            "multi_query": cfg.num_kv_heads == 1,
            "parallel_attn": cfg.parallel_block,
            "bias": cfg.qkv_bias,
            "layer_norm_epsilon": cfg.norm_eps,
            "ffn_hidden_size": cfg.mlp_dim,
            "activation": "gelu",
            "alibi": False,
            "rope_theta": cfg.rope_theta,
            "max_position_embeddings": cfg.max_length,
            "tie_word_embeddings": cfg.tie_embeddings,
        }

    def group_shape(self, cfg: DecoderConfig) -> tuple[int, int]:
        if self.new_arch(cfg):
            return cfg.num_kv_heads, cfg.num_heads // cfg.num_kv_heads + 2
        if cfg.num_kv_heads == 1:
            return 1, cfg.num_heads + 2
        return cfg.num_heads, 3

    def norm_names(self, cfg: DecoderConfig) -> dict[str, str]:
        if not cfg.parallel_block:
            return {
                "input_norm": "input_layernorm",
                "post_attention_norm": "post_attention_layernorm",
            }
        if cfg.shared_block_norm:
            return {"input_norm": "input_layernorm"}
        return {"input_norm": "ln_attn", "post_attention_norm": "ln_mlp"}
