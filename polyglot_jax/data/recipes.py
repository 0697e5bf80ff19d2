"""Recipes: exact per-language example selections registered as SeqIO mixtures.

A recipe decides which example ids each language contributes ("replace 22 English examples by
their translations, two per language"). Selection orders ids by a hash of ``(seed, id)``, so it
is the same on every host and every run, and independent of file order. Each selected
(language, ids) pair becomes a SeqIO task ``<mixture>.<lang>``; the mixture's rate for it is its
example count (or a temperature-scaled count), so one pass sees exactly the stated counts.

The studies' recipes:

- :func:`monolingual`: one language.
- :func:`pinch`: a few base examples replaced by translations spread evenly over languages
  ("a pinch of multilinguality": 40 of an English set over 11 languages).
- :func:`multi_k`: ``total - per_language * (k - 1)`` base examples plus ``per_language`` in each
  of the next ``k - 1`` languages of an order ("how much multilinguality": es ru de zh fr).
- :func:`budget`: every language downsampled so the mixture has one language's size
  ("monolingual or multilingual").
- :func:`uniform` and :func:`temperature`: all data with equal or ``n ** (1 / T)`` rates.

The ``*_mixture`` functions register a recipe and return its name; gin files use them as
``MIXTURE_OR_TASK_NAME = @recipes.pinch_mixture()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import gin
import seqio

from polyglot_jax import languages as registry
from polyglot_jax.data import chat_tasks
from polyglot_jax.errors import ConfigError

Selection = dict[str, list[str]]  # lang -> example ids, in selection order


class RecipeError(ConfigError):
    """A recipe that cannot be satisfied by the data."""


def hash_order(ids: Sequence[str], seed: int) -> list[str]:
    """``ids`` sorted by ``sha256(seed:id)``: a seeded shuffle that ignores input order."""
    return sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())


def _ids(dataset: chat_tasks.ChatDataset, lang: str, split: str) -> list[str]:
    if (split, lang) not in dataset.files:
        have = sorted(lang for s, lang in dataset.files if s == split)
        raise RecipeError(
            f"dataset {dataset.name!r} has no {split!r} data in {lang!r} (it has {', '.join(have)})"
        )
    return [r["id"] for r in dataset.records(split, lang)]


def monolingual(
    dataset: chat_tasks.ChatDataset,
    lang: str,
    count: int | None = None,
    seed: int = 0,
    split: str = "train",
) -> Selection:
    """``count`` examples (default all) of one language."""
    ids = hash_order(_ids(dataset, registry.get(lang).code, split), seed)
    count = len(ids) if count is None else count
    if count > len(ids):
        raise RecipeError(f"{dataset.name}: asked for {count} {lang} examples, only {len(ids)}")
    return {lang: ids[:count]}


def _parallel_ids(
    dataset: chat_tasks.ChatDataset, langs: Sequence[str], split: str, seed: int
) -> list[str]:
    """Ids present in every language (translations of the same example), in hash order."""
    common = set(_ids(dataset, langs[0], split))
    for lang in langs[1:]:
        common &= set(_ids(dataset, lang, split))
    return hash_order(sorted(common), seed)


def pinch(
    dataset: chat_tasks.ChatDataset,
    base: str,
    languages: Sequence[str],
    n_multilingual: int | None = None,
    total: int | None = None,
    seed: int = 0,
    split: str = "train",
    fraction: float | None = None,
) -> Selection:
    """Replaces ``n_multilingual`` base examples by translations spread evenly over languages.

    The first ``n_multilingual`` ids in hash order go round-robin to ``languages`` (counts differ
    by at most one, earlier languages first); the base language keeps the rest, so no id is used
    twice across languages and the total stays ``total`` (default: all parallel ids).
    ``fraction`` gives ``n_multilingual`` as a share of the total instead.
    """
    registry.validate([base, *languages])
    if base in languages:
        raise RecipeError(f"pinch: base language {base!r} is also in the added languages")
    ids = _parallel_ids(dataset, [base, *languages], split, seed)
    total = len(ids) if total is None else total
    if (n_multilingual is None) == (fraction is None):
        raise RecipeError("pinch: give exactly one of n_multilingual and fraction")
    if n_multilingual is None:
        n_multilingual = round(fraction * total)
    if total > len(ids) or n_multilingual > total:
        raise RecipeError(
            f"pinch: {total} examples with {n_multilingual} multilingual asked, "
            f"{len(ids)} parallel ids exist in {dataset.name!r}"
        )
    selection: Selection = {base: ids[n_multilingual:total]}
    for i, lang in enumerate(languages):
        selection[lang] = ids[i : n_multilingual : len(languages)]
    return selection


def multi_k(
    dataset: chat_tasks.ChatDataset,
    order: Sequence[str],
    k: int,
    per_language: int,
    total: int,
    seed: int = 0,
    split: str = "train",
) -> Selection:
    """The first language of ``order`` plus ``per_language`` examples of each of the next k - 1.

    The base gets ``total - per_language * (k - 1)`` examples, so every k has the same total.
    Ids are drawn from the examples parallel across the first k languages, none used twice.
    """
    langs = registry.validate(order)
    if not 1 <= k <= len(langs):
        raise RecipeError(f"multi_k: k={k} but the order has {len(langs)} languages")
    added = per_language * (k - 1)
    if added > total:
        raise RecipeError(f"multi_k: {added} added examples exceed the total {total}")
    ids = _parallel_ids(dataset, langs[:k], split, seed)
    if total > len(ids):
        raise RecipeError(
            f"multi_k: asked for {total} examples, {len(ids)} parallel ids exist in "
            f"{dataset.name!r} for {', '.join(langs[:k])}"
        )
    selection: Selection = {langs[0]: ids[added:total]}
    for i, lang in enumerate(langs[1:k]):
        selection[lang] = ids[i * per_language : (i + 1) * per_language]
    return selection


def budget(
    dataset: chat_tasks.ChatDataset,
    languages: Sequence[str],
    total: int | None = None,
    seed: int = 0,
    split: str = "train",
) -> Selection:
    """Every language downsampled so the whole mixture has ``total`` examples.

    ``total`` defaults to the size of the smallest language's data ("one language's budget").
    Each language gets ``total // len(languages)`` (the first ``total % len`` get one more),
    drawn from ids not used by another language when the data is parallel.
    """
    langs = registry.validate(languages)
    sizes = {lang: len(_ids(dataset, lang, split)) for lang in langs}
    total = min(sizes.values()) if total is None else total
    shares = [total // len(langs) + (i < total % len(langs)) for i in range(len(langs))]
    used: set[str] = set()
    selection: Selection = {}
    for lang, share in zip(langs, shares, strict=True):
        ids = [i for i in hash_order(_ids(dataset, lang, split), seed) if i not in used]
        if share > len(ids):
            raise RecipeError(
                f"budget: {lang} needs {share} unused examples, {len(ids)} left in {dataset.name!r}"
            )
        selection[lang] = ids[:share]
        used.update(ids[:share])
    return selection


def uniform(
    dataset: chat_tasks.ChatDataset, languages: Sequence[str], split: str = "train"
) -> Selection:
    """Every example of every language."""
    return {lang: _ids(dataset, lang, split) for lang in registry.validate(languages)}


def temperature_rates(selection: Mapping[str, Sequence[str]], temperature: float) -> dict:
    """Mixture rates ``n_lang ** (1 / T)``: T = 1 follows the counts, large T tends to uniform."""
    if temperature <= 0:
        raise RecipeError(f"temperature must be positive, got {temperature}")
    return {lang: len(ids) ** (1.0 / temperature) for lang, ids in selection.items()}


def register_mixture(
    name: str,
    dataset: chat_tasks.ChatDataset,
    selection: Mapping[str, Sequence[str]],
    vocabulary: seqio.Vocabulary,
    split: str = "train",
    eval_split: str | None = "validation",
    rates: Mapping[str, float] | None = None,
) -> seqio.Mixture:
    """Registers one task per selected language and a mixture weighted by the counts.

    The tasks ``<name>.<lang>`` hold exactly the selected ids in the training split and, when
    the dataset has it, the whole evaluation split of that language. ``rates`` overrides the
    per-language rates (default: the counts).
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
        tasks.append((task.name, float(rates[lang]) if rates else len(ids)))
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


# --- gin entry points: register a recipe over a registered dataset, return the mixture name. ---


def _register(name: str, dataset: str, selection: Selection, rates: dict | None = None) -> str:
    data, vocabulary = chat_tasks.get_dataset(dataset)
    register_mixture(name, data, selection, vocabulary, rates=rates)
    return name


def _tag(langs: Sequence[str]) -> str:
    return "_".join(langs)


@gin.configurable
def monolingual_mixture(
    dataset: str = gin.REQUIRED, lang: str = "en", count: int | None = None, seed: int = 0
) -> str:
    """Registers :func:`monolingual` as ``<dataset>_mono_<lang>[_<count>]_s<seed>``."""
    data = chat_tasks.get_dataset(dataset)[0]
    name = f"{dataset}_mono_{lang}{'' if count is None else f'_{count}'}_s{seed}"
    return _register(name, dataset, monolingual(data, lang, count, seed))


@gin.configurable
def pinch_mixture(
    dataset: str = gin.REQUIRED,
    base: str = "en",
    languages: Sequence[str] = gin.REQUIRED,
    n_multilingual: int | None = None,
    fraction: float | None = None,
    total: int | None = None,
    seed: int = 0,
) -> str:
    """Registers :func:`pinch` as ``<dataset>_pinch<n>_<langs>_s<seed>``."""
    data = chat_tasks.get_dataset(dataset)[0]
    selection = pinch(data, base, languages, n_multilingual, total, seed, fraction=fraction)
    n = sum(len(v) for k, v in selection.items() if k != base)
    return _register(f"{dataset}_pinch{n}_{_tag(languages)}_s{seed}", dataset, selection)


@gin.configurable
def multi_k_mixture(
    dataset: str = gin.REQUIRED,
    order: Sequence[str] = gin.REQUIRED,
    k: int = gin.REQUIRED,
    per_language: int = 200,
    total: int = 3200,
    seed: int = 0,
) -> str:
    """Registers :func:`multi_k` as ``<dataset>_multi<k>_<order>_s<seed>``."""
    data = chat_tasks.get_dataset(dataset)[0]
    selection = multi_k(data, order, k, per_language, total, seed)
    return _register(f"{dataset}_multi{k}_{_tag(order[:k])}_s{seed}", dataset, selection)


@gin.configurable
def budget_mixture(
    dataset: str = gin.REQUIRED,
    languages: Sequence[str] = gin.REQUIRED,
    total: int | None = None,
    seed: int = 0,
) -> str:
    """Registers :func:`budget` as ``<dataset>_budget<total>_<langs>_s<seed>``."""
    data = chat_tasks.get_dataset(dataset)[0]
    selection = budget(data, languages, total, seed)
    n = sum(len(v) for v in selection.values())
    return _register(f"{dataset}_budget{n}_{_tag(languages)}_s{seed}", dataset, selection)


@gin.configurable
def temperature_mixture(
    dataset: str = gin.REQUIRED, languages: Sequence[str] = gin.REQUIRED, temperature: float = 1.0
) -> str:
    """Registers all data of ``languages`` with rates ``n ** (1 / T)``."""
    data = chat_tasks.get_dataset(dataset)[0]
    selection = uniform(data, languages)
    rates = temperature_rates(selection, temperature)
    name = f"{dataset}_temp{temperature:g}_{_tag(languages)}".replace(".", "p")
    return _register(name, dataset, selection, rates)
