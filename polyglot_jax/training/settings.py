"""Checks of run settings at the boundary, naming the gin macro a user would change.

Gin passes whatever a binding says (``BATCH_SIZE="8"``, ``TRAIN_STEPS=0``); without a check a
bad value ends deep inside the run as a ZeroDivisionError or TypeError, or exits 0 having
trained nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import DecoderConfig


def integer(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` if it is an integer ``>= minimum``.

    Args:
      value: the bound value.
      name: how the user sets it, e.g. ``"TRAIN_STEPS (train.train_steps)"``.
      minimum: the smallest allowed value.

    Raises:
      ConfigError: naming ``name`` and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    return value


def check_train(
    model_dir: Any,
    mixture_or_task_name: Any,
    task_feature_lengths: Any,
    batch_size: Any,
    model_config: Any,
    checkpoint_every: Any,
    keep_checkpoints: Any,
    log_every: Any,
    microbatches: Any,
    eval_every: Any,
) -> None:
    """Refuses settings of :func:`polyglot_jax.training.loop.train` that cannot run.

    Raises:
      ConfigError: the first bad setting, named by its macro.
    """
    if not isinstance(model_dir, str) or not model_dir.strip():
        raise ConfigError(
            f"MODEL_DIR (train.model_dir) must be a non-empty path, got {model_dir!r}"
        )
    if not isinstance(mixture_or_task_name, str):
        raise ConfigError(
            f"MIXTURE_OR_TASK_NAME must be a task or mixture name, got {mixture_or_task_name!r}"
        )
    if not isinstance(task_feature_lengths, Mapping) or "targets" not in task_feature_lengths:
        raise ConfigError(
            f'TASK_FEATURE_LENGTHS must be {{"targets": length}}, got {task_feature_lengths!r}'
        )
    integer(task_feature_lengths["targets"], 'TASK_FEATURE_LENGTHS["targets"]')
    integer(batch_size, "BATCH_SIZE (train.batch_size)")
    integer(checkpoint_every, "train.checkpoint_every")
    integer(keep_checkpoints, "train.keep_checkpoints")
    integer(log_every, "train.log_every")
    integer(microbatches, "MICROBATCHES (train.microbatches)")
    if eval_every is not None:
        integer(eval_every, "EVAL_EVERY (train.eval_every)", minimum=0)
    if not isinstance(model_config, DecoderConfig):
        raise ConfigError(
            f"MODEL_CONFIG must be a DecoderConfig (pass a models/*.gin file), got {model_config!r}"
        )
    if task_feature_lengths["targets"] > model_config.max_length:
        raise ConfigError(
            f'TASK_FEATURE_LENGTHS["targets"] = {task_feature_lengths["targets"]} is longer than '
            f"the model's max_length {model_config.max_length}"
        )
