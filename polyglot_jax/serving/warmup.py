"""Serving warm-up: every program the engine will run, compiled once before the first request.

Prefill at each padded prompt width and row count, and the decode step at each number of steps
per call with and without penalties and sampling, all on idle slots (prefilled rows are dropped),
so no client waits for a compilation.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import jax
import numpy as np

from polyglot_jax.serving import slots

log = logging.getLogger(__name__)


def warm_up(engine: Any, state: slots.Slots, steps_per_call: int) -> slots.Slots:
    """Runs each of ``engine``'s prefill and decode programs once; returns the (unchanged) slots.

    Args:
      engine: the :class:`~polyglot_jax.serving.engine.Engine` whose programs run.
      state: its idle slots.
      steps_per_call: the most decode steps one call runs.
    """
    start, programs = time.perf_counter(), 0
    rows, widths = 1, [min(16, engine.max_length)]  # the widths _start pads prompts to
    while widths[-1] < min(engine.warm_up_width, engine.max_length):
        widths.append(min(widths[-1] * 2, engine.max_length))
    while rows <= engine.slots:
        for width in widths:
            knobs = {k: np.zeros((rows,), np.float32) for k in slots.KNOBS}
            state = engine._prefill(
                engine.model.params,
                state,
                np.full((rows,), engine.slots, np.int32),  # every row dropped
                np.full((rows, width), engine.pad_id, np.int32),
                np.ones((rows,), np.int32),
                np.zeros((rows, 2), np.uint32),
                knobs,
                np.zeros((rows,), np.int32),
            )
            programs += 1
        rows *= 2
    idle = np.zeros((engine.slots,), bool)
    steps = 1
    while steps <= steps_per_call:
        for penalties in (False, True):
            for sampling in (False, True):
                _, state = engine._decode(
                    engine.model.params,
                    state,
                    idle,
                    steps=steps,
                    penalties=penalties,
                    sampling=sampling,
                )
                programs += 1
        steps *= 2
    jax.block_until_ready(state)
    log.info("compiled %d programs in %.1f s", programs, time.perf_counter() - start)
    return state
