"""Optimizers: AdamW or Adafactor with warmup and a decay schedule, built for a run's steps.

``make_optimizer`` is what the gin files configure (``LEARNING_RATE``, ``SCHEDULE``,
``WARMUP_STEPS`` or ``WARMUP_RATIO``, ``FINAL_LR_RATIO``, ``WEIGHT_DECAY``, ``ADAM_B2``,
``MAX_GRAD_NORM``); the training loop calls it with the run's steps as ``decay_steps``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any

import gin
import jax
import optax

from polyglot_jax.errors import ConfigError
from polyglot_jax.training import settings

log = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "adafactor")


@gin.configurable
def make_optimizer(
    learning_rate: float = 1e-3,
    warmup_steps: int = 100,
    decay_steps: int | None = None,
    warmup_ratio: float | None = None,
    schedule: str = "linear",
    final_lr_ratio: float = 0.0,
    weight_decay: float = 0.0,
    b1: float = 0.9,
    b2: float = 0.95,
    eps: float = 1e-8,
    max_grad_norm: float | None = 1.0,
    name: str = "adamw",
    decay_rate: float = 0.8,
    clipping_threshold: float | None = 1.0,
    min_dim_size_to_factor: int = 128,
) -> optax.GradientTransformation:
    """AdamW or Adafactor with linear warmup, then constant, linear or cosine decay to zero.

    Adafactor is T5X's fine-tuning setup: factored second moments (a row and a column vector
    per matrix with both dimensions >= ``min_dim_size_to_factor``), no momentum, update
    clipping at block RMS ``clipping_threshold``, second-moment decay ``step^-decay_rate`` and
    updates scaled by each parameter's RMS.

    Args:
      learning_rate: peak learning rate.
      warmup_steps: steps of linear warmup from 0.
      decay_steps: total steps of the schedule (warmup included); needed for linear/cosine.
      warmup_ratio: warmup as a share of ``decay_steps`` instead of ``warmup_steps`` (which must
        then be 0): ``ceil(warmup_ratio * decay_steps)`` steps, as Hugging Face's
        ``TrainingArguments.warmup_ratio`` counts them.
      schedule: ``"constant"``, ``"linear"`` or ``"cosine"``.
      final_lr_ratio: the learning rate a linear or cosine decay ends at, as a share of the
        peak (0: decay to zero, as Hugging Face does; 0.1: pasero's ``min_lr = lr / 10``).
      weight_decay: decoupled weight decay on matrices (not on norms or vectors); for Adafactor
        a per-step rate not multiplied by the learning rate.
      b1, b2, eps: Adam moments.
      max_grad_norm: global-norm clipping, or None.
      name: ``"adamw"`` or ``"adafactor"``.
      decay_rate: Adafactor second-moment decay exponent.
      clipping_threshold: Adafactor update clipping (block RMS), or None.
      min_dim_size_to_factor: Adafactor factors only dimensions at least this large.
    """
    settings.integer(warmup_steps, "WARMUP_STEPS (make_optimizer.warmup_steps)", minimum=0)
    if decay_steps is not None:
        settings.integer(decay_steps, "TRAIN_STEPS (make_optimizer.decay_steps)")
    if warmup_ratio is not None:
        warmup_steps = _warmup_from_ratio(warmup_ratio, warmup_steps, decay_steps)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float):
        raise ConfigError(f"LEARNING_RATE must be a number, got {learning_rate!r}")
    if not learning_rate > 0:
        raise ConfigError(f"LEARNING_RATE must be > 0, got {learning_rate!r}")
    if name not in OPTIMIZERS:
        raise ConfigError(
            f"OPTIMIZER (make_optimizer.name) must be one of {OPTIMIZERS}, got {name!r}"
        )
    if isinstance(final_lr_ratio, bool) or not isinstance(final_lr_ratio, int | float):
        raise ConfigError(f"FINAL_LR_RATIO must be a number in [0, 1], got {final_lr_ratio!r}")
    if not 0 <= final_lr_ratio <= 1:
        raise ConfigError(f"FINAL_LR_RATIO must be a number in [0, 1], got {final_lr_ratio!r}")
    end = learning_rate * final_lr_ratio
    if schedule == "constant" or decay_steps is None:
        after = optax.constant_schedule(learning_rate)
    elif schedule == "linear":
        after = optax.linear_schedule(learning_rate, end, max(decay_steps - warmup_steps, 1))
    elif schedule == "cosine":
        after = optax.cosine_decay_schedule(
            learning_rate, max(decay_steps - warmup_steps, 1), alpha=final_lr_ratio
        )
    else:
        raise ConfigError(f"make_optimizer: unknown schedule {schedule!r}")
    log.info(
        "optimizer: %s, peak learning rate %g, %d warmup steps, %s schedule over %s steps, "
        "weight decay %g",
        "AdamW" if name == "adamw" else "Adafactor",
        learning_rate,
        warmup_steps,
        schedule,
        decay_steps,
        weight_decay,
    )
    lr = optax.join_schedules(
        [optax.linear_schedule(0.0, learning_rate, max(warmup_steps, 1)), after], [warmup_steps]
    )
    decay_mask = functools.partial(jax.tree.map, lambda p: p.ndim >= 2)
    chain = [optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm else []
    if name == "adamw":
        chain.append(
            optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=decay_mask)
        )
    else:
        chain.append(
            optax.adafactor(
                lr,
                min_dim_size_to_factor=min_dim_size_to_factor,
                decay_rate=decay_rate,
                clipping_threshold=clipping_threshold,
                momentum=None,
                weight_decay_rate=weight_decay or None,
                weight_decay_mask=decay_mask,
            )
        )
    return optax.chain(*chain)


def _warmup_from_ratio(ratio: Any, warmup_steps: int, decay_steps: int | None) -> int:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio < 1:
        raise ConfigError(f"WARMUP_RATIO must be a number in [0, 1), got {ratio!r}")
    if warmup_steps:
        raise ConfigError(
            f"set one of WARMUP_STEPS ({warmup_steps}) and WARMUP_RATIO ({ratio}), e.g. "
            "--gin.WARMUP_STEPS=0"
        )
    if decay_steps is None:
        raise ConfigError("WARMUP_RATIO needs the run's steps (make_optimizer.decay_steps)")
    return math.ceil(ratio * decay_steps)


def build_optimizer(
    optimizer: optax.GradientTransformation | Callable[..., Any] | None, train_steps: int
) -> optax.GradientTransformation:
    """``optimizer`` as given, or built by its factory (gin's ``@make_optimizer``) for a
    schedule of ``train_steps``."""
    if optimizer is None:
        optimizer = make_optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    return optimizer(decay_steps=train_steps)
