"""Tuning language vs. evaluation language: the transfer matrix of a study's monolingual runs.

Pinch (Shaham et al., 2024, §3.1) tunes one run per language (``mono_<lang>``) and evaluates
each on every language: a matrix of tuning language x evaluation language. Per series of
monolingual runs (conditions with an ``own_language``; in a report of several models, per model)
and metric, :func:`transfer` gives the mean score on the diagonal (the run evaluated on its own
tuning language) and off it and, with the base model's pretraining shares, the Pearson
correlation over evaluation languages of their mean off-diagonal score with ``log10`` of their
share (the report's pretraining-share feature, :mod:`~polyglot_jax.evaluation.analysis`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from polyglot_jax.evaluation import report
from polyglot_jax.studies.grid import Condition

Table = dict[tuple[str, str], dict[str, float]]
Feature = Callable[[str], float | None]
MIN_LANGUAGES = 3  # evaluation languages a correlation needs


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One series' transfer summary for one metric.

    Attributes:
      series: the monolingual runs' series.
      metric: the metric (a key of :data:`report.METRICS`).
      runs: monolingual runs with scores.
      diagonal: mean score of the runs on their own tuning language.
      off_diagonal: mean score of the runs on the other evaluation languages.
      share_r: Pearson r of each evaluation language's mean off-diagonal score with its
        pretraining share (NaN: no shares, or too few languages or no spread).
      share_n: the languages that correlation covers.
    """

    series: str
    metric: str
    runs: int
    diagonal: float
    off_diagonal: float
    share_r: float = math.nan
    share_n: int = 0


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def matrix(conditions: Sequence[Condition], table: Table, metric: str) -> dict:
    """``(tuning language, evaluation language) → score`` of the monolingual ``conditions``."""
    return {
        (c.own_language, lang): row[metric]
        for c in conditions
        if c.own_language
        for (run, lang), row in table.items()
        if run == c.name and not math.isnan(row.get(metric, math.nan))
    }


def transfer(
    conditions: Sequence[Condition], table: Table, metric: str, share: Feature | None = None
) -> Transfer | None:
    """The transfer summary of one series' monolingual ``conditions`` (None: no scores)."""
    cells = matrix(conditions, table, metric)
    if not cells:
        return None
    diagonal = [v for (tuned, lang), v in cells.items() if tuned == lang]
    off = [v for (tuned, lang), v in cells.items() if tuned != lang]
    result = Transfer(
        conditions[0].series,
        metric,
        len({tuned for tuned, _ in cells}),
        _mean(diagonal),
        _mean(off),
    )
    if share is None:
        return result
    by_language: dict[str, list[float]] = {}
    for (tuned, lang), value in cells.items():
        if tuned != lang:
            by_language.setdefault(lang, []).append(value)
    known = {lang: x for lang in sorted(by_language) if (x := share(lang)) is not None}
    xs = np.array(list(known.values()))
    ys = np.array([_mean(by_language[lang]) for lang in known])
    if len(known) < MIN_LANGUAGES or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return result
    r = float(stats.pearsonr(xs, ys).statistic)
    return dataclasses.replace(result, share_r=r, share_n=len(known))


def summaries(
    conditions: Sequence[Condition],
    table: Table,
    metrics: Sequence[str],
    share: Feature | None = None,
) -> list[Transfer]:
    """:func:`transfer` per series of monolingual runs and metric."""
    series: dict[str, list[Condition]] = {}
    for c in conditions:
        if c.own_language:
            series.setdefault(c.series, []).append(c)
    found = (transfer(runs, table, m, share) for runs in series.values() for m in metrics)
    return [t for t in found if t is not None]


def lines(
    conditions: Sequence[Condition],
    table: Table,
    metrics: Sequence[str],
    share: Feature | None = None,
    shares_source: str | None = None,
) -> list[str]:
    """Markdown lines: a table of :func:`summaries`; none when there are no monolingual runs."""
    found = summaries(conditions, table, metrics, share)
    if not found:
        return []
    out = ["## Tuning language vs. evaluation language", ""]
    out.append(
        "Monolingual runs x evaluation languages: the mean score where the tuning language is "
        "the evaluation language (diagonal) and where it is not (off-diagonal)."
    )
    if share is not None:
        out[-1] += (
            " r: Pearson correlation over evaluation languages of their mean off-diagonal score "
            f"with log10 of their pretraining share ({shares_source})."
        )
    header = "| series | metric | runs | diagonal | off-diagonal |"
    out += ["", header + (" r (languages) |" if share else "")]
    out.append("|---" * (6 if share else 5) + "|")
    for t in found:
        row = f"| {t.series} | {report.METRICS[t.metric][0]} | {t.runs} | "
        row += f"{t.diagonal:.2f} | {t.off_diagonal:.2f} |"
        if share is not None:
            row += " - |" if t.share_n == 0 else f" {t.share_r:.2f} ({t.share_n}) |"
        out.append(row)
    return out
