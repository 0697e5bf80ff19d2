"""Recipes: exact per-language example selections registered as SeqIO mixtures.

A recipe decides which example ids each language contributes ("replace 22 English examples by
their translations, two per language"). Selection orders ids by a hash of ``(seed, id)``, so it
is the same on every host and every run, and independent of file order. Each selected
(language, ids) pair becomes a SeqIO task ``<mixture>.<lang>``; the mixture's rate for it is its
example count, so one pass over the mixture sees exactly the stated counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import seqio

from polyglot_jax import languages
from polyglot_jax.data import chat_tasks

Selection = dict[str, list[str]]  # lang -> example ids, in selection order


class RecipeError(ValueError):
    """A recipe that cannot be satisfied by the data."""


def hash_order(ids: Sequence[str], seed: int) -> list[str]:
    """``ids`` sorted by ``sha256(seed:id)``: a seeded shuffle that ignores input order."""
    return sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())


def _ids(dataset: chat_tasks.ChatDataset, lang: str, split: str) -> list[str]:
    return [r["id"] for r in dataset.records(split, lang)]


def monolingual(
    dataset: chat_tasks.ChatDataset,
    lang: str,
    count: int | None = None,
    seed: int = 0,
    split: str = "train",
) -> Selection:
    """``count`` examples (default all) of one language."""
    ids = hash_order(_ids(dataset, languages.get(lang).code, split), seed)
    count = len(ids) if count is None else count
    if count > len(ids):
        raise RecipeError(f"{dataset.name}: asked for {count} {lang} examples, only {len(ids)}")
    return {lang: ids[:count]}


def pinch(
    dataset: chat_tasks.ChatDataset,
    base: str,
    languages_: Sequence[str],
    n_multilingual: int,
    total: int | None = None,
    seed: int = 0,
    split: str = "train",
) -> Selection:
    """Replaces ``n_multilingual`` base examples by translations spread evenly over languages.

    The first ``n_multilingual`` ids in hash order go round-robin to ``languages_`` (counts differ
    by at most one, earlier languages first); the base language keeps the rest, so no id is used
    twice across languages and the total stays ``total`` (default: all parallel ids).
    """
    languages.validate([base, *languages_])
    if base in languages_:
        raise RecipeError(f"pinch: base language {base!r} is also in the added languages")
    parallel = set(_ids(dataset, base, split))
    for lang in languages_:
        parallel &= set(_ids(dataset, lang, split))
    ids = hash_order(sorted(parallel), seed)
    total = len(ids) if total is None else total
    if total > len(ids) or n_multilingual > total:
        raise RecipeError(
            f"pinch: {total} examples with {n_multilingual} multilingual asked, "
            f"{len(ids)} parallel ids exist in {dataset.name!r}"
        )
    selection: Selection = {base: ids[n_multilingual:total]}
    for i, lang in enumerate(languages_):
        selection[lang] = ids[i : n_multilingual : len(languages_)]
    return selection


def uniform(
    dataset: chat_tasks.ChatDataset, languages_: Sequence[str], split: str = "train"
) -> Selection:
    """Every example of every language."""
    return {lang: _ids(dataset, lang, split) for lang in languages.validate(languages_)}


def register_mixture(
    name: str,
    dataset: chat_tasks.ChatDataset,
    selection: Mapping[str, Sequence[str]],
    vocabulary: seqio.Vocabulary,
    split: str = "train",
    eval_split: str | None = "validation",
) -> seqio.Mixture:
    """Registers one task per selected language and a mixture weighted by the counts.

    The tasks ``<name>.<lang>`` hold exactly the selected ids in the training split and, when
    the dataset has it, the whole evaluation split of that language.
    """
    tasks = []
    for lang, ids in selection.items():
        if not ids:
            raise RecipeError(f"mixture {name!r}: language {lang!r} has no examples selected")
        chosen = set(ids)

        def records_fn(s: str, lang: str = lang, chosen: frozenset = frozenset(chosen)) -> list:
            records = dataset.records(s, lang)
            return [r for r in records if r["id"] in chosen] if s == split else records

        splits = [split] + ([eval_split] if (eval_split, lang) in dataset.files else [])
        task = chat_tasks.add_chat_task(f"{name}.{lang}", records_fn, splits, vocabulary)
        tasks.append((task.name, len(ids)))
    seqio.MixtureRegistry.remove(name)
    return seqio.MixtureRegistry.add(name, tasks)


def counts(mixture_or_task: str, split: str = "train") -> dict[str, int]:
    """Examples per language in one pass over a registered recipe mixture or task."""
    task_or_mixture = seqio.get_mixture_or_task(mixture_or_task)
    tasks = getattr(task_or_mixture, "tasks", [task_or_mixture])
    out: dict[str, int] = {}
    for task in tasks:
        for record in chat_tasks.task_records(task, split):
            out[record["lang"]] = out.get(record["lang"], 0) + 1
    return out
