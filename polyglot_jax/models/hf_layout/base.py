"""The layout machinery: how one Hugging Face family names and shapes its tensors.

A :class:`Layout` maps ``config.json`` fields to :class:`DecoderConfig` fields and back, and
yields this decoder's parameters from Hugging Face tensors (and back), one tensor at a time.
Hugging Face linear weights are ``[out, in]``; ours are ``[in, *out]`` kernels, so every
projection is a transpose plus a reshape. Subclasses name the tensors of one family and say how
its query/key/value projections are stored.
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


# Class-name endings of ``architectures`` that are a causal language model (the weights this
# decoder loads and trains as one); a classification or base-model head is something else.
CAUSAL_LM_ENDINGS = ("ForCausalLM", "LMHeadModel")


def _custom_code(hf: dict) -> bool:
    """Whether ``auto_map`` points anywhere but the model type's own published modules.

    Falcon's checkpoints keep ``auto_map`` to ``configuration_falcon`` / ``modeling_falcon``, the
    code transformers ships natively: that is the model this decoder reproduces.
    """
    auto_map = hf.get("auto_map")
    if not auto_map:
        return False
    model_type = hf.get("model_type")
    native = {f"configuration_{model_type}", f"modeling_{model_type}"}
    targets = auto_map.values() if isinstance(auto_map, dict) else [auto_map]
    for target in targets:
        for name in target if isinstance(target, list) else [target]:
            module = str(name).rpartition("--")[2].rpartition(".")[0]
            if name is not None and module not in native:
                return True
    return False


def check_head(hf: dict, where: str) -> None:
    """Refuses a config whose ``architectures`` is not a causal LM or that maps custom code.

    Raises:
      UnsupportedConfigError: a classification or base-model head, or an ``auto_map``.
    """
    architectures = hf.get("architectures")
    if architectures is not None:
        names = architectures if isinstance(architectures, list) else [architectures]
        other = [n for n in names if not (isinstance(n, str) and n.endswith(CAUSAL_LM_ENDINGS))]
        if other:
            raise UnsupportedConfigError(
                f"{where}: architectures {other!r} is not a causal language model "
                f"(expected a ...ForCausalLM class); its weights would not train as one"
            )
    if _custom_code(hf):
        raise UnsupportedConfigError(
            f"{where}: auto_map points to custom modelling code "
            f"({', '.join(map(str, hf['auto_map']))}), which this decoder does not run; remove "
            f"auto_map only if the model is a plain {hf.get('model_type')!r} model"
        )


def check_allowed(hf: dict, key: str, allowed: tuple, where: str) -> None:
    """Refuses a config whose ``key`` is set to a value outside ``allowed``.

    Args:
      hf: the ``config.json`` dictionary.
      key: the field to check; an absent field passes.
      allowed: the values this decoder reproduces exactly.
      where: the file named in the error.

    Raises:
      UnsupportedConfigError: the field holds another value.
    """
    if key in hf and hf[key] not in allowed:
        raise UnsupportedConfigError(f"{where}: {key}={hf[key]!r} is not supported")


def first_set(hf: dict, *keys: str, default: object = None) -> object:
    """The value of the first of ``keys`` that is present and not ``None``, else ``default``.

    Families renamed config fields over time (``n_head`` and ``num_attention_heads``).
    """
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
        """``(DecoderConfig fields, config.json keys read)`` from a Hugging Face config.

        Args:
          hf: the ``config.json`` dictionary.
          where: the file named in errors.
        """
        raise NotImplementedError

    def config_dict(self, cfg: DecoderConfig) -> dict:
        """The ``config.json`` dictionary that ``transformers`` loads as ``cfg``."""
        raise NotImplementedError

    # tensors
    def norm_names(self, cfg: DecoderConfig) -> dict[str, str]:
        """Our norm module name → Hugging Face module name, within a layer."""
        raise NotImplementedError

    def split_qkv(
        self, get: Getter, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[Path, np.ndarray]]:
        """Yields ``((proj, "kernel"|"bias"), array)`` of layer ``i``'s q/k/v projections.

        Kernels are ``[embed, heads, head_dim]``, biases ``[heads, head_dim]``.
        """
        raise NotImplementedError

    def fuse_qkv(
        self, param: Callable, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yields ``(name within the layer, array)`` of layer ``i``'s Hugging Face q/k/v tensors."""
        raise NotImplementedError

    def find_prefix(self, names: set[str]) -> str:
        """The model prefix as used in this checkpoint (some checkpoints omit it)."""
        return self.prefix if any(n.startswith(self.prefix) for n in names) else ""

    def is_buffer(self, name: str) -> bool:
        """Whether ``name`` is a stored buffer (e.g. rotary frequencies), not a parameter."""
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
