"""Recipes: exact per-language example selections registered as SeqIO mixtures.

A recipe decides which example ids each language contributes ("replace 22 English examples by
their translations, two per language"). Selection orders ids by a hash of ``(seed, id)``, so it
is the same on every host and every run, and independent of file order. Each selected
(language, ids) pair becomes a SeqIO task ``<mixture>.<lang>``; the mixture's rate for it is its
example count (or a temperature-scaled count), so one pass sees exactly the stated counts.

The studies' recipes:

- :func:`monolingual`: one language.
- :func:`pinch`: a few base examples replaced by examples spread evenly over languages
  ("a pinch of multilinguality": 40 of an English set over 11 languages).
- :func:`multi_k`: ``total - per_language * (k - 1)`` base examples plus ``per_language`` in each
  of the next ``k - 1`` languages of an order ("how much multilinguality": es ru de zh fr).
- :func:`budget`: every language downsampled so the mixture has one language's size
  ("monolingual or multilingual").
- :func:`uniform` and :func:`temperature`: all data with equal or ``n ** (1 / T)`` rates.

Pinch, multi-k and budget work on parallel data (the same ids in every language: translations)
and on native data (each language's own examples); ``parallel=None`` decides from the ids, see
:mod:`polyglot_jax.data.recipes_selection`. Either way no id is used by two languages.

The ``*_mixture`` functions register a recipe over a registered dataset and return the
mixture's name; :func:`register` calls them by recipe name, and gin files call them as
``MIXTURE_OR_TASK_NAME = @pinch_mixture()``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gin
import seqio

from polyglot_jax.data import chat_tasks, templates
from polyglot_jax.data.recipes_selection import (
    RecipeError,
    Selection,
    distinct,
    draw_native,
    even_shares,
    language_ids,
    monolingual,
    parallel_pool,
    resolve_parallel,
    temperature_rates,
    uniform,
)
from polyglot_jax.data.recipes_selection import counts as counts  # re-exported


def pinch(
    dataset: chat_tasks.ChatDataset,
    base: str,
    languages: Sequence[str],
    n_multilingual: int | None = None,
    total: int | None = None,
    seed: int = 0,
    split: str = "train",
    fraction: float | None = None,
    parallel: bool | None = None,
) -> Selection:
    """Replaces ``n_multilingual`` base examples by examples spread evenly over languages.

    ``languages[i]`` gets ``n // L + (i < n % L)`` examples for ``L`` languages: counts differ
    by at most one and the earlier languages of the list get the extra ones (40 over 11: the
    first 7 get 4, the last 4 get 3). The base language keeps ``total - n_multilingual``, so the
    total stays ``total``. ``fraction`` gives ``n_multilingual`` as a share of the total instead.

    Parallel data: the first ``n_multilingual`` ids in hash order go round-robin to
    ``languages`` as translations and the base keeps the rest, so no id is used twice; ``total``
    defaults to all parallel ids. Native data: every language draws its count from its own
    examples; ``total`` defaults to all base examples.

    Args:
      dataset: the data to draw from.
      base: the base language (``"en"``).
      languages: the added languages, in the order that receives the extra examples.
      n_multilingual: how many base examples to replace.
      total: the size of the mixture (base set before replacement).
      seed: selection seed.
      split: the split to draw from.
      fraction: ``n_multilingual`` as a share of ``total`` (exclusive with it).
      parallel: ``True``/``False`` to force parallel or native data, ``None`` to detect it.

    Returns:
      Language → selected ids, base first.
    """
    if base in languages:
        raise RecipeError(f"pinch: base language {base!r} is also in the added languages")
    langs = distinct("pinch", [base, *languages])
    if (n_multilingual is None) == (fraction is None):
        raise RecipeError("pinch: give exactly one of n_multilingual and fraction")
    if resolve_parallel(dataset, langs, split, parallel):
        ids = parallel_pool(dataset, langs, split, seed)
        total = len(ids) if total is None else total
        n = round(fraction * total) if n_multilingual is None else n_multilingual
        if total > len(ids) or n > total:
            raise RecipeError(
                f"pinch: {total} examples with {n} multilingual asked, "
                f"{len(ids)} parallel ids exist in {dataset.name!r}"
            )
        selection: Selection = {base: ids[n:total]}
        for i, lang in enumerate(languages):
            selection[lang] = ids[i : n : len(languages)]
        return selection
    total = len(language_ids(dataset, base, split)) if total is None else total
    n = round(fraction * total) if n_multilingual is None else n_multilingual
    if n > total:
        raise RecipeError(f"pinch: {n} multilingual examples asked of a total of {total}")
    shares = even_shares(n, len(languages))
    counts_ = {base: total - n, **dict(zip(langs[1:], shares, strict=True))}
    return draw_native("pinch", dataset, counts_, seed, split)


def multi_k(
    dataset: chat_tasks.ChatDataset,
    order: Sequence[str],
    k: int,
    per_language: int,
    total: int,
    seed: int = 0,
    split: str = "train",
    parallel: bool | None = None,
) -> Selection:
    """The first language of ``order`` plus ``per_language`` examples of each of the next k - 1.

    The base gets ``total - per_language * (k - 1)`` examples, so every k has the same total.
    Parallel data: ids come from the examples parallel across the first k languages, none used
    twice. Native data: each language draws from its own examples, so the base's selection for
    a larger k is a prefix of its selection for a smaller one.

    Args:
      dataset: the data to draw from.
      order: base language first, then the languages in the order they are added.
      k: how many languages of ``order`` the mixture has (1 = base only).
      per_language: examples of each added language.
      total: examples in the mixture.
      seed: selection seed.
      split: the split to draw from.
      parallel: ``True``/``False`` to force parallel or native data, ``None`` to detect it.

    Returns:
      Language → selected ids, base first.
    """
    langs = distinct("multi_k", order)
    if not 1 <= k <= len(langs):
        raise RecipeError(f"multi_k: k={k} but the order has {len(langs)} languages")
    added = per_language * (k - 1)
    if added > total:
        raise RecipeError(f"multi_k: {added} added examples exceed the total {total}")
    if not resolve_parallel(dataset, langs[:k], split, parallel):
        counts_ = {langs[0]: total - added, **dict.fromkeys(langs[1:k], per_language)}
        return draw_native("multi_k", dataset, counts_, seed, split)
    ids = parallel_pool(dataset, langs[:k], split, seed)
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
    parallel: bool | None = None,
) -> Selection:
    """Every language downsampled so the whole mixture has ``total`` examples.

    ``total`` defaults to the size of the smallest language's data ("one language's budget").
    Each language gets ``total // len(languages)`` (the first ``total % len`` get one more).
    Parallel data: consecutive runs of the parallel ids in hash order, so no prompt is in two
    languages. Native data: each language's share of its own examples.

    Args:
      dataset: the data to draw from.
      languages: the mixture's languages, in the order that receives the extra examples.
      total: examples in the mixture (default: the smallest language's size).
      seed: selection seed.
      split: the split to draw from.
      parallel: ``True``/``False`` to force parallel or native data, ``None`` to detect it.

    Returns:
      Language → selected ids.
    """
    langs = distinct("budget", languages)
    sizes = {lang: len(language_ids(dataset, lang, split)) for lang in langs}
    total = min(sizes.values()) if total is None else total
    shares = even_shares(total, len(langs))
    if not resolve_parallel(dataset, langs, split, parallel):
        return draw_native("budget", dataset, dict(zip(langs, shares, strict=True)), seed, split)
    ids = parallel_pool(dataset, langs, split, seed)
    if total > len(ids):
        raise RecipeError(
            f"budget: asked for {total} examples, {len(ids)} parallel ids exist in "
            f"{dataset.name!r} for {', '.join(langs)}"
        )
    selection: Selection = {}
    start = 0
    for lang, share in zip(langs, shares, strict=True):
        selection[lang] = ids[start : start + share]
        start += share
    return selection


def register_mixture(
    name: str,
    dataset: chat_tasks.ChatDataset,
    selection: Mapping[str, Sequence[str]],
    vocabulary: seqio.Vocabulary,
    split: str = "train",
    eval_split: str | None = "validation",
    rates: Mapping[str, float] | None = None,
    chat_format: templates.ChatFormat | None = None,
) -> seqio.Mixture:
    """Registers one task per selected language and a mixture weighted by the counts.

    The tasks ``<name>.<lang>`` hold exactly the selected ids in the training split and, when
    the dataset has it, the whole evaluation split of that language. ``rates`` overrides the
    per-language rates (default: the counts); ``chat_format`` is the tasks' (None: the run's).
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
        task = chat_tasks.add_chat_task(
            f"{name}.{lang}", records_fn, splits, vocabulary, chat_format
        )
        tasks.append((task.name, float(rates[lang]) if rates else len(ids)))
    seqio.MixtureRegistry.remove(name)
    return seqio.MixtureRegistry.add(name, tasks)


# --- recipes by name over a registered dataset: plain functions, also what gin files call. ---


def _register(
    name: str,
    dataset: str,
    selection: Selection,
    rates: dict | None = None,
    chat_format: templates.ChatFormat | None = None,
) -> str:
    data, vocabulary = chat_tasks.get_dataset(dataset)
    register_mixture(name, data, selection, vocabulary, rates=rates, chat_format=chat_format)
    return name


def _name(dataset: str, recipe: str, langs: Sequence[str], seed: int, parallel: bool) -> str:
    """``<dataset>_<recipe>_<langs>_s<seed>``, with ``_native`` for native data."""
    return f"{dataset}_{recipe}_{'_'.join(langs)}_s{seed}" + ("" if parallel else "_native")


def monolingual_mixture(
    dataset: str,
    *,
    lang: str = "en",
    count: int | None = None,
    seed: int = 0,
    chat_format: templates.ChatFormat | None = None,
) -> str:
    """Registers :func:`monolingual` as ``<dataset>_mono_<lang>[_<count>]_s<seed>``."""
    data = chat_tasks.get_dataset(dataset)[0]
    name = f"{dataset}_mono_{lang}{'' if count is None else f'_{count}'}_s{seed}"
    return _register(name, dataset, monolingual(data, lang, count, seed), None, chat_format)


def pinch_mixture(
    dataset: str,
    *,
    languages: Sequence[str],
    base: str = "en",
    n_multilingual: int | None = None,
    fraction: float | None = None,
    total: int | None = None,
    seed: int = 0,
    parallel: bool | None = None,
    chat_format: templates.ChatFormat | None = None,
) -> str:
    """Registers :func:`pinch` as ``<dataset>_pinch<n>_<langs>_s<seed>[_native]``."""
    data = chat_tasks.get_dataset(dataset)[0]
    selection = pinch(
        data, base, languages, n_multilingual, total, seed, fraction=fraction, parallel=parallel
    )
    n = sum(len(v) for k, v in selection.items() if k != base)
    mode = resolve_parallel(data, [base, *languages], "train", parallel)
    name = _name(dataset, f"pinch{n}", languages, seed, mode)
    return _register(name, dataset, selection, None, chat_format)


def multi_k_mixture(
    dataset: str,
    *,
    order: Sequence[str],
    k: int,
    per_language: int = 200,
    total: int = 3200,
    seed: int = 0,
    parallel: bool | None = None,
    chat_format: templates.ChatFormat | None = None,
) -> str:
    """Registers :func:`multi_k` as ``<dataset>_multi<k>_<order>_s<seed>[_native]``."""
    data = chat_tasks.get_dataset(dataset)[0]
    selection = multi_k(data, order, k, per_language, total, seed, parallel=parallel)
    mode = resolve_parallel(data, order[:k], "train", parallel)
    name = _name(dataset, f"multi{k}", order[:k], seed, mode)
    return _register(name, dataset, selection, None, chat_format)


def budget_mixture(
    dataset: str,
    *,
    languages: Sequence[str],
    total: int | None = None,
    seed: int = 0,
    parallel: bool | None = None,
    chat_format: templates.ChatFormat | None = None,
) -> str:
    """Registers :func:`budget` as ``<dataset>_budget<total>_<langs>_s<seed>[_native]``."""
    data = chat_tasks.get_dataset(dataset)[0]
    selection = budget(data, languages, total, seed, parallel=parallel)
    n = sum(len(v) for v in selection.values())
    mode = resolve_parallel(data, languages, "train", parallel)
    name = _name(dataset, f"budget{n}", languages, seed, mode)
    return _register(name, dataset, selection, None, chat_format)


def temperature_mixture(
    dataset: str,
    *,
    languages: Sequence[str],
    temperature: float = 1.0,
    chat_format: templates.ChatFormat | None = None,
) -> str:
    """Registers all data of ``languages`` with rates ``n ** (1 / T)``."""
    data = chat_tasks.get_dataset(dataset)[0]
    selection = uniform(data, languages)
    rates = temperature_rates(selection, temperature)
    name = f"{dataset}_temp{temperature:g}_{'_'.join(languages)}".replace(".", "p")
    return _register(name, dataset, selection, rates, chat_format)


RECIPES: dict[str, Callable[..., str]] = {
    "monolingual": monolingual_mixture,
    "pinch": pinch_mixture,
    "multi_k": multi_k_mixture,
    "budget": budget_mixture,
    "temperature": temperature_mixture,
}
for _fn in RECIPES.values():  # gin files: MIXTURE_OR_TASK_NAME = @pinch_mixture()
    gin.external_configurable(_fn)


def register(recipe: str, dataset: str, **settings: Any) -> str:
    """Registers a recipe over a registered dataset as a SeqIO mixture; returns its name.

    ``register("pinch", "lima_oasst", languages=["ar", "zh"], n_multilingual=40)`` registers
    what ``mix_pinch.gin`` does with those macros, without gin.

    Args:
      recipe: a name of :data:`RECIPES` (``monolingual``, ``pinch``, ``multi_k``, ``budget``,
        ``temperature``).
      dataset: a dataset registered by :func:`chat_tasks.register_dataset` (``demo``, a study
        dataset).
      **settings: the keyword arguments of the recipe's ``*_mixture`` function, ``chat_format``
        (None: the run's) among them.

    Raises:
      RecipeError: an unknown recipe or setting, or a selection the data cannot satisfy.
    """
    if recipe not in RECIPES:
        raise RecipeError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    try:
        inspect.signature(RECIPES[recipe]).bind(dataset, **settings)
    except TypeError as e:
        raise RecipeError(f"recipe {recipe!r}: {e}") from None
    return RECIPES[recipe](dataset, **settings)
