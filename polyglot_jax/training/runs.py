"""The run directory: the one owner of what a training run writes and later stages read.

A run directory (``MODEL_DIR``, local or ``gs://``) holds::

  model_config.json   the DecoderConfig (written once; a resumed run must match it)
  chat_format.json    chat template, loss mask and the mixture that gives the vocabulary
  config.gin          the operative gin config
  data_summary.json   per-language counts of the training mixture
  checkpoint_<step>/  orbax checkpoints (training.checkpoints)
  train/              TensorBoard scalars
  infer/ judge/ structured/   outputs of the later stages

:func:`resolve` accepts a run directory, one of its ``checkpoint_<step>`` folders or a Hugging
Face model directory; :func:`load_model` (on one device or placed on a mesh) loads any of them
(``ChatModel`` adds the vocabulary and template), and :meth:`Source.output_dir` puts a later
stage's output in the run directory, never inside a checkpoint. Every path is an
``etils.epath.Path``, so ``gs://`` works like a local folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from etils import epath
from jax.sharding import Mesh

from polyglot_jax import storage
from polyglot_jax.errors import CheckpointError, RunDirError
from polyglot_jax.models import Decoder, DecoderConfig, hf
from polyglot_jax.training import partitioning

MODEL_CONFIG = "model_config.json"
CHAT_FORMAT = "chat_format.json"
TOKENIZER = "tokenizer"  # the Hugging Face tokenizer files the run was trained with
_CHECKPOINT = re.compile(r"checkpoint_(\d+)")

# DecoderConfig fields that a run may change when it starts from another checkpoint.
RUN_ONLY_FIELDS = ("lora", "dtype", "param_dtype", "max_length", "family")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a model comes from.

    Attributes:
      path: what the user named.
      run_dir: the run directory (None for a Hugging Face directory).
      step: the checkpoint step the user named (None: the latest).
      hf_dir: the Hugging Face model directory (None for a run).
    """

    path: epath.Path
    run_dir: epath.Path | None = None
    step: int | None = None
    hf_dir: epath.Path | None = None

    @property
    def name(self) -> str:
        """The run's name in reports: the run folder (or Hugging Face folder) name."""
        return (self.run_dir or self.hf_dir or self.path).name

    def output_dir(self, stage: str) -> epath.Path:
        """``<run dir>/<stage>`` (``infer``, ``judge``, ``structured``), beside the checkpoints."""
        return (self.run_dir or self.hf_dir or self.path) / stage

    def model_config(self) -> DecoderConfig:
        """The decoder configuration recorded by the run or the Hugging Face ``config.json``."""
        if self.hf_dir is not None:
            config = self.hf_dir / "config.json"
            return hf.config_from_hf(hf.read_config(config), str(config))
        return read_model_config(self.run_dir)

    def chat_format(self) -> dict[str, Any]:
        """``{"template", "loss_on", "mixture_or_task_name"}`` of a run (empty if unrecorded)."""
        if self.run_dir is None:
            return {}
        path = self.run_dir / CHAT_FORMAT
        return storage.read_json_object(path, RunDirError) if path.exists() else {}


def resolve(path: str | os.PathLike) -> Source:
    """Classifies ``path`` as a run directory, a ``checkpoint_<step>`` or a Hugging Face folder.

    Raises:
      RunDirError: ``path`` is none of them (the message says what is missing).
    """
    path = storage.as_path(path)
    match = _CHECKPOINT.fullmatch(path.name)
    if match:
        run_dir = path.parent
        if not (run_dir / MODEL_CONFIG).exists():
            raise RunDirError(f"{path}: its folder {run_dir} has no {MODEL_CONFIG}")
        if not path.exists():
            raise CheckpointError(f"{path} does not exist (have: {checkpoint_names(run_dir)})")
        return Source(path, run_dir=run_dir, step=int(match.group(1)))
    if (path / MODEL_CONFIG).exists():
        return Source(path, run_dir=path)
    if hf.is_hf_model_dir(path):
        return Source(path, hf_dir=path)
    if not path.exists():
        raise RunDirError(f"{path} does not exist")
    raise RunDirError(
        f"{path} is neither a run directory ({MODEL_CONFIG}), a checkpoint_<step> folder nor "
        f"a Hugging Face model directory (config.json with model_type)"
    )


def checkpoint_names(run_dir: epath.Path) -> list[str]:
    """Names of the ``checkpoint_<step>`` folders of a run, oldest first."""
    found = [p.name for p in run_dir.glob("checkpoint_*") if _CHECKPOINT.fullmatch(p.name)]
    return sorted(found, key=lambda n: int(n.split("_")[1]))


def read_model_config(run_dir: str | os.PathLike) -> DecoderConfig:
    """The ``model_config.json`` of a run.

    Raises:
      RunDirError: it is missing or does not parse as a DecoderConfig.
    """
    path = storage.as_path(run_dir) / MODEL_CONFIG
    if not path.exists():
        raise RunDirError(f"{path} not found: is {path.parent} a training run directory?")
    try:
        return DecoderConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
        raise RunDirError(f"{path}: not a model configuration ({e})") from None


def config_differences(
    old: DecoderConfig, new: DecoderConfig, ignore: tuple[str, ...] = ()
) -> list[str]:
    """``field (old → new)`` for every DecoderConfig field that differs, except ``ignore``."""
    return [
        f"{f.name} ({getattr(old, f.name)!r} -> {getattr(new, f.name)!r})"
        for f in dataclasses.fields(DecoderConfig)
        if f.name not in ignore and getattr(old, f.name) != getattr(new, f.name)
    ]


def prepare(
    run_dir: str | os.PathLike, model_config: DecoderConfig, chat_format: dict[str, Any]
) -> bool:
    """Checks that ``run_dir`` can hold this run, then records its model and chat format.

    A new run writes ``model_config.json`` and ``chat_format.json``. An existing run (resumed)
    must have the same model configuration and chat format: nothing is written before that is
    checked, so a mismatched command leaves the original run usable.

    Returns:
      True if the run directory already held a run (the run resumes).

    Raises:
      RunDirError: the existing run differs (the message names each differing field).
    """
    run_dir = storage.as_path(run_dir)
    existing = (run_dir / MODEL_CONFIG).exists()
    if existing:
        differ = config_differences(read_model_config(run_dir), model_config)
        old_format = Source(run_dir, run_dir=run_dir).chat_format()
        differ += [
            f"{k} ({old_format[k]!r} -> {v!r})"
            for k, v in chat_format.items()
            if k in old_format and old_format[k] != v
        ]
        if differ:
            raise RunDirError(
                f"{run_dir} holds a run with a different configuration: {'; '.join(differ)}; "
                f"use another MODEL_DIR or the original settings"
            )
    if jax.process_index() == 0:
        storage.write_json(run_dir / MODEL_CONFIG, model_config.to_dict())
        storage.write_json(run_dir / CHAT_FORMAT, chat_format)
    return existing


def abstract_params(
    model: Decoder, mesh: Mesh | None = None, rules: partitioning.AxisRules | None = None
) -> Any:
    """``jax.ShapeDtypeStruct`` per parameter, with its sharding on ``mesh`` when given.

    The shardings come from the parameters' logical axes through ``rules`` (default: the
    standard rules), as training places them.
    """

    def init() -> Any:
        return model.init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))["params"]

    if mesh is None:
        return nn.unbox(jax.eval_shape(init))
    rules = rules or partitioning.standard_logical_axis_rules()
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        boxed = jax.eval_shape(init)
    shardings = partitioning.logical_to_sharding(boxed, mesh, rules)
    boxes = lambda x: isinstance(x, nn.meta.AxisMetadata)  # noqa: E731
    plain = jax.tree.map(
        lambda x: x.value if boxes(x) else x, boxed, is_leaf=boxes
    )  # no constraint
    return jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), plain, shardings
    )


def load_params(source: Source, model: Decoder, abstract: Any | None = None) -> Any:
    """Parameters of ``source`` (the named or latest checkpoint, or the HF weights).

    Args:
      source: from :func:`resolve`.
      model: the decoder the parameters belong to.
      abstract: target ``jax.ShapeDtypeStruct`` tree with shardings (default: unsharded); each
        array is read straight into its sharding.
    """
    if source.hf_dir is not None:
        shardings = None if abstract is None else jax.tree.map(lambda a: a.sharding, abstract)
        return hf.load_hf_params(source.hf_dir, model.config, shardings)
    from polyglot_jax.training import checkpoints  # orbax, only when a run is restored

    if abstract is None:
        abstract = abstract_params(model)
    ckpt = checkpoints.Checkpointer(source.run_dir, async_save=False)
    try:
        step = ckpt.latest_step() if source.step is None else source.step
        if step is None:
            raise CheckpointError(f"no checkpoint_<step> in {source.run_dir}")
        return ckpt.restore_params(step, abstract)
    finally:
        ckpt.close()


def load_model(
    path: str | os.PathLike,
    mesh: Mesh | None = None,
    rules: partitioning.AxisRules | None = None,
    dtype: str | None = None,
) -> tuple[Decoder, Any]:
    """The decoder and its parameters from a run, a ``checkpoint_<step>`` or an HF folder.

    Args:
      path: what :func:`resolve` accepts.
      dtype: store the parameters and compute in this dtype (``bfloat16``) instead of the
        recorded ones; each array is cast as it is read.
      mesh: restore each parameter directly into its sharding on this mesh (default: the mesh
        of an enclosing ``jax.set_mesh``; with none, unsharded on the default device).
      rules: logical axis rules for ``mesh`` (default: those of an enclosing
        ``nn.logical_axis_rules``, else the standard rules).
    """
    source = resolve(path)
    config = source.model_config()
    model = Decoder(config if dtype is None else config.replace(dtype=dtype, param_dtype=dtype))
    active = jax.sharding.get_mesh()
    mesh = mesh if mesh is not None else (None if active.empty else active)
    if mesh is None:
        return model, load_params(source, model)
    rules = rules or tuple(nn.get_logical_axis_rules()) or None
    return model, load_params(source, model, abstract_params(model, mesh, rules))


def record_tokenizer(run_dir: str | os.PathLike, vocabulary: Any) -> None:
    """Copies the Hugging Face tokenizer files of ``vocabulary`` into ``<run>/tokenizer``.

    A run trained on a recipe mixture (registered by its gin files only while it trains) can
    then be served, evaluated or judged by a later process without the mixture. Vocabularies
    that are not read from a tokenizer folder (the demo's) are not copied: their tasks are
    registered by ``import tasks``.
    """
    from polyglot_jax.data import vocab

    vocabulary = getattr(vocabulary, "resolved", vocabulary)  # a study task's lazy vocabulary
    folder = vocab.source_folder(vocabulary)
    if folder is None or jax.process_index() != 0:
        return
    target = storage.as_path(run_dir) / TOKENIZER
    for name in vocab.TOKENIZER_FILES:
        if (folder / name).exists() and not (target / name).exists():
            storage.write_atomic(target / name, (folder / name).read_bytes())


def recorded_tokenizer(run_dir: epath.Path) -> Any | None:
    """The vocabulary of the tokenizer files a run recorded (:func:`record_tokenizer`), if any."""
    from polyglot_jax.data import vocab

    folder = run_dir / TOKENIZER
    if not folder.exists():
        return None
    if storage.is_local(folder):
        return vocab.load_vocabulary(folder)
    local = storage.local_file_for(run_dir, TOKENIZER, "tokenizers")
    local.mkdir(exist_ok=True)
    for file in folder.iterdir():
        (local / file.name).write_bytes(file.read_bytes())
    return vocab.load_vocabulary(local)
