"""Per-family tensor layouts of Hugging Face checkpoints and their config fields.

Each layout maps ``config.json`` fields to :class:`DecoderConfig` fields and back, and yields
this decoder's parameters from Hugging Face tensors (and back), one tensor at a time.
Hugging Face linear weights are ``[out, in]``; ours are ``[in, *out]`` kernels, so every
projection is a transpose plus a reshape, and fused query/key/value matrices are split by the
family's own head layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from polyglot_jax.errors import ConfigError
from polyglot_jax.models.config import DecoderConfig

NO_PREFIX = "!"  # a tensor name that is not under the model prefix (e.g. lm_head)
Getter = Callable[[str], np.ndarray]
Path = tuple[str, ...]


class UnsupportedConfigError(ConfigError):
    """A Hugging Face config that this decoder cannot reproduce exactly."""


def _check(hf: dict, key: str, allowed: tuple, where: str) -> None:
    if key in hf and hf[key] not in allowed:
        raise UnsupportedConfigError(f"{where}: {key}={hf[key]!r} is not supported")


def _first(hf: dict, *keys: str, default: object = None) -> object:
    for key in keys:
        if key in hf and hf[key] is not None:
            return hf[key]
    return default


def dense_in(w: np.ndarray, *out: int) -> np.ndarray:
    """``[out, in]`` → ``[in, *out]``."""
    return np.ascontiguousarray(w.T.reshape(w.shape[1], *out))


def dense_out(kernel: np.ndarray, num_in: int = 1) -> np.ndarray:
    """``[*in, *out]`` → ``[out, in]`` where the first ``num_in`` axes are inputs."""
    size_in = int(np.prod(kernel.shape[:num_in]))
    return np.ascontiguousarray(kernel.reshape(size_in, -1).T)


class Layout:
    """Base: names for one family. Subclasses fill the table and the qkv split."""

    prefix = ""
    embed = ""
    final_norm = ""
    lm_head = NO_PREFIX + "lm_head.weight"
    layer = ""
    attn_out = ""
    mlp = {}  # noqa: RUF012  our name -> hf name
    buffers: tuple[str, ...] = ()

    # config
    def config_fields(self, hf: dict, where: str) -> tuple[dict, set[str]]:
        raise NotImplementedError

    def config_dict(self, cfg: DecoderConfig) -> dict:
        raise NotImplementedError

    # tensors
    def norm_names(self, cfg: DecoderConfig) -> dict[str, str]:
        """Our norm module name → Hugging Face module name, within a layer."""
        raise NotImplementedError

    def split_qkv(
        self, get: Getter, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[Path, np.ndarray]]:
        raise NotImplementedError

    def fuse_qkv(
        self, param: Callable, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[str, np.ndarray]]:
        raise NotImplementedError

    def find_prefix(self, names: set[str]) -> str:
        """The model prefix as used in this checkpoint (some checkpoints omit it)."""
        return self.prefix if any(n.startswith(self.prefix) for n in names) else ""

    def is_buffer(self, name: str) -> bool:
        return any(name.endswith(b) for b in self.buffers)

    def _norm(self, get: Getter, hf_name: str, cfg: DecoderConfig) -> dict[str, np.ndarray]:
        out = {"scale": get(f"{hf_name}.weight")}
        if cfg.norm == "layernorm":
            out["bias"] = get(f"{hf_name}.bias")
        return out

    def to_params(self, get: Getter, cfg: DecoderConfig) -> Iterator[tuple[Path, np.ndarray]]:
        """Yields ``(our path, array)`` for every parameter of ``cfg``."""
        yield ("embed", "embedding"), get(self.embed)
        if cfg.embedding_norm:
            for k, v in self._norm(get, self.embed_norm, cfg).items():
                yield ("embed_norm", k), v
        h, d, e = cfg.num_heads, cfg.head_dim, cfg.embed_dim
        for i in range(cfg.num_layers):
            layer = f"layers_{i}"
            base = self.layer.format(i=i)
            for ours, theirs in self.norm_names(cfg).items():
                for k, v in self._norm(get, f"{base}.{theirs}", cfg).items():
                    yield (layer, ours, k), v
            for path, v in self.split_qkv(get, i, cfg):
                yield (layer, "attention", *path), v
            yield (
                (layer, "attention", "o_proj", "kernel"),
                dense_in(get(f"{base}.{self.attn_out}.weight"), e).reshape(h, d, e),
            )
            if cfg.out_bias:
                yield (layer, "attention", "o_proj", "bias"), get(f"{base}.{self.attn_out}.bias")
            for ours, theirs in self.mlp.items():
                if ours == "gate_proj" and cfg.activation != "swiglu":
                    continue
                yield (layer, "mlp", ours, "kernel"), get(f"{base}.{theirs}.weight").T
                if cfg.mlp_bias:
                    yield (layer, "mlp", ours, "bias"), get(f"{base}.{theirs}.bias")
        for k, v in self._norm(get, self.final_norm, cfg).items():
            yield ("final_norm", k), v
        if not cfg.tie_embeddings:
            yield ("lm_head", "kernel"), get(self.lm_head).T

    def from_params(self, param: Callable, cfg: DecoderConfig) -> Iterator[tuple[str, np.ndarray]]:
        """Yields ``(Hugging Face name, array)`` for every tensor of the checkpoint."""
        p = self.prefix

        def name(n: str) -> str:
            return n[1:] if n.startswith(NO_PREFIX) else p + n

        def norm(ours: Path, theirs: str) -> Iterator[tuple[str, np.ndarray]]:
            yield name(f"{theirs}.weight"), param(*ours, "scale")
            if cfg.norm == "layernorm":
                yield name(f"{theirs}.bias"), param(*ours, "bias")

        yield name(self.embed), param("embed", "embedding")
        if cfg.embedding_norm:
            yield from norm(("embed_norm",), self.embed_norm)
        for i in range(cfg.num_layers):
            layer, base = f"layers_{i}", self.layer.format(i=i)
            for ours, theirs in self.norm_names(cfg).items():
                yield from norm((layer, ours), f"{base}.{theirs}")
            for n, v in self.fuse_qkv(param, i, cfg):
                yield name(f"{base}.{n}"), v
            yield (
                name(f"{base}.{self.attn_out}.weight"),
                dense_out(param(layer, "attention", "o_proj", "kernel"), 2),
            )
            if cfg.out_bias:
                yield (
                    name(f"{base}.{self.attn_out}.bias"),
                    param(layer, "attention", "o_proj", "bias"),
                )
            for ours, theirs in self.mlp.items():
                if ours == "gate_proj" and cfg.activation != "swiglu":
                    continue
                yield (
                    name(f"{base}.{theirs}.weight"),
                    dense_out(param(layer, "mlp", ours, "kernel")),
                )
                if cfg.mlp_bias:
                    yield name(f"{base}.{theirs}.bias"), param(layer, "mlp", ours, "bias")
        yield from norm(("final_norm",), self.final_norm)
        if not cfg.tie_embeddings:
            yield name(self.lm_head), dense_out(param("lm_head", "kernel"))


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
        _check(hf, "hidden_act", ("silu",), where)
        heads = hf["num_attention_heads"]
        fields = {
            "vocab_size": hf["vocab_size"],
            "embed_dim": hf["hidden_size"],
            "num_layers": hf["num_hidden_layers"],
            "num_heads": heads,
            "num_kv_heads": _first(hf, "num_key_value_heads", default=heads),
            "head_dim": _first(hf, "head_dim", default=hf["hidden_size"] // heads),
            "mlp_dim": hf["intermediate_size"],
            "norm_eps": hf.get("rms_norm_eps", 1e-6),
            "tie_embeddings": hf.get("tie_word_embeddings", False),
            "mlp_bias": hf.get("mlp_bias", False),
        }
        if self.model_type == "qwen2":
            _check(hf, "use_sliding_window", (False,), where)
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


class FusedLayout(Layout):
    """Falcon, BLOOM and GPT-NeoX: one fused query_key_value matrix per layer."""

    qkv = ""

    def group_shape(self, cfg: DecoderConfig) -> tuple[int, int]:
        """``(groups, slots)``: the fused rows are ``[groups, slots, head_dim]``."""
        return cfg.num_heads, 3

    def _slots(self, cfg: DecoderConfig) -> tuple[slice, slice, slice]:
        _, slots = self.group_shape(cfg)
        if slots == 3:
            return slice(0, 1), slice(1, 2), slice(2, 3)
        return slice(0, slots - 2), slice(slots - 2, slots - 1), slice(slots - 1, slots)

    def split_qkv(
        self, get: Getter, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[Path, np.ndarray]]:
        base = self.layer.format(i=i)
        groups, slots = self.group_shape(cfg)
        d, e = cfg.head_dim, cfg.embed_dim
        w = get(f"{base}.{self.qkv}.weight").reshape(groups, slots, d, e)
        b = get(f"{base}.{self.qkv}.bias").reshape(groups, slots, d) if cfg.qkv_bias else None
        for proj, sl in zip(("q_proj", "k_proj", "v_proj"), self._slots(cfg), strict=True):
            part = w[:, sl].reshape(-1, d, e)  # [heads, head_dim, embed]
            yield (proj, "kernel"), np.ascontiguousarray(part.transpose(2, 0, 1))
            if b is not None:
                yield (proj, "bias"), b[:, sl].reshape(-1, d)

    def fuse_qkv(
        self, param: Callable, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[str, np.ndarray]]:
        layer = f"layers_{i}"
        groups, _ = self.group_shape(cfg)
        parts = []
        biases = []
        for proj in ("q_proj", "k_proj", "v_proj"):
            kernel = param(layer, "attention", proj, "kernel")  # [embed, heads, head_dim]
            parts.append(kernel.transpose(1, 2, 0).reshape(groups, -1, cfg.head_dim, cfg.embed_dim))
            if cfg.qkv_bias:
                biases.append(
                    param(layer, "attention", proj, "bias").reshape(groups, -1, cfg.head_dim)
                )
        yield f"{self.qkv}.weight", np.concatenate(parts, axis=1).reshape(-1, cfg.embed_dim)
        if cfg.qkv_bias:
            yield f"{self.qkv}.bias", np.concatenate(biases, axis=1).reshape(-1)


class FalconLayout(FusedLayout):
    prefix = "transformer."
    embed = "word_embeddings.weight"
    final_norm = "ln_f"
    layer = "h.{i}"
    qkv = "self_attention.query_key_value"
    attn_out = "self_attention.dense"
    mlp = {"up_proj": "mlp.dense_h_to_4h", "down_proj": "mlp.dense_4h_to_h"}  # noqa: RUF012

    def config_fields(self, hf: dict, where: str) -> tuple[dict, set[str]]:
        _check(hf, "alibi", (False,), where)
        _check(hf, "activation", ("gelu",), where)
        _check(hf, "apply_residual_connection_post_layernorm", (False,), where)
        heads = _first(hf, "num_attention_heads", "n_head")
        new_arch = hf.get("new_decoder_architecture", False)
        if new_arch:
            kv = _first(hf, "num_kv_heads", "n_head_kv", default=heads)
        else:
            kv = 1 if hf.get("multi_query", True) else heads
        parallel = hf.get("parallel_attn", True) or new_arch
        num_ln = _first(hf, "num_ln_in_parallel_attn", default=2 if new_arch else 1)
        hidden = hf["hidden_size"]
        bias = hf.get("bias", False)
        fields = {
            "vocab_size": hf["vocab_size"],
            "embed_dim": hidden,
            "num_layers": _first(hf, "num_hidden_layers", "n_layer"),
            "num_heads": heads,
            "num_kv_heads": kv,
            "head_dim": hidden // heads,
            "mlp_dim": _first(hf, "ffn_hidden_size", default=4 * hidden),
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


class BloomLayout(FusedLayout):
    prefix = "transformer."
    embed = "word_embeddings.weight"
    embed_norm = "word_embeddings_layernorm"
    final_norm = "ln_f"
    layer = "h.{i}"
    qkv = "self_attention.query_key_value"
    attn_out = "self_attention.dense"
    mlp = {"up_proj": "mlp.dense_h_to_4h", "down_proj": "mlp.dense_4h_to_h"}  # noqa: RUF012

    def config_fields(self, hf: dict, where: str) -> tuple[dict, set[str]]:
        _check(hf, "apply_residual_connection_post_layernorm", (False,), where)
        hidden = _first(hf, "hidden_size", "n_embed")
        heads = _first(hf, "n_head", "num_attention_heads")
        fields = {
            "vocab_size": hf["vocab_size"],
            "embed_dim": hidden,
            "num_layers": _first(hf, "n_layer", "num_hidden_layers"),
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


class GPTNeoXLayout(FusedLayout):
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
        _check(hf, "hidden_act", ("gelu", "gelu_new"), where)
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


LAYOUTS: dict[str, Layout] = {
    "llama": LlamaLayout("llama"),
    "mistral": LlamaLayout("mistral"),
    "qwen2": LlamaLayout("qwen2"),
    "falcon": FalconLayout(),
    "bloom": BloomLayout(),
    "gpt_neox": GPTNeoXLayout(),
}
