"""Language features beyond the registry for the report's correlations, and their scatter plots.

The Polyglots study (Kew et al., 2023) finds that the limiting factor of cross-lingual transfer
is how much of a language the base model saw in pretraining; the report therefore correlates
every per-language score with

- the base model's pretraining share of the language, as ``log10`` of the percentage (shares
  span four orders of magnitude, English alone is ~90%): the shipped table is Llama 2's
  (``data/llama2_language_shares.tsv``, Touvron et al., 2023, Table 10); ``--pretraining_shares``
  passes another model's;
- typological distance to English: URIEL's syntactic distance (``data/uriel_distance_to_
  english.tsv``, cosine distance of lang2vec's ``syntax_knn`` vectors; the file's header says how
  it was made).

Tables are TSV: ``#`` comment lines, a header line naming the columns (``lang`` first), one
language per line. A bad line is a :class:`DataError` naming ``file:line``.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from polyglot_jax import languages, storage
from polyglot_jax.errors import DataError, MissingFileError

DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
LLAMA2_SHARES = DATA_DIR / "llama2_language_shares.tsv"
URIEL_DISTANCES = DATA_DIR / "uriel_distance_to_english.tsv"
SHARE_COLUMN = "share_percent"
DISTANCE_COLUMN = "syntactic"
SHARE_FEATURE = "pretraining share (log10 %)"
DISTANCE_FEATURE = "syntactic distance to English"

Feature = Callable[[str], float | None]


def read_language_table(
    path: str | os.PathLike, column: str, low: float = -math.inf, high: float = math.inf
) -> dict[str, float]:
    """``lang → value`` of one numeric ``column`` of a language TSV.

    Raises:
      MissingFileError: ``path`` does not exist.
      DataError: no header with ``lang`` and ``column``, a line with another number of fields,
        an unknown language code, a language given twice, or a value that is not a number in
        ``[low, high]``; the message names ``file:line``.
    """
    path = storage.as_path(path)  # local or gs://
    if not path.is_file():
        raise MissingFileError(f"language table {path} does not exist")
    header: list[str] | None = None
    values: dict[str, float] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: invalid UTF-8 ({e.reason})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if header is None:
            if fields[0] != "lang" or column not in fields:
                raise DataError(
                    f"{where}: expected a header line of tab-separated column names starting "
                    f"with 'lang' and naming {column!r}, got {line.strip()!r}"
                )
            header = fields
            continue
        if len(fields) != len(header):
            raise DataError(
                f"{where}: {len(fields)} tab-separated fields, the header has {len(header)}"
            )
        try:
            lang = languages.get(fields[0]).code
        except languages.UnknownLanguageError as e:
            raise DataError(f"{where}: {e}") from None
        if lang in values:
            raise DataError(f"{where}: language {lang!r} is given twice")
        raw = fields[header.index(column)]
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            raise DataError(f"{where}: {column} {raw!r} is not a number in [{low:g}, {high:g}]")
        values[lang] = value
    if header is None or not values:
        raise DataError(f"{path}: no rows (expected a header line and one line per language)")
    return values


def language_features(
    pretraining_shares: str | os.PathLike | None = None,
    typological_distances: str | os.PathLike | None = None,
) -> dict[str, Feature]:
    """The pretraining-share and typological-distance features (None: language not in table).

    Args:
      pretraining_shares: TSV with ``lang`` and ``share_percent`` (default: Llama 2's).
      typological_distances: TSV with ``lang`` and ``syntactic`` (default: the URIEL table).
    """
    shares = read_language_table(pretraining_shares or LLAMA2_SHARES, SHARE_COLUMN, 0.0, 100.0)
    distances = read_language_table(typological_distances or URIEL_DISTANCES, DISTANCE_COLUMN)

    def share(lang: str) -> float | None:
        value = shares.get(languages.get(lang).code)
        return None if value is None or value <= 0 else math.log10(value)

    def distance(lang: str) -> float | None:
        return distances.get(languages.get(lang).code)

    return {SHARE_FEATURE: share, DISTANCE_FEATURE: distance}


def scatter_plots(
    table: Mapping[tuple[str, str], Mapping[str, float]],
    metrics: Mapping[str, str],
    features: Mapping[str, Feature],
    out_dir: str | os.PathLike,
) -> list[pathlib.Path]:
    """One PNG per feature: a panel per metric, each (run, language) a point labelled with its
    language, one colour per run.

    Args:
      table: ``(run, lang) → {metric: value}`` (the report's score table).
      metrics: metric → panel title, for the metrics to draw.
      features: feature name → ``lang → value or None``.
      out_dir: where ``scatter_<feature>.png`` go.

    Returns:
      The files written (none for a feature that no scored language has).
    """
    runs = sorted({run for run, _ in table})
    written = []
    for feature, value_of in features.items():
        panels = []
        for metric, title in metrics.items():
            points = [
                (run, lang, x, row[metric])
                for (run, lang), row in sorted(table.items())
                if not math.isnan(row.get(metric, math.nan)) and (x := value_of(lang)) is not None
            ]
            if points:
                panels.append((title, points))
        if not panels:
            continue
        columns = min(3, len(panels))
        rows = math.ceil(len(panels) / columns)
        fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
        for ax, (title, points) in zip(axes.flat, panels, strict=False):
            for index, run in enumerate(runs):
                mine = [p for p in points if p[0] == run]
                if not mine:
                    continue
                color = f"C{index % 10}"
                ax.scatter([p[2] for p in mine], [p[3] for p in mine], color=color, label=run)
                for _, lang, x, y in mine:
                    ax.annotate(lang, (x, y), fontsize=7, xytext=(2, 2), textcoords="offset points")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(feature, fontsize=8)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        path = pathlib.Path(out_dir) / f"scatter_{_slug(feature)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _slug(name: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def source_notes(
    pretraining_shares: str | os.PathLike | None, typological_distances: str | os.PathLike | None
) -> Sequence[str]:
    """Lines for the report naming the tables the two features came from."""
    return [
        f"{SHARE_FEATURE}: {pretraining_shares or LLAMA2_SHARES.name + ' (Llama 2, Table 10)'}",
        f"{DISTANCE_FEATURE}: {typological_distances or URIEL_DISTANCES.name + ' (URIEL)'}",
    ]
