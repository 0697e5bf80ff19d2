"""A study's evaluation prompts as one SeqIO mixture: a dataset's tasks in the chosen languages.

``studies/eval.gin`` binds ``MIXTURE_OR_TASK_NAME = @eval_mixture()`` so that ``infer`` answers
the held-out prompts of every evaluation language of a study in one run (one model load): the
OASST test prompts (``oasst_test``), Polyglots' AlpacaEval instructions
(``alpaca_eval_polyglots``; its language groups are ``study_data.POLYGLOTS_EVAL_GROUPS``), the
zero-shot study's AlpacaEval test prompts (``alpaca_eval_zero_shot``), Aya's human-written
test prompts (``aya`` ``test``, each answer kept as the row's reference), Pinch's held-out
LIMA + OASST prompts (``lima_oasst`` ``test``) or the demo's ``validation`` prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import gin
import seqio

from polyglot_jax import languages as registry
from polyglot_jax.data import chat_tasks
from polyglot_jax.errors import ConfigError


def task_names(dataset: str, langs: Sequence[str]) -> list[str]:
    """``<dataset>_<lang>`` for each language, each a registered task.

    Raises:
      ConfigError: the dataset is not registered, or lacks a language (named).
    """
    data = chat_tasks.get_dataset(dataset)[0]
    langs = registry.validate(langs)
    missing = [lang for lang in langs if lang not in data.languages]
    if missing:
        raise ConfigError(
            f"EVAL_LANGUAGES: {dataset} has no {', '.join(missing)} "
            f"(it has {', '.join(data.languages)})"
        )
    return [data.task_name(lang) for lang in langs]


@gin.configurable
def eval_mixture(dataset: str = gin.REQUIRED, languages: Sequence[str] = gin.REQUIRED) -> str:
    """Registers ``<dataset>_eval_<langs>``: the dataset's tasks in ``languages``; its name."""
    names = task_names(dataset, languages)
    name = f"{dataset}_eval_{'_'.join(registry.validate(languages))}"
    seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, [(task, 1.0) for task in names])
    return name
