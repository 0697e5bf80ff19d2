"""What a study is: a grid of conditions (runs), its decoding, judge, benchmarks and figure.

A :class:`Study` is data: each :class:`Condition` names one experiment file of
``gin_configs/studies/<study>/`` and the gin overrides of its grid point; the study adds the
model file, the evaluation prompts with the study's decoding (``studies/<study>/infer.gin``), the
judge protocol and prompt, the structured benchmarks and the figure that the report draws.
:func:`select` picks conditions by name or ``fnmatch`` pattern (``--conditions='share_*'``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from polyglot_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Condition:
    """One run of a study's grid.

    Attributes:
      name: the run's name (its folder under ``--root`` and its row in the report).
      gin_file: the experiment file, e.g. ``studies/polyglots/multi_k_lora.gin``.
      overrides: gin macros of this grid point (``{"MULTI_K": 3}``).
      x: the run's position on the study figure's x axis (k, share of multilingual examples,
        learning rate), or None when the figure does not place it.
      series: the figure's line or bar group the run belongs to (``lora``, ``full``).
      lora: whether the experiment trains LoRA adapters (gets the model's LoRA targets).
      own_language: a per-language run (monolingual): a ``bars`` figure shows it only on it.
      infer_overrides: gin macros of this run's inference (its decoding, where the paper's
        differs by condition).
      tuned_languages: the languages of this run's tuning data (None: the study's
        ``language_groups`` say which are tuned); the report's "unseen" group is the rest.
      seed: the run's ``SEED`` (training and decoding) when the study runs several seeds
        (:func:`with_seeds`; its name then ends ``_seed<seed>``), else None.
    """

    name: str
    gin_file: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    x: float | None = None
    series: str = ""
    lora: bool = False
    own_language: str | None = None
    infer_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tuned_languages: tuple[str, ...] | None = None
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class Judging:
    """How a study's answers are judged besides language ID (agreement, chrF).

    Attributes:
      protocol: ``single``, ``pairwise`` or ``facets`` (:mod:`~polyglot_jax.evaluation.judges`).
      prompt: the shipped prompt (``evaluation/judges/prompts/<prompt>.txt``).
      language_gate: score 0 when the response is not in the prompt's language.
      baseline: the condition whose answers a pairwise judge compares against.
    """

    protocol: str
    prompt: str
    language_gate: bool = False
    baseline: str | None = None


@dataclasses.dataclass(frozen=True)
class Figure:
    """The study's figure: ``bars`` (one group per language, a bar per run) or ``curve`` (mean
    over languages vs. the conditions' ``x``, a line per series).

    Attributes:
      kind: ``curve`` or ``bars``.
      x_label: the x axis (curve) or the legend title (bars).
      log_x: a logarithmic x axis (learning rates).
      zero: a condition drawn at x = 0 of every series (the English-only run of a share curve).
    """

    kind: str
    x_label: str
    log_x: bool = False
    zero: str | None = None


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: its grid and how each run is evaluated and reported.

    Attributes:
      name: the command's NAME (``polyglot-jax study run NAME``).
      title: the paper, with its arXiv id.
      conditions: the grid, in run order.
      model: the default model file (``--model`` replaces it).
      infer_gin: evaluation prompts and decoding (``studies/<study>/infer.gin``).
      train_overrides: gin macros of every training run (the demo's data and sizes).
      infer_overrides: gin macros of every inference run.
      judging: the LLM judge (used with ``--judge``).
      benchmarks: structured benchmarks (``polyglot-jax eval``), each with its languages
        (``{"xnli": ("en", "de"), "xcopa": ("et",)}``); empty: none.
      figure: what the report draws.
      lora_targets: ``LORA_TARGETS`` per model family prefix of the model file's name
        (``falcon``, ``bloom``, ``pythia``) for the LoRA conditions.
      select_by_x: the report picks, per series, the ``x`` with the best non-English mean (the
        zero-shot study's learning rate chosen on multilingual validation).
      quick: the conditions of ``--quick`` and the overrides that make them tiny.
      language_groups: the evaluation languages grouped as the paper reports them (e.g.
        ``{"tuned": ..., "zero-shot": ..., "unseen": ...}``); the report gives each group's
        mean beside the overall one.
    """

    name: str
    title: str
    conditions: tuple[Condition, ...]
    model: str
    infer_gin: str
    judging: Judging | None
    figure: Figure
    benchmarks: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    train_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    infer_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    lora_targets: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    select_by_x: bool = False
    quick: Quick | None = None
    language_groups: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def condition(self, name: str) -> Condition:
        for condition in self.conditions:
            if condition.name == name:
                return condition
        raise ConfigError(f"study {self.name}: no condition {name!r}")


@dataclasses.dataclass(frozen=True)
class Quick:
    """A study at the tiniest size: a few conditions on the tiny model and fixture data.

    Attributes:
      conditions: names of the conditions run.
      train: overrides of every training run (steps, batch, lengths, recipe sizes).
      infer: overrides of inference (new tokens, samples, languages).
      benchmarks: each benchmark with its languages (None: the study's).
      per_condition: extra training overrides of some conditions.
    """

    conditions: tuple[str, ...]
    train: Mapping[str, Any]
    infer: Mapping[str, Any]
    benchmarks: Mapping[str, tuple[str, ...]] | None = None
    per_condition: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


QUICK_TRAIN = {
    "TRAIN_STEPS": 3,
    "NUM_EPOCHS": None,
    "BATCH_SIZE": 2,
    "TASK_FEATURE_LENGTHS": {"targets": 64},
    "WARMUP_STEPS": 0,
    "EVAL_EVERY": 0,
    "TrainConfig.describe_data": False,  # no pass over the mixture to count it before step 1
}
QUICK_INFER = {
    "MAX_NEW_TOKENS": 4,
    "NUM_SAMPLES": 1,
    "NUM_BEAMS": 1,
    "NO_REPEAT_NGRAM_SIZE": 0,
    "BATCH_SIZE": 8,
}


SEED_MACRO = "SEED"  # runs/finetune.gin and runs/infer.gin: training and decoding seed


def seeded_name(name: str, seed: int | None) -> str:
    """The run of condition ``name`` with ``seed``: ``<name>_seed<seed>`` (None: ``name``)."""
    return name if seed is None else f"{name}_seed{seed}"


def with_seeds(conditions: Sequence[Condition], seeds: Sequence[int]) -> list[Condition]:
    """Each condition once per seed, its runs next to each other: named ``<name>_seed<s>``
    with ``SEED = s`` in training and decoding. No seeds: the conditions as they are (one run
    each, named as the condition, with the gin files' ``SEED``)."""
    if not seeds:
        return list(conditions)
    return [
        dataclasses.replace(
            c,
            name=seeded_name(c.name, s),
            overrides={**c.overrides, SEED_MACRO: s},
            infer_overrides={**c.infer_overrides, SEED_MACRO: s},
            seed=s,
        )
        for c in conditions
        for s in seeds
    ]


def unseeded(condition: Condition) -> Condition:
    """The condition of a seeded run (:func:`with_seeds`); a run without a seed as it is."""
    if condition.seed is None:
        return condition

    def drop(values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k != SEED_MACRO}

    return dataclasses.replace(
        condition,
        name=condition.name.removesuffix(f"_seed{condition.seed}"),
        overrides=drop(condition.overrides),
        infer_overrides=drop(condition.infer_overrides),
        seed=None,
    )


def select(
    study: Study, patterns: Sequence[str] | None, quick: bool = False, seeds: Sequence[int] = ()
) -> list[Condition]:
    """The conditions to run: all (or the quick ones), or those matching ``patterns``; with
    ``seeds``, each once per seed (:func:`with_seeds`).

    A pairwise study's baseline is run first whenever a selected condition needs it.

    Raises:
      ConfigError: a pattern that matches no condition (the known names are listed).
    """
    pool = list(study.conditions)
    if quick and study.quick is not None:
        pool = [study.condition(name) for name in study.quick.conditions]
    if patterns:
        chosen = []
        for pattern in patterns:
            hits = [c for c in study.conditions if fnmatch.fnmatchcase(c.name, pattern)]
            if not hits:
                known = ", ".join(c.name for c in study.conditions)
                raise ConfigError(
                    f"--conditions {pattern!r} matches no condition of {study.name} ({known})"
                )
            chosen += [c for c in hits if c not in chosen]
        pool = [c for c in study.conditions if c in chosen]
    baseline = study.judging.baseline if study.judging else None
    if baseline and pool and all(c.name != baseline for c in pool):
        pool.insert(0, study.condition(baseline))
    return with_seeds(pool, seeds)
