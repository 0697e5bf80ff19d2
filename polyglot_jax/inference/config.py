"""The settings of one ``infer`` job: :class:`InferConfig`.

A frozen dataclass that gin binds (``gin_configs/runs/infer.gin``: ``InferConfig.batch_size =
%BATCH_SIZE``) and :func:`~polyglot_jax.inference.infer.infer` takes as its argument. Each
value is checked when the config is made: gin passes whatever a binding says
(``BATCH_SIZE="8"``, ``SEED="x"``), and a bad value is a one-line
:class:`~polyglot_jax.errors.ConfigError` naming the macro a user would change.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import gin

from polyglot_jax.errors import ConfigError
from polyglot_jax.models.config import INFERENCE_DTYPES
from polyglot_jax.models.config import WEIGHT_QUANTIZATIONS as QUANTIZATIONS
from polyglot_jax.runtime import decoding
from polyglot_jax.training.partitioning import AxisRules


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike) and bool(os.fspath(value))


def _is_names(value: Any) -> bool:
    return not isinstance(value, str | bytes) and all(isinstance(v, str) for v in value)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class InferConfig:
    """What an ``infer`` job answers, with which model and decoding, and where it writes.

    Attributes:
      checkpoint_path: run directory (latest checkpoint), ``.../checkpoint_<step>`` or a
        Hugging Face folder (``CHECKPOINT_PATH``).
      mixture_or_task_name: registered task or mixture whose prompts are answered
        (``MIXTURE_OR_TASK_NAME``).
      output_dir: where ``<task>.jsonl`` files go (``INFER_OUTPUT_DIR``; None: ``<run>/infer``).
      split: the split to read prompts from (``SPLIT``).
      batch_size: prompts per generation batch (``BATCH_SIZE``).
      max_new_tokens: the most tokens per response (``MAX_NEW_TOKENS``).
      sampling: decoding settings (``@decoding.Sampling()``; None becomes greedy).
      seed: sampling seed (``SEED``); each (prompt, sample) derives its own from it.
      languages: only tasks in these languages (None: all).
      prompt_files: ``{"id", "prompt"}`` JSONL files (``test_<lang>.jsonl``, as the OASST test
        prompts) answered instead of the task's split (``PROMPT_FILES``). Bad lines are skipped
        and counted in the log.
      shard: ``(index, count)`` of this worker; None: ``(process_index, process_count)``. An
        explicit shard writes its part only (merge with ``output_files.merge_parts``).
      mesh_shape: ``(data, fsdp, model)`` sizes of the mesh the model is placed on
        (``MESH_SHAPE``; -1 fills; every device on ``fsdp`` fits whatever training fit).
      axis_rules: logical axis rules (None: the standard rules, as in training).
      dtype: the weights' and activations' dtype (``MODEL_DTYPE``): ``auto`` (bfloat16 on a
        GPU or TPU, the checkpoint's on CPU), ``checkpoint``, ``float32`` or ``bfloat16``.
      quantization: ``none`` or ``int8`` weight-only quantization (``WEIGHT_QUANTIZATION``).
    """

    checkpoint_path: str
    mixture_or_task_name: str
    output_dir: str | None = None
    split: str = "validation"
    batch_size: int = 32
    max_new_tokens: int = 64
    sampling: decoding.Sampling | None = None
    seed: int = 0
    languages: Sequence[str] | None = None
    prompt_files: Sequence[str] | None = None
    shard: tuple[int, int] | None = None
    mesh_shape: tuple[int, int, int] = (1, -1, 1)
    axis_rules: AxisRules | None = None
    dtype: str = "auto"
    quantization: str = "none"

    def _fail(self, macro: str, name: str, expected: str) -> None:
        setting = f"{macro} (InferConfig.{name})" if macro else f"InferConfig.{name}"
        raise ConfigError(f"{setting} must be {expected}, got {getattr(self, name)!r}")

    def __post_init__(self) -> None:
        fail = self._fail
        if not _is_path(self.checkpoint_path):
            fail("CHECKPOINT_PATH", "checkpoint_path", "a run directory or checkpoint_<step> path")
        if not isinstance(self.mixture_or_task_name, str) or not self.mixture_or_task_name:
            fail("MIXTURE_OR_TASK_NAME", "mixture_or_task_name", "a task or mixture name")
        if self.output_dir is not None and not _is_path(self.output_dir):
            fail("INFER_OUTPUT_DIR", "output_dir", "a folder path or None")
        if not isinstance(self.split, str) or not self.split:
            fail("SPLIT", "split", "a split name")
        for macro, name in (("BATCH_SIZE", "batch_size"), ("MAX_NEW_TOKENS", "max_new_tokens")):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(macro, name, "a positive integer")
        if not _is_int(self.seed):
            fail("SEED", "seed", "an integer")
        if self.sampling is not None and not isinstance(self.sampling, decoding.Sampling):
            fail("", "sampling", "@decoding.Sampling()")
        if self.languages is not None and not _is_names(self.languages):
            fail("", "languages", "a list of language codes")
        files = self.prompt_files
        if files is not None and (isinstance(files, str) or not all(map(_is_path, files))):
            fail("PROMPT_FILES", "prompt_files", "a list of JSONL files or None")
        shard = self.shard
        if shard is not None and not (
            isinstance(shard, tuple | list)
            and len(shard) == 2
            and all(map(_is_int, shard))
            and 0 <= shard[0] < shard[1]
        ):
            fail("", "shard", "(index, count) with 0 <= index < count")
        mesh = self.mesh_shape
        if isinstance(mesh, str) or len(mesh) != 3 or not all(map(_is_int, mesh)):
            fail("MESH_SHAPE", "mesh_shape", "(data, fsdp, model) sizes, e.g. (1, -1, 1)")
        if self.dtype not in INFERENCE_DTYPES:
            fail("MODEL_DTYPE", "dtype", f"one of {', '.join(INFERENCE_DTYPES)}")
        if self.quantization not in QUANTIZATIONS:
            fail("WEIGHT_QUANTIZATION", "quantization", f"one of {', '.join(QUANTIZATIONS)}")
        freeze = object.__setattr__  # the caller's lists may change after the config is made
        freeze(self, "mesh_shape", tuple(mesh))
        freeze(self, "shard", None if shard is None else tuple(shard))
        freeze(self, "sampling", self.sampling or decoding.Sampling())  # None: greedy
        for name in ("languages", "prompt_files"):
            if getattr(self, name) is not None:
                freeze(self, name, tuple(getattr(self, name)))
