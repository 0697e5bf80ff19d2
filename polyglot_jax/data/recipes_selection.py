"""How a recipe's per-language counts become example ids, on parallel or native data.

Parallel data holds the same examples in every language (translations share their id); native
data holds each language's own examples (ids differ between languages). Recipes state counts
per language; this module turns them into ids:

- Parallel: ids are drawn from the pool of ids present in every one of the recipe's languages,
  in one hash order, and no id goes to two languages (a translated example is not also used in
  English), so the languages see different prompts.
- Native: each language draws from its own ids in hash order. An id that another language of
  the recipe already took is skipped, so no id is used twice here either.

:func:`resolve_parallel` decides the mode: an explicit ``True``/``False``, or automatically
(``None``): the data is parallel when at least one id is present in every language of the recipe.

Also here: the plain selections (:func:`monolingual`, :func:`uniform`, :func:`distinct` languages),
temperature-scaled rates, and :func:`counts` of a registered mixture.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

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


def language_ids(dataset: chat_tasks.ChatDataset, lang: str, split: str) -> list[str]:
    """The ids of one language's examples in ``split``, in file order.

    Raises:
      RecipeError: the dataset has no such (split, language); the message lists what it has.
    """
    if (split, lang) not in dataset.files:
        have = sorted(lang for s, lang in dataset.files if s == split)
        raise RecipeError(
            f"dataset {dataset.name!r} has no {split!r} data in {lang!r} (it has {', '.join(have)})"
        )
    return [r["id"] for r in dataset.records(split, lang)]


def even_shares(total: int, n: int) -> list[int]:
    """``total`` split over ``n`` parts: ``total // n`` each, the first ``total % n`` one more."""
    return [total // n + (i < total % n) for i in range(n)]


def parallel_pool(
    dataset: chat_tasks.ChatDataset, langs: Sequence[str], split: str, seed: int
) -> list[str]:
    """Ids present in every language (translations of the same example), in hash order."""
    common = set(language_ids(dataset, langs[0], split))
    for lang in langs[1:]:
        common &= set(language_ids(dataset, lang, split))
    return hash_order(sorted(common), seed)


def resolve_parallel(
    dataset: chat_tasks.ChatDataset, langs: Sequence[str], split: str, parallel: bool | None
) -> bool:
    """Whether a recipe over ``langs`` treats the data as parallel.

    Args:
      dataset: the dataset the recipe draws from.
      langs: the recipe's languages (base first).
      split: the split the recipe draws from.
      parallel: ``True`` or ``False`` to force a mode; ``None`` decides from the ids: parallel
        when at least one id is present in every one of ``langs``. A one-language recipe (both
        modes select the same ids) is parallel when one of its ids is in another language of
        the split, so its mixture is named like the recipe's other sizes.

    Returns:
      True for parallel, False for native data.
    """
    for lang in langs:
        language_ids(dataset, lang, split)  # a missing language is named before anything else
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise RecipeError(f"parallel must be None, True or False, got {parallel!r}")
        return parallel
    if len(langs) == 1:
        own = set(language_ids(dataset, langs[0], split))
        others = sorted({lang for s, lang in dataset.files if s == split} - {langs[0]})
        return any(own & set(language_ids(dataset, lang, split)) for lang in others)
    return bool(parallel_pool(dataset, langs, split, seed=0))


def draw_native(
    recipe: str,
    dataset: chat_tasks.ChatDataset,
    counts: Mapping[str, int],
    seed: int,
    split: str,
) -> Selection:
    """``counts[lang]`` ids of each language's own examples, no id taken twice.

    Languages draw in the order of ``counts``; each takes the first ids of its own data in hash
    order that no earlier language took.

    Raises:
      RecipeError: a language has fewer examples than asked; the one line names the recipe, the
        language, how many it has and how many were asked.
    """
    used: set[str] = set()
    selection: Selection = {}
    for lang, count in counts.items():
        if count < 0:
            raise RecipeError(f"{recipe}: {count} examples asked of {lang}")
        own = language_ids(dataset, lang, split)
        free = [i for i in hash_order(own, seed) if i not in used]
        if count > len(free):
            has = f"{len(own)} examples" + (
                f" ({len(free)} not taken by another language)" if len(free) < len(own) else ""
            )
            raise RecipeError(
                f"{recipe}: {lang} has {has} in {dataset.name!r} ({split}), {count} asked"
            )
        selection[lang] = free[:count]
        used.update(selection[lang])
    return selection


def distinct(recipe: str, langs: Sequence[str]) -> tuple[str, ...]:
    """``langs`` validated (:mod:`polyglot_jax.languages`), each at most once."""
    langs = registry.validate(langs)
    repeated = sorted({lang for lang in langs if langs.count(lang) > 1})
    if repeated:
        raise RecipeError(f"{recipe}: language(s) {', '.join(repeated)} listed more than once")
    return langs


def monolingual(
    dataset: chat_tasks.ChatDataset,
    lang: str,
    count: int | None = None,
    seed: int = 0,
    split: str = "train",
) -> Selection:
    """``count`` examples (default all) of one language."""
    ids = hash_order(language_ids(dataset, registry.get(lang).code, split), seed)
    count = len(ids) if count is None else count
    if count > len(ids):
        raise RecipeError(f"{dataset.name}: asked for {count} {lang} examples, only {len(ids)}")
    return {lang: ids[:count]}


def uniform(
    dataset: chat_tasks.ChatDataset, languages: Sequence[str], split: str = "train"
) -> Selection:
    """Every example of every language."""
    return {lang: language_ids(dataset, lang, split) for lang in registry.validate(languages)}


def temperature_rates(selection: Mapping[str, Sequence[str]], temperature: float) -> dict:
    """Mixture rates ``n_lang ** (1 / T)``: T = 1 follows the counts, large T tends to uniform."""
    if temperature <= 0:
        raise RecipeError(f"temperature must be positive, got {temperature}")
    return {lang: len(ids) ** (1.0 / temperature) for lang, ids in selection.items()}


def counts(mixture_or_task: str, split: str = "train") -> dict[str, int]:
    """Examples per language in one pass over a registered recipe mixture or task."""
    task_or_mixture = seqio.get_mixture_or_task(mixture_or_task)
    tasks = getattr(task_or_mixture, "tasks", [task_or_mixture])
    out: dict[str, int] = {}
    for task in tasks:
        for record in chat_tasks.task_records(task, split):
            out[record["lang"]] = out.get(record["lang"], 0) + 1
    return out
