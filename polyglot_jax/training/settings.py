"""Checks of run settings at the boundary, naming the gin macro a user would change.

Gin passes whatever a binding says (``BATCH_SIZE="8"``, ``TRAIN_STEPS=0``); without a check a
bad value ends deep inside the run as a ZeroDivisionError or TypeError, or exits 0 having
trained nothing. The run's settings are checked where they are made
(:mod:`polyglot_jax.training.config`), the optimizer's in
:func:`~polyglot_jax.training.optimizers.make_optimizer`.
"""

from __future__ import annotations

from typing import Any

from polyglot_jax.errors import ConfigError


def integer(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` if it is an integer ``>= minimum``.

    Args:
      value: the bound value.
      name: how the user sets it, e.g. ``"TRAIN_STEPS (TrainConfig.train_steps)"``.
      minimum: the smallest allowed value.

    Raises:
      ConfigError: naming ``name`` and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    return value
