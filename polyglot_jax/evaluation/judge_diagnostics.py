"""How far the LLM judge can be trusted, per language and per script.

- Pairwise: the judge is asked in both orders (the model's answer first as A, then second as
  B; :class:`~polyglot_jax.evaluation.judges.protocols.Pairwise`), and each judged row records
  both verdicts (``verdicts``, e.g. ``AB``). The *flip rate* is the share of items whose verdict
  does not survive the swap (the same answer wins in both orders, ``AB`` or ``BA``, or both are
  ties, ``CC``; anything else flips); the *first-position share* is the share of decisive
  verdicts (A or B, over both orders) that picked the answer shown first. An unbiased judge
  flips rarely and picks the first position half the time.
- Single-answer and facet scores: Spearman's rank correlation of the score with the answer's
  length in tokens and in characters (:mod:`~polyglot_jax.evaluation.surface`), over the
  items of every run; a strong positive one is a judge that rewards length. A pairwise
  judge's win score is correlated with the judged (not the baseline's) answer's length too.
- English gap: where the prompt set is parallel (the same prompt id in every language, as
  OASST's and AlpacaEval's translations are), each language's score is paired with the English
  score of the same run, prompt and sample; the mean gap (English minus the language) and a
  paired permutation p-value. The gap mixes the model's weaker answers in the language with
  the judge's preference for English: compare it across runs (a judge-only gap stays when the
  model improves).

Rows are grouped by evaluation language, then by the languages' script (the registry's,
:func:`polyglot_jax.languages.get`).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from polyglot_jax import languages
from polyglot_jax.evaluation import significance

CONSISTENT = ("AB", "BA", "CC")
SCORED = ("single_score", "mtbench_score", "facets_score", "pairwise_score")
MIN_ITEMS = 3


def script_of(lang: str) -> str:
    """The script of ``lang`` in the registry (``unknown`` when it has none)."""
    try:
        return languages.get(lang).script or "unknown"
    except languages.UnknownLanguageError:
        return "unknown"


def _scopes(rows: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    """``scope → rows``: each language, then each script (``script: Latin``)."""
    out: dict[str, list[Mapping]] = collections.defaultdict(list)
    for row in sorted(rows, key=lambda r: r["lang"]):
        out[row["lang"]].append(row)
    for row in sorted(rows, key=lambda r: script_of(r["lang"])):
        out[f"script: {script_of(row['lang'])}"].append(row)
    return dict(out)


def position_rows(judgments: Iterable[Mapping]) -> list[dict]:
    """Per language and script: ``items`` (pairwise rows with both verdicts), ``flip_rate``
    and ``first_share`` (NaN without a decisive verdict), in percent."""
    rows = [
        j
        for j in judgments
        if isinstance(j.get("verdicts"), str) and len(j["verdicts"]) == 2 and "failed" not in j
    ]
    out = []
    for scope, items in _scopes(rows).items():
        verdicts = [j["verdicts"] for j in items]
        flips = sum(v not in CONSISTENT for v in verdicts)
        decisive = [c for v in verdicts for c in v if c in "AB"]
        first = sum(c == "A" for c in decisive)
        out.append(
            {
                "scope": scope,
                "items": len(items),
                "flip_rate": 100.0 * flips / len(items),
                "first_share": 100.0 * first / len(decisive) if decisive else math.nan,
            }
        )
    return out


def _spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    if len(x) < MIN_ITEMS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def length_rows(judgments: Iterable[Mapping], answers: Iterable[Mapping]) -> list[dict]:
    """Per judge score, language and script: Spearman's rho (and p) of the score with the
    answer's length in tokens (``tokens``, ``tokens_p``) and characters (``chars``,
    ``chars_p``) over ``items`` answers; NaN under :data:`MIN_ITEMS` items or a constant side.

    ``answers`` are surface rows (``run``, ``lang``, ``id``, ``surface_tokens``,
    ``surface_chars``), matched to the first sample's judgment of the same prompt.
    """
    lengths = {}
    for a in answers:
        lengths.setdefault((a["run"], a["lang"], str(a["id"])), a)
    joined: dict[str, list[dict]] = collections.defaultdict(list)
    for j in judgments:
        if j.get("id") is None or j.get("sample", 0):
            continue
        answer = lengths.get((j["run"], j["lang"], str(j["id"])))
        for metric in SCORED:
            if answer is not None and j.get(metric) is not None:
                joined[metric].append({**answer, "score": float(j[metric])})
    out = []
    for metric, rows in joined.items():
        for scope, items in _scopes(rows).items():
            row: dict = {"metric": metric, "scope": scope, "items": len(items)}
            for name, key in (("tokens", "surface_tokens"), ("chars", "surface_chars")):
                pairs = [(i[key], i["score"]) for i in items if i.get(key) is not None]
                x, y = ([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else ([], [])
                row[name], row[f"{name}_p"] = _spearman(x, y)
            out.append(row)
    return out


def english_gap_rows(judgments: Iterable[Mapping]) -> list[dict]:
    """Per judge score and non-English language: ``items`` (prompts judged in English and in
    the language, same run and sample), ``english`` and ``language`` (their mean scores),
    ``gap`` (English minus the language) and ``p`` (paired permutation test of the gap),
    then ``all others`` pooled. Empty when no prompt id occurs in English and another
    language (a prompt set that is not parallel)."""
    scores: dict[str, dict[tuple, float]] = collections.defaultdict(dict)
    for j in judgments:
        if j.get("id") is None or "failed" in j:
            continue
        for metric in SCORED:
            if j.get(metric) is not None:
                key = (j["lang"], j["run"], str(j["id"]), j.get("sample", 0))
                scores[metric][key] = float(j[metric])
    out = []
    for metric, by_key in scores.items():
        pairs: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        for (lang, run, item, sample), value in sorted(by_key.items()):
            english = by_key.get(("en", run, item, sample))
            if lang != "en" and english is not None:
                pairs[lang].append((english, value))
        if not pairs:
            continue
        pairs["all others"] = [p for lang in sorted(pairs) for p in pairs[lang]]
        for scope, items in pairs.items():
            en, other = np.array(items).T
            out.append(
                {
                    "metric": metric,
                    "scope": scope,
                    "items": len(items),
                    "english": float(en.mean()),
                    "language": float(other.mean()),
                    "gap": float((en - other).mean()),
                    "p": significance.paired_permutation(en - other),
                }
            )
    return out


def _number(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2g}"


def lines(judgments: Sequence[Mapping], answers: Sequence[Mapping]) -> list[str]:
    """The judge diagnostics as markdown: the pairwise position table and the length
    correlations (each only when the judgments have them); empty without an LLM judge."""
    out = []
    positions = position_rows(judgments)
    if positions:
        out += [
            "## Judge diagnostics: answer order (pairwise)",
            "",
            "Both orders are judged. Flip: the verdict does not survive swapping the answers; "
            "first position: the share of decisive verdicts that picked the answer shown first "
            "(50% is unbiased).",
            "",
            "| language / script | items | flip rate (%) | first-position wins (%) |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {r['scope']} | {r['items']} | {r['flip_rate']:.1f} | "
            f"{_number(r['first_share'], 1)} |"
            for r in positions
        ]
        out.append("")
    lengths = length_rows(judgments, answers)
    if lengths:
        out += [
            "## Judge diagnostics: score vs. answer length",
            "",
            "Spearman's rho (p) of the judge's score with the answer's length, over every "
            "run's answers; '-' where there are under 3 answers or one side is constant.",
            "",
            "| score | language / script | answers | rho, tokens (p) | rho, characters (p) |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {r['metric']} | {r['scope']} | {r['items']} | "
            f"{_number(r['tokens'])} ({_p(r['tokens_p'])}) | "
            f"{_number(r['chars'])} ({_p(r['chars_p'])}) |"
            for r in lengths
        ]
        out.append("")
    gaps = english_gap_rows(judgments)
    if gaps:
        out += [
            "## Judge diagnostics: English vs. the same prompts in each language",
            "",
            "Scores of the same run, prompt and sample, paired across languages of a parallel "
            "prompt set; gap = English minus the language, p from a paired permutation test. "
            "The gap holds the model's and the judge's share together: a gap that stays across "
            "runs while the answers improve points at the judge.",
            "",
            "| score | language | prompts | English | language | gap (p) |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| {r['metric']} | {r['scope']} | {r['items']} | {r['english']:.2f} | "
            f"{r['language']:.2f} | {r['gap']:+.2f} ({_p(r['p'])}) |"
            for r in gaps
        ]
        out.append("")
    return out
