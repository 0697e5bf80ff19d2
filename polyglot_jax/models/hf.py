"""Hugging Face interop: ``config.json`` + safetensors ⇄ ``DecoderConfig`` + parameters.

Import reads one tensor at a time from the (sharded) safetensors files and places it with its
target sharding, so host memory never holds more than the largest tensor. Fields of
``config.json`` that this project cannot honour are an error, never silently ignored. Pickle
checkpoints (``*.bin``) are refused unless ``allow_pickle`` is set.

With ``DecoderConfig.scan_layers`` the per-layer tensors go into (and come out of) the stacked
``layers`` parameters [layers, *shape]: each layer's tensor is written into its slice on the
devices, so host memory still holds one tensor at a time.

Supported ``model_type``: llama, mistral, qwen2, falcon, bloom, gpt_neox.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy
from flax import traverse_util
from safetensors import SafetensorError, safe_open

from polyglot_jax import storage
from polyglot_jax.errors import CheckpointError, ConfigError, MissingFileError
from polyglot_jax.models import hf_layout
from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.decoder import LAYER_AXIS

# Keys of config.json that describe training, generation or bookkeeping, not the network.
IGNORED_KEYS = frozenset(
    {
        "_name_or_path",
        "transformers_version",
        "torch_dtype",
        "dtype",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "sep_token_id",
        "decoder_start_token_id",
        "use_cache",
        "initializer_range",
        "output_hidden_states",
        "output_attentions",
        "return_dict",
        "chunk_size_feed_forward",
        "is_encoder_decoder",
        "is_decoder",
        "problem_type",
        "id2label",
        "label2id",
        "attention_dropout",
        "hidden_dropout",
        "classifier_dropout",
        "max_position_embeddings",
        "max_sequence_length",  # early LLaMA conversions' name for it
        "seq_length",  # BLOOM's training length (ALiBi has no position table)
        "unk_token_id",
        "model_type",
        "pretraining_tp",
        "tokenizer_class",
        "prefix",
        "task_specific_params",
        "finetuning_task",
        "tie_encoder_decoder",
        "add_cross_attention",
        "torchscript",
        "use_bfloat16",
        "pruned_heads",
        "tf_legacy_loss",
        "attention_probs_dropout_prob",
        "hidden_dropout_prob",
        "embd_pdrop",
        "attn_pdrop",
        "resid_pdrop",
        "slow_but_exact",
        "quantization_config",
        "max_window_layers",
        "layer_types",
    }
)


UnsupportedConfigError = hf_layout.UnsupportedConfigError


def _rope(hf: dict) -> tuple[float, dict]:
    """``(theta, scaling)`` from a v4 (``rope_theta``/``rope_scaling``) or v5 config."""
    params = dict(hf.get("rope_parameters") or {})
    theta = params.pop("rope_theta", hf.get("rope_theta", hf.get("rotary_emb_base", 10000.0)))
    scaling = dict(hf.get("rope_scaling") or params)
    scaling.pop("partial_rotary_factor", None)
    kind = scaling.pop("rope_type", scaling.pop("type", "default"))
    return float(theta), {"type": kind, **scaling}


def _llama3_scaling(scaling: dict, where: str) -> dict:
    kind = scaling["type"]
    if kind == "default":
        return {}
    if kind != "llama3":
        raise UnsupportedConfigError(f"{where}: rope scaling type {kind!r} is not supported")
    return {
        "rope_scaling_factor": float(scaling["factor"]),
        "rope_low_freq_factor": float(scaling["low_freq_factor"]),
        "rope_high_freq_factor": float(scaling["high_freq_factor"]),
        "rope_original_max_length": int(scaling["original_max_position_embeddings"]),
    }


def read_config(path: str | os.PathLike) -> dict:
    """The ``config.json`` of a Hugging Face model directory, as a dict.

    Raises:
      MissingFileError: it does not exist.
      ConfigError: it is not a JSON object.
    """
    path = pathlib.Path(path) if isinstance(path, str) else path  # epath (gs://) kept as is
    if not path.exists():
        raise MissingFileError(f"{path} not found: not a Hugging Face model directory")
    return storage.read_json_object(path, ConfigError)


def config_from_hf(hf: dict, where: str = "config.json") -> DecoderConfig:
    """Translates a Hugging Face ``config.json`` dict to a :class:`DecoderConfig`.

    Raises:
      UnsupportedConfigError: unknown ``model_type``, an unknown field, or a field value that
        changes the computation in a way this decoder does not implement.
    """
    model_type = hf.get("model_type")
    if model_type not in hf_layout.LAYOUTS:
        raise UnsupportedConfigError(
            f"{where}: model_type {model_type!r} is not supported "
            f"(supported: {', '.join(sorted(hf_layout.LAYOUTS))})"
        )
    hf_layout.check_head(hf, where)
    theta, scaling = _rope(hf)
    fields, handled = hf_layout.LAYOUTS[model_type].config_fields(hf, where)
    if model_type in ("llama", "mistral", "qwen2"):
        fields.update(_llama3_scaling(scaling, where))
    elif scaling["type"] != "default":
        raise UnsupportedConfigError(f"{where}: rope scaling is not supported for {model_type}")
    if fields.get("position", "rope") == "rope":
        fields["rope_theta"] = theta
    unknown = sorted(
        set(hf)
        - handled
        - IGNORED_KEYS
        - {"rope_theta", "rope_scaling", "rope_parameters", "model_type", "architectures"}
        - {"auto_map"}  # check_head allows only the model type's own modules
    )
    if unknown:
        raise UnsupportedConfigError(f"{where}: unsupported field(s) {', '.join(unknown)}")
    return DecoderConfig(family=model_type, **fields)


def config_to_hf(cfg: DecoderConfig) -> dict:
    """A ``config.json`` dict that ``transformers.AutoConfig`` reads back to ``cfg``."""
    if cfg.family not in hf_layout.LAYOUTS:
        raise UnsupportedConfigError(f"family {cfg.family!r} has no Hugging Face layout")
    hf = hf_layout.LAYOUTS[cfg.family].config_dict(cfg)
    hf["model_type"] = cfg.family
    hf["dtype"] = str(np.dtype(cfg.param_dtype)) if cfg.param_dtype != "bfloat16" else "bfloat16"
    return hf


class SafetensorsReader:
    """Reads named tensors lazily from a model directory's safetensors shards.

    Args:
      model_dir: a directory with ``model.safetensors`` or an index and shards.
      allow_pickle: also accept ``pytorch_model*.bin`` (unsafe: pickle runs code).
    """

    def __init__(self, model_dir: str | pathlib.Path, allow_pickle: bool = False) -> None:
        self.model_dir = pathlib.Path(model_dir)
        index = self.model_dir / "model.safetensors.index.json"
        single = self.model_dir / "model.safetensors"
        if index.exists():
            self.files = self._read_index(index)
        elif single.exists():
            with _opened(single) as f:
                self.files = {name: single for name in f.keys()}  # noqa: SIM118
        elif list(self.model_dir.glob("pytorch_model*.bin")):
            if not allow_pickle:
                raise CheckpointError(
                    f"{self.model_dir} holds only pickle checkpoints (*.bin), which can run "
                    f"code when loaded; convert to safetensors or pass allow_pickle=True"
                )
            self.files = {}
            self._pickled = self._load_pickled()
        else:
            raise MissingFileError(f"no model.safetensors(.index.json) in {self.model_dir}")

    def _read_index(self, index: pathlib.Path) -> dict[str, pathlib.Path]:
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            return {name: self.model_dir / file for name, file in weight_map.items()}
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise CheckpointError(
                f"{index}: not a safetensors index (a JSON object with a 'weight_map' of "
                f"tensor name to file)"
            ) from None

    def _load_pickled(self) -> dict[str, np.ndarray]:  # pragma: no cover - needs torch
        import torch

        out = {}
        for path in sorted(self.model_dir.glob("pytorch_model*.bin")):
            for name, t in torch.load(path, map_location="cpu", weights_only=True).items():
                out[name] = t.float().numpy()
        return out

    def names(self) -> set[str]:
        return set(self.files) if self.files else set(self._pickled)

    def get(self, name: str) -> np.ndarray:
        """One tensor as a host array (bfloat16 kept as ``ml_dtypes.bfloat16``)."""
        if not self.files:
            return self._pickled[name]
        if name not in self.files:
            raise CheckpointError(f"{self.model_dir}: tensor {name!r} not found")
        with jax.default_device(jax.devices("cpu")[0]), _opened(self.files[name]) as f:
            try:
                return np.asarray(f.get_tensor(name))
            except SafetensorError as e:
                raise CheckpointError(
                    f"{self.files[name]}: tensor {name!r} cannot be read ({e}): the file is "
                    f"damaged or cut short; download it again"
                ) from None


@contextlib.contextmanager
def _opened(path: pathlib.Path) -> Iterator[Any]:
    """``safe_open(path)``; a missing, truncated or damaged file is named in a one-line error."""
    if not path.exists():
        raise MissingFileError(f"{path} does not exist (named by the safetensors index)")
    try:
        handle = safe_open(path, framework="flax")
    except SafetensorError as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({e}): the file is damaged or cut short; "
            f"download it again"
        ) from None
    with handle as f:
        yield f


def load_hf_params(
    model_dir: str | pathlib.Path,
    cfg: DecoderConfig,
    shardings: Any | None = None,
    allow_pickle: bool = False,
) -> dict:
    """Reads a Hugging Face checkpoint into this decoder's parameter tree.

    Args:
      model_dir: the model directory.
      cfg: the decoder config (from :func:`config_from_hf`).
      shardings: a tree of ``jax.sharding.Sharding`` matching the parameters, or None to keep
        them on the default device.
      allow_pickle: accept ``*.bin`` checkpoints.

    Raises:
      KeyError: a tensor the config needs is missing; ValueError: a tensor is left over.
    """
    reader = SafetensorsReader(model_dir, allow_pickle)
    layout = hf_layout.LAYOUTS[cfg.family]
    used: set[str] = set()
    prefix = layout.find_prefix(reader.names())

    def get(name: str) -> np.ndarray:
        full = prefix + name if not name.startswith(hf_layout.NO_PREFIX) else name[1:]
        used.add(full)
        return reader.get(full)

    target = traverse_util.flatten_dict(shardings) if shardings is not None else {}
    flat: dict[tuple[str, ...], jax.Array] = {}
    for path, array in layout.to_params(get, cfg):
        host = np.asarray(array, dtype=cfg.storage_dtype)
        layer, path = _scanned_path(path, cfg)
        # Placed one tensor at a time: host memory holds at most the largest tensor.
        if layer is None:
            flat[path] = jax.device_put(host, target[path]) if target else jnp.asarray(host)
        else:
            if path not in flat:
                flat[path] = _zeros((cfg.num_layers, *host.shape), host.dtype, target.get(path))
            flat[path] = _set_layer(flat[path], host, layer)
        del host
    tied_head = {layout.lm_head.lstrip(hf_layout.NO_PREFIX)} if cfg.tie_embeddings else set()
    leftover = sorted(n for n in reader.names() - used - tied_head if not layout.is_buffer(n))
    if leftover:
        raise CheckpointError(
            f"{model_dir}: tensors not used by the config: {', '.join(leftover[:5])}"
        )
    return traverse_util.unflatten_dict(flat)


def params_to_hf(params: dict, cfg: DecoderConfig) -> dict[str, np.ndarray]:
    """This decoder's parameters as a Hugging Face state dict (host arrays)."""
    layout = hf_layout.LAYOUTS[cfg.family]
    host = jax.tree.map(lambda x: np.asarray(jax.device_get(x)), params)

    def param(*path: str) -> np.ndarray:
        layer, path = _scanned_path(path, cfg)
        return _lookup(host, path) if layer is None else _lookup(host, path)[layer]

    return dict(layout.from_params(param, cfg))


def export(params: dict, cfg: DecoderConfig, out_dir: str | pathlib.Path) -> pathlib.Path:
    """Writes ``config.json`` and ``model.safetensors`` that ``from_pretrained`` loads."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: np.ascontiguousarray(v) for k, v in params_to_hf(params, cfg).items()}
    safetensors.numpy.save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config_to_hf(cfg), indent=2) + "\n")
    return out


def load_model_dir(
    model_dir: str | pathlib.Path,
    shardings_fn: Callable | None = None,
    allow_pickle: bool = False,
    scan_layers: bool = False,
) -> tuple[DecoderConfig, dict]:
    """Config and parameters of a Hugging Face model directory.

    Args:
      model_dir: directory with ``config.json`` and weights.
      shardings_fn: ``cfg -> shardings tree`` when parameters should be placed on a mesh.
      allow_pickle: accept ``*.bin`` checkpoints.
      scan_layers: load into the scanned layout (``DecoderConfig.scan_layers``).
    """
    path = pathlib.Path(model_dir) / "config.json"
    cfg = config_from_hf(read_config(path), str(path))
    cfg = cfg.replace(scan_layers=scan_layers)
    shardings = shardings_fn(cfg) if shardings_fn is not None else None
    return cfg, load_hf_params(model_dir, cfg, shardings, allow_pickle)


def is_hf_model_dir(path: str | pathlib.Path) -> bool:
    """A directory with a Hugging Face ``config.json`` naming a ``model_type``."""
    config = pathlib.Path(path) / "config.json"
    return config.exists() and "model_type" in read_config(config)


def _scanned_path(path: tuple[str, ...], cfg: DecoderConfig) -> tuple[int | None, tuple]:
    """``(layer, path)``: a ``layers_<i>`` path of a scanned config becomes ``(i, layers/...)``.

    Layouts name parameters in the unrolled layout; other paths pass through with layer None.
    """
    if not cfg.scan_layers or not path[0].startswith("layers_"):
        return None, tuple(path)
    return int(path[0].removeprefix("layers_")), (LAYER_AXIS, *path[1:])


def _zeros(shape: tuple[int, ...], dtype: Any, sharding: Any | None) -> jax.Array:
    """A zero array of ``shape`` created directly with ``sharding`` (or on the default device)."""
    make = functools.partial(jnp.zeros, shape, dtype)
    return jax.jit(make, out_shardings=sharding)() if sharding is not None else make()


@functools.partial(jax.jit, donate_argnums=0)
def _set_layer(stacked: jax.Array, layer: jax.Array, index: int) -> jax.Array:
    """``stacked`` [layers, *shape] with slice ``index`` set to ``layer`` [*shape], in place."""
    return jax.lax.dynamic_update_index_in_dim(stacked, layer.astype(stacked.dtype), index, 0)


def _lookup(tree: dict, path: tuple[str, ...]) -> np.ndarray:
    for key in path:
        tree = tree[key]
    return tree
