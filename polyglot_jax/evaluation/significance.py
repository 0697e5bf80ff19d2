"""Paired significance of the difference between two runs on the same prompts.

Two runs answered the same prompts (and, with seeds, each seed of one run is paired with the
same seed of the other), so their per-item scores pair up: the unit of a test is one
``(pair, language, prompt id, sample)``. Per language and pooled over a language group:

- the mean paired difference with a bootstrap 95% interval (:func:`bootstrap_interval`,
  percentile, :func:`scipy.stats.bootstrap`);
- a two-sided paired permutation test of the mean difference (:func:`paired_permutation`:
  the signs of the differences flipped at random, exact by enumeration for up to
  :data:`EXACT_UP_TO` pairs, :func:`scipy.stats.permutation_test`);
- the p-values of the languages corrected for testing many languages, by Holm's step-down
  method (family-wise error, :func:`holm`) and by Benjamini and Hochberg (false discovery rate,
  :func:`benjamini_hochberg`, :func:`scipy.stats.false_discovery_control`).

A pairwise judge already compares a run with its baseline: its score (win 1, tie 0.5, loss 0)
is tested against 0.5 (:data:`NULL_VALUE`), the baseline's side.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
RESAMPLES = 9999
EXACT_UP_TO = 16  # up to 2**16 sign patterns: enumerated, not sampled
NULL_VALUE = {"pairwise_score": 0.5}  # a score that is already a comparison with the reference

Unit = tuple[str, str, str]  # (language, prompt id, sample)


def paired_permutation(
    differences: Sequence[float], resamples: int = RESAMPLES, seed: int = 0
) -> float:
    """Two-sided p-value of a paired permutation (sign-flip) test that the mean difference is 0.

    Every sign pattern is enumerated for up to :data:`EXACT_UP_TO` differences (an exact p);
    beyond, ``resamples`` random patterns are drawn. NaN for no differences; 1.0 for one, or
    when every difference is 0.
    """
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return math.nan
    if not np.any(d) or d.size == 1:  # one pair: both signs are as far from 0
        return 1.0
    result = stats.permutation_test(
        (d,),
        np.mean,
        permutation_type="samples",
        n_resamples=2**d.size if d.size <= EXACT_UP_TO else resamples,
        alternative="two-sided",
        vectorized=True,
        random_state=seed,
    )
    return float(min(1.0, result.pvalue))


def bootstrap_interval(
    differences: Sequence[float],
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``differences`` (NaN for none; the value
    itself when all are equal)."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return math.nan, math.nan
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    result = stats.bootstrap(
        (d,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        vectorized=True,
        random_state=seed,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm, 1979): the i-th smallest of ``m`` times
    ``m - i + 1``, made non-decreasing, capped at 1. NaN stays NaN and is not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    known = np.flatnonzero(~np.isnan(p))
    order = known[np.argsort(p[known], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out.tolist()


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaN stays NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    known = ~np.isnan(p)
    if known.any():
        out[known] = stats.false_discovery_control(p[known], method="bh")
    return out.tolist()


def item_values(rows: Iterable[Mapping], metric: str) -> dict[str, dict[Unit, float]]:
    """``run → {(lang, id, sample): value}`` of ``metric`` in judgment rows that name their
    prompt (``id``; language ID rows do, LLM-judge rows since
    :func:`~polyglot_jax.evaluation.report.load_judgments` reads it from ``item_id``)."""
    out: dict[str, dict[Unit, float]] = collections.defaultdict(dict)
    for row in rows:
        value = row.get(metric)
        if value is None or row.get("id") is None:
            continue
        unit = (str(row["lang"]), str(row["id"]), str(row.get("sample") or 0))
        out[row["run"]][unit] = float(value)
    return dict(out)


def differences(
    values: Mapping[str, Mapping[Unit, float]],
    pairs: Sequence[tuple[str, str | None]],
    metric: str,
) -> dict[str, list[float]]:
    """``lang → paired differences`` over ``pairs`` of ``(run, reference run)`` (one pair per
    seed); a ``None`` reference compares with :data:`NULL_VALUE` of the metric."""
    out: dict[str, list[float]] = collections.defaultdict(list)
    for run, reference in pairs:
        mine = values.get(run, {})
        theirs = values.get(reference, {}) if reference is not None else None
        for unit, value in sorted(mine.items()):
            if theirs is None:
                out[unit[0]].append(value - NULL_VALUE.get(metric, 0.0))
            elif unit in theirs:
                out[unit[0]].append(value - theirs[unit])
    return dict(out)


def _row(scope: str, diffs: Sequence[float], scale: float, seed: int) -> dict:
    low, high = bootstrap_interval(diffs, seed=seed)
    return {
        "scope": scope,
        "n": len(diffs),
        "difference": float(np.mean(diffs)) * scale if len(diffs) else math.nan,
        "low": low * scale,
        "high": high * scale,
        "p": paired_permutation(diffs, seed=seed),
    }


def compare(
    values: Mapping[str, Mapping[Unit, float]],
    pairs: Sequence[tuple[str, str | None]],
    metric: str,
    groups: Mapping[str, Sequence[str]] | None = None,
    scale: float = 1.0,
    seed: int = 0,
) -> list[dict]:
    """The paired tests of one run (its seeds) against its reference, one row per language,
    then one per language group (its languages' units pooled).

    Each row: ``scope`` (a language, or ``group: <name>``), ``n`` (paired units),
    ``difference`` (mean, times ``scale``), its bootstrap interval ``low``/``high``, the
    permutation ``p``, and ``p_holm``/``p_bh`` corrected over the languages (the groups are a
    family of their own); ``holds`` when ``p_holm`` is under :data:`ALPHA` and ``holds_bh``
    when ``p_bh`` is.
    """
    by_lang = differences(values, pairs, metric)
    langs = [lang for lang in sorted(by_lang) if by_lang[lang]]
    rows = [_row(lang, by_lang[lang], scale, seed) for lang in langs]
    family = [rows]
    pooled = []
    for name, members in (groups or {}).items():
        diffs = [d for lang in members for d in by_lang.get(lang, [])]
        if diffs:
            pooled.append(_row(f"group: {name}", diffs, scale, seed))
    family.append(pooled)
    for members in family:
        p = [r["p"] for r in members]
        for row, h, b in zip(members, holm(p), benjamini_hochberg(p), strict=True):
            row.update(p_holm=h, p_bh=b, holds=h < ALPHA, holds_bh=b < ALPHA)
    return rows + pooled
