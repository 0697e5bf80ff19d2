"""Checks a study makes once before its first training stage: the chat framing (``doctor``)
and the contamination of its evaluation prompts (:mod:`~polyglot_jax.studies.contamination`).

:func:`check_framing` builds the first pending run's gin configuration (in a config of its own,
as the plan does), takes the training mixture's vocabulary and the run's chat format, and runs
the doctor's framing checks (:func:`~polyglot_jax.runtime.doctor.framing_checks`) on them: a
study whose template trains no assistant token, doubles BOS or never teaches a stop token
stops before it trains anything.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

import seqio

from polyglot_jax import gin_utils
from polyglot_jax.data import pipeline, templates
from polyglot_jax.errors import ConfigError
from polyglot_jax.runtime import doctor
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.studies import contamination
from polyglot_jax.studies.grid import Condition
from polyglot_jax.studies.plan import Planner
from polyglot_jax.training.config import DataConfig, configured

log = logging.getLogger(__name__)


def _vocabulary(name: str) -> object:
    if name not in seqio.MixtureRegistry.names() and name not in seqio.TaskRegistry.names():
        importlib.import_module("tasks")
    vocabulary = pipeline.vocabulary_of(name)
    return getattr(vocabulary, "resolved", vocabulary)


def framing(planner: Planner, condition: Condition) -> tuple[str, list[doctor.Check]]:
    """The doctor's framing checks of ``condition``'s training configuration.

    Returns:
      the rendered conversation and the checks.
    """
    args = gin_utils.parse_args(planner.train_argv(condition)[3:])  # after "-m module"
    with gin_utils.isolated_config():
        gin_utils.configure(args, finalize=False)
        data = configured(DataConfig)
        chat_format = templates.chat_format()
        vocabulary = _vocabulary(data.mixture_or_task_name)
        model = ChatModel(None, None, vocabulary, chat_format.template)  # type: ignore[arg-type]
        return doctor.framing_checks(model, chat_format)


def check_framing(planner: Planner, conditions: Sequence[Condition]) -> None:
    """Runs the framing checks on the first run still to train (none left: nothing is done).

    Raises:
      ConfigError: a check failed (each failure named in the message).
    """
    pending = [c for c in conditions if not planner.train_done(c)]
    if not pending:
        return
    _, checks = framing(planner, pending[0])
    for check in checks:
        log.info("doctor %s: %s %s", check.name, check.status, check.detail)
    failures = [f"{c.name}: {c.detail}" for c in checks if c.status == doctor.FAIL]
    if failures:
        raise ConfigError(
            f"doctor ({pending[0].name}): {'; '.join(failures)} (polyglot-jax doctor shows the "
            "conversation)"
        )


def check(planner: Planner, conditions: Sequence[Condition]) -> None:
    """What a study checks before it trains: the chat framing (stops the study on a failure)
    and the contamination of its evaluation prompts (``<root>/contamination.json``, logged).

    Raises:
      ConfigError: a framing check failed.
    """
    check_framing(planner, conditions)
    if any(not planner.train_done(c) for c in conditions):  # the data is read to train anyway
        contamination.study_check(planner, conditions)
