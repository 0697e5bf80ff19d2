"""How long a run trains: optimizer steps and the packed rows of each global batch.

``BATCH_SIZE`` counts packed rows, as T5X does (``BATCH_UNIT = "rows"``, the default), or
examples per optimizer update, as the papers and their Hugging Face scripts do
(``BATCH_UNIT = "examples"``, every study). With examples, packing stays on for speed: one pass
over the mixture counts its examples and packed rows, and each step reads the number of rows
that holds ``BATCH_SIZE`` examples on average, so ``NUM_EPOCHS`` passes take
``ceil(NUM_EPOCHS * examples / BATCH_SIZE)`` steps, the count of the papers' trainers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping

import seqio
import tensorflow as tf

from polyglot_jax.data import pipeline, preprocessors
from polyglot_jax.errors import ConfigError
from polyglot_jax.training.config import DataConfig, TrainConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """A run's length and batch shape.

    Attributes:
      steps: optimizer updates.
      rows_per_step: packed (or unpacked) rows of a global batch.
      examples_per_step: examples per update (a mean when rows are packed), or None when
        unknown (``BATCH_UNIT = "rows"`` with ``TRAIN_STEPS``: the mixture is not counted).
      examples: examples of one pass over the mixture (None when not counted).
      rows: rows of one pass over the mixture (None when not counted).
    """

    steps: int
    rows_per_step: int
    examples_per_step: float | None = None
    examples: int | None = None
    rows: int | None = None

    def describe(self) -> str:
        """One line for the log, e.g. ``600 steps of 16 examples (4 packed rows) ...``."""
        if self.examples is None or self.rows is None:
            return f"{self.steps} steps of {self.rows_per_step} rows"
        per_row = self.examples / max(self.rows, 1)
        return (
            f"{self.steps} steps of {self.examples_per_step:.4g} examples ({self.rows_per_step} "
            f"rows) per update; one pass is {self.examples} examples in {self.rows} rows "
            f"({per_row:.2f} examples per row)"
        )


def count(
    mixture_or_task_name: str, task_feature_lengths: Mapping[str, int], pack: bool
) -> tuple[int, int]:
    """``(examples, rows)`` of one unshuffled pass over the training split.

    Task by task, in file order (a mixture's sampler stops at its first exhausted task):
    shuffling before packing moves the row count by under a row per packing window.
    """
    source = pipeline.get_mixture_or_task(mixture_or_task_name)
    converter = preprocessors.ChatFeatureConverter(pack=pack)
    examples = rows = 0
    for task in getattr(source, "tasks", [source]):
        ds = seqio.get_dataset(  # untrimmed, as train_batches reads it: the converter truncates
            task.name, dict(task_feature_lengths), converter, trim_output_features=False
        )
        if pack:
            per_row = ds.map(lambda r: tf.reduce_max(r["decoder_segment_ids"]))
        else:
            per_row = ds.map(lambda r: tf.constant(1, tf.int32))
        n, m = per_row.reduce((0, 0), lambda acc, e: (acc[0] + 1, acc[1] + e))
        rows, examples = rows + int(n), examples + int(m)
    return examples, rows


def schedule(
    train_steps: int | None,
    num_epochs: float | None,
    batch_size: int,
    batch_unit: str,
    examples: int,
    rows: int,
    multiple_of: int = 1,
) -> StepPlan:
    """The plan for a mixture of ``examples`` in ``rows`` (the arithmetic of
    :func:`plan_steps`, whose checks it assumes)."""
    if batch_unit == "rows":
        steps = train_steps or max(1, math.ceil(num_epochs * rows / batch_size))
        return StepPlan(steps, batch_size, batch_size * examples / rows, examples, rows)
    steps = train_steps or max(1, math.ceil(num_epochs * examples / batch_size))
    per_step = max(1, round(batch_size * rows / examples))
    per_step = -(-per_step // multiple_of) * multiple_of
    return StepPlan(steps, per_step, per_step * examples / rows, examples, rows)


def plan_steps(config: TrainConfig, data: DataConfig, multiple_of: int = 1) -> StepPlan:
    """The steps and rows per step of a run (see the module docstring).

    ``config`` and ``data`` checked their values when they were made (one of ``TRAIN_STEPS``
    and ``NUM_EPOCHS``, a known ``BATCH_UNIT``); with ``BATCH_UNIT = "rows"`` and
    ``TRAIN_STEPS`` nothing is counted, otherwise one pass reads the whole mixture.

    Args:
      config: the run's ``train_steps`` or ``num_epochs``, ``batch_size`` and ``batch_unit``.
      data: the training mixture, its lengths and whether rows are packed.
      multiple_of: rows per step are rounded up to a multiple of this (hosts x microbatches).

    Raises:
      ConfigError: the training split has no examples.
    """
    name, batch_size, batch_unit = data.mixture_or_task_name, config.batch_size, config.batch_unit
    num_epochs = config.num_epochs
    if batch_unit == "rows" and config.train_steps is not None:
        return StepPlan(config.train_steps, batch_size)
    examples, rows = count(name, data.task_feature_lengths, data.pack)
    if not examples:
        raise ConfigError(f"{name}: the training split has no examples")
    plan = schedule(
        config.train_steps, num_epochs, batch_size, batch_unit, examples, rows, multiple_of
    )
    how = f"{num_epochs:g} epochs" if num_epochs is not None else "TRAIN_STEPS"
    log.info("%s: BATCH_SIZE %d %s, %s: %s", name, batch_size, batch_unit, how, plan.describe())
    return plan
