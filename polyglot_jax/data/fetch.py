"""``polyglot-jax data fetch NAME --data_dir=DIR``: download a dataset and write the data layout.

Each dataset is downloaded from the pinned source of :mod:`fetch_sources` through Hugging Face
``datasets``, converted by the project's readers (:mod:`formats`: ids, validation, top-ranked
OASST paths) and written in the layout of :mod:`study_data` (``<dataset>/<split>.<lang>.jsonl``)
or, for the evaluation sets, in the layout the benchmark readers expect. Every file is written
atomically, and a unit of work (one download and the files made from it) whose files all exist,
or whose marker ``<dataset>/.<job>.done`` (the files it wrote, the languages absent from the
download) is there with its files, is skipped, so a killed fetch resumes where it stopped and a
second fetch downloads nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from polyglot_jax import languages as registry
from polyglot_jax.data import fetch_datasets, fetch_sources, study_data
from polyglot_jax.data.fetch_io import Fetcher, Row
from polyglot_jax.errors import ConfigError


def _canonical(code: str) -> str:
    try:
        return registry.get(code).code
    except registry.UnknownLanguageError:
        return code  # reported with the dataset's languages


def check_languages(name: str, asked: Sequence[str] | None, known: Sequence[str]) -> list[str]:
    """``asked`` (default: ``known``), each checked against the dataset's languages."""
    if asked is None:
        return list(known)
    asked = [_canonical(lang) for lang in asked]  # "ES", "spa", "spa_Latn" -> "es"
    unknown = [lang for lang in asked if lang not in known]
    if unknown:
        raise ConfigError(
            f"data fetch {name}: no {', '.join(unknown)} data (it has {', '.join(known)})"
        )
    return list(dict.fromkeys(asked))


def names() -> list[str]:
    """Every name ``data fetch`` knows: the study datasets, then the evaluation sets."""
    return list(fetch_datasets.FETCHERS)


def fetch(
    name: str,
    data_dir: str | os.PathLike,
    languages: Sequence[str] | None = None,
    identifier: object | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
    threshold: float | None = None,
) -> list[Row]:
    """Downloads dataset ``name`` into ``data_dir`` in the project's layout.

    Args:
      name: a study dataset (``guanaco``, ``lima``, ...) or an evaluation set (``xcopa``,
        ``xquad``, ``xnli``, ``xcsqa``).
      data_dir: the data folder (``DATA_DIR``).
      languages: the languages to write (default: all the dataset has).
      identifier: the language identifier for Guanaco (``data tag``'s lingua or fastText;
        the Polyglots release used OpenLID, ``fasttext:lid201-model.bin``).
      cache_dir: the ``datasets`` download cache (default: its own).
      progress: show progress bars.
      threshold: Guanaco's tagging confidence in (0, 1] (None: the release's 0.8); a
        conversation scored below it is undetermined (``und``) and not written.

    Returns:
      One row per file: its path in the data folder, lines, and whether it was written now.

    Raises:
      ConfigError: an unknown name or language.
      MissingFileError, DataError: a source that cannot be downloaded or read.
    """
    if name not in fetch_datasets.FETCHERS:
        raise ConfigError(
            f"data fetch: unknown dataset {name!r}; known: {', '.join(fetch_datasets.FETCHERS)}"
        )
    known = fetch_sources.EVAL_LANGUAGES.get(name) or study_data.get(name).languages
    langs = check_languages(name, languages, known)
    fetcher = Fetcher(data_dir, cache_dir, identifier, threshold, progress)
    fetch_datasets.FETCHERS[name](fetcher, langs)
    return fetcher.rows


def format_rows(rows: Sequence[Row]) -> str:
    """The summary as a markdown table."""
    lines = ["| file | lines | status |", "|---|---|---|"]
    lines += [f"| {r.file} | {r.lines} | {r.status} |" for r in rows]
    return "\n".join(lines)
