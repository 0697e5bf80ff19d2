"""The study report's checks of its own numbers: significance, spread across seeds, the judge.

- Seeds (``study run --seeds=0,1,2``, runs ``<condition>_seed<s>``): :func:`pool_seeds` names
  every seed's rows by its condition, so the study's tables and figures show each condition
  once, over prompts × seeds; :func:`seed_lines` gives the spread, mean ± standard deviation
  over seeds of each condition's mean over languages.
- Significance (:mod:`~polyglot_jax.evaluation.significance`): each condition against the
  study's reference on the same prompts (and seeds): the pairwise judge's baseline, else the
  figure's zero condition (the English-only run), else the first condition. A pairwise judge's
  score is itself a comparison with the baseline: it is tested against 0.5. Per language, then
  pooled over each language group (:func:`groups.groups_of`), with Holm and Benjamini–Hochberg
  corrections over the languages.
- The judge (:mod:`~polyglot_jax.evaluation.judge_diagnostics`): the pairwise flip rate and
  first-position share, and the correlation of scores with answer length.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping, Sequence

import numpy as np

from polyglot_jax.evaluation import judge_diagnostics, report, significance
from polyglot_jax.studies import groups
from polyglot_jax.studies.grid import Condition, Study, unseeded

Table = dict[tuple[str, str], dict[str, float]]


def seeded(conditions: Sequence[Condition]) -> bool:
    """Whether the runs are seeds of conditions (:func:`~polyglot_jax.studies.grid.with_seeds`)."""
    return any(c.seed is not None for c in conditions)


def pool_seeds(
    conditions: Sequence[Condition], rows: Sequence[Mapping]
) -> tuple[list[Condition], list[dict]]:
    """The conditions once each, and ``rows`` with each seed's run named by its condition (the
    means of the study's tables then cover prompts × seeds). Unseeded runs stay as they are."""
    names = {c.name: unseeded(c).name for c in conditions}
    bases = list({unseeded(c).name: unseeded(c) for c in conditions}.values())
    return bases, [{**r, "run": names.get(r["run"], r["run"])} for r in rows]


def seed_lines(conditions: Sequence[Condition], table: Table, metrics: Sequence[str]) -> list[str]:
    """Mean ± standard deviation (ddof 1) over seeds of each condition's mean over languages
    (``table``: per seed's run); empty without seeds."""
    if not seeded(conditions):
        return []
    runs: dict[str, list[str]] = collections.defaultdict(list)
    for c in conditions:
        runs[unseeded(c).name].append(c.name)
    lines = [
        "## Spread across seeds",
        "",
        "Each condition's mean over languages, per seed; mean ± standard deviation over seeds.",
        "",
        "| condition | metric | seeds | mean ± std | per seed |",
        "|---|---|---|---|---|",
    ]
    for name, members in runs.items():
        for metric in metrics:
            values = []
            for run in members:
                cells = [r[metric] for (r_, _), r in table.items() if r_ == run]
                cells = [v for v in cells if not math.isnan(v)]
                values.append(float(np.mean(cells)) if cells else math.nan)
            known = [v for v in values if not math.isnan(v)]
            if not known:
                continue
            std = float(np.std(known, ddof=1)) if len(known) > 1 else math.nan
            each = ", ".join("-" if math.isnan(v) else f"{v:.2f}" for v in values)
            lines.append(
                f"| {name} | {report.METRICS[metric][0]} | {len(known)} | "
                f"{np.mean(known):.2f} ± {std:.2f} | {each} |"
            )
    return [*lines, ""]


def reference(study: Study, conditions: Sequence[Condition]) -> str | None:
    """The condition the others are tested against (a name among ``conditions``' unseeded
    names, without a model prefix), or None with fewer than two conditions."""
    names = [unseeded(c).name.rpartition("/")[2] for c in conditions]
    for wanted in (study.judging.baseline if study.judging else None, study.figure.zero):
        if wanted and wanted in names:
            return wanted
    return names[0] if len(set(names)) > 1 else None


def _pairs(
    condition: Condition, seeds: Mapping[str, list[Condition]], ref: str | None, metric: str
) -> list[tuple[str, str | None]]:
    """``(run, reference run)`` per seed of ``condition`` (None: against the null value)."""
    prefix = condition.name.rpartition("/")[0]
    ref_name = f"{prefix}/{ref}" if prefix and ref else ref
    refs = {c.seed: c.name for c in seeds.get(ref_name or "", [])}
    runs = seeds[condition.name]
    if metric in significance.NULL_VALUE:
        return [(c.name, None) for c in runs]
    return [(c.name, refs[c.seed]) for c in runs if c.seed in refs]


def significance_rows(
    study: Study,
    conditions: Sequence[Condition],
    judgments: Sequence[Mapping],
    metrics: Sequence[str],
) -> list[dict]:
    """The paired tests of each condition against the reference, per metric
    (:func:`significance.compare` rows with ``condition`` and ``metric``)."""
    ref = reference(study, conditions)
    seeds: dict[str, list[Condition]] = collections.defaultdict(list)
    for c in conditions:
        seeds[unseeded(c).name].append(c)
    baseline = study.judging.baseline if study.judging else None
    out = []
    for metric in metrics:
        values = significance.item_values(judgments, metric)
        for name, runs in seeds.items():
            bare = name.rpartition("/")[2]
            null = metric in significance.NULL_VALUE
            if (bare == ref and not null) or (null and bare == baseline):
                continue
            pairs = _pairs(unseeded(runs[0]), seeds, ref, metric)
            langs = sorted({u[0] for run, _ in pairs for u in values.get(run, {})})
            families = groups.groups_of(study, unseeded(runs[0]), langs) if langs else {}
            scale = report.METRICS[metric][1]
            for row in significance.compare(values, pairs, metric, families, scale):
                against = "0.5" if null else ref
                out.append({"condition": name, "metric": metric, "against": against, **row})
    return out


def significance_lines(
    study: Study,
    conditions: Sequence[Condition],
    judgments: Sequence[Mapping],
    metrics: Sequence[str],
) -> list[str]:
    """The significance table of the study report; empty when nothing pairs."""
    rows = significance_rows(study, conditions, judgments, metrics)
    if not rows:
        return []
    units = "prompts × seeds" if seeded(conditions) else "prompts"
    lines = [
        "## Paired differences and their significance",
        "",
        f"Each condition minus the reference on the same {units} (a pairwise judge's win "
        "score minus 0.5, the baseline's side); 95% bootstrap interval; two-sided paired "
        "permutation p (sign flips, exact up to 16 pairs); Holm and Benjamini–Hochberg p "
        "corrected over the languages (the groups pooled, corrected among themselves). "
        "**holds**: Holm p < 0.05; (BH): only the BH p < 0.05.",
        "",
        "| condition | vs. | metric | language / group | n | difference [95% CI] | p | "
        "Holm p | BH p | holds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = "**holds**" if r["holds"] else ("(BH)" if r["holds_bh"] else "no")
        lines.append(
            f"| {r['condition']} | {r['against']} | {report.METRICS[r['metric']][0]} | "
            f"{r['scope']} | {r['n']} | {r['difference']:+.2f} [{r['low']:+.2f}, "
            f"{r['high']:+.2f}] | {r['p']:.3g} | {r['p_holm']:.3g} | {r['p_bh']:.3g} | {mark} |"
        )
    return [*lines, ""]


def lines(
    study: Study,
    conditions: Sequence[Condition],
    judgments: Sequence[Mapping],
    answers: Sequence[Mapping],
    metrics: Sequence[str],
) -> list[str]:
    """The report's sections: spread across seeds, significance, judge diagnostics.

    Args:
      conditions: the runs (seeded runs each by itself).
      judgments: their judgment rows, unpooled
        (:func:`~polyglot_jax.evaluation.report.load_judgments`).
      answers: their surface rows (:func:`~polyglot_jax.evaluation.surface.surface_rows`).
      metrics: the study's metrics (:func:`~polyglot_jax.studies.figures.metrics_of`).
    """
    tested = [m for m in metrics if not m.startswith("facets_")]  # the facets' mean, not each
    table = report.score_table(judgments)
    out = seed_lines(conditions, table, metrics)
    out += significance_lines(study, conditions, judgments, tested)
    out += judge_diagnostics.lines(judgments, answers)
    return out
