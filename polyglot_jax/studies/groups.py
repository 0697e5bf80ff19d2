"""Scores by language group: the study's own groups and each run's tuned and unseen languages.

A study's ``language_groups`` are the groups its paper reports (Polyglots: English, tuned,
zero-shot, unseen); a run with ``tuned_languages`` adds ``tuned (run)`` and ``unseen (run)``:
the evaluation languages in and not in its tuning data (Pinch's unseen-language average). A
group's mean is the mean of its languages' means, each language weighing the same as in the
overall mean; its ``n`` is the number of items those means cover.

:func:`tables` writes one markdown table per metric (run x all languages and each group);
:func:`figure` the figure per target language, one panel per group and metric, a bar per run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib
import matplotlib.figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from polyglot_jax.evaluation import report
from polyglot_jax.studies import chart
from polyglot_jax.studies.grid import Condition, Study

Table = dict[tuple[str, str], dict[str, float]]
ALL = "all"
RUN_TUNED, RUN_UNSEEN = "tuned (run)", "unseen (run)"


def run_languages(table: Table, run: str) -> list[str]:
    """The languages the run was evaluated on, sorted."""
    return sorted(lang for r, lang in table if r == run)


def groups_of(study: Study, condition: Condition, langs: Sequence[str]) -> dict[str, list[str]]:
    """``group → languages`` of one run among ``langs``: all of them, the study's groups, then
    the run's tuned and unseen languages when the condition names its tuning languages."""
    groups = {ALL: list(langs)}
    groups.update({name: [x for x in members if x in langs] for name, members in _static(study)})
    if condition.tuned_languages is not None:
        groups[RUN_TUNED] = [x for x in langs if x in condition.tuned_languages]
        groups[RUN_UNSEEN] = [x for x in langs if x not in condition.tuned_languages]
    return groups


def _static(study: Study) -> list[tuple[str, tuple[str, ...]]]:
    return list(study.language_groups.items())


def group_mean(table: Table, run: str, metric: str, langs: Sequence[str]) -> tuple[float, int]:
    """``(mean of the languages' means, items covered)`` of ``run`` over ``langs``; NaN and 0
    when none of them has a value."""
    cells = [table[(run, x)] for x in langs if (run, x) in table]
    cells = [c for c in cells if not math.isnan(c[metric])]
    if not cells:
        return math.nan, 0
    mean = sum(c[metric] for c in cells) / len(cells)
    return mean, int(sum(c.get(f"{metric}_n", 0.0) for c in cells))


def group_means(
    study: Study, conditions: Sequence[Condition], table: Table, metric: str
) -> dict[str, dict[str, tuple[float, int]]]:
    """``run → group → (mean, n)`` for each run with scores (:func:`groups_of`)."""
    out = {}
    for condition in conditions:
        langs = run_languages(table, condition.name)
        if langs:
            groups = groups_of(study, condition, langs)
            out[condition.name] = {
                name: group_mean(table, condition.name, metric, members)
                for name, members in groups.items()
            }
    return out


def _columns(means: dict[str, dict[str, tuple[float, int]]]) -> list[str]:
    return list(dict.fromkeys(name for groups in means.values() for name in groups))


def tables(
    study: Study, conditions: Sequence[Condition], table: Table, metrics: Sequence[str]
) -> list[str]:
    """Markdown lines: the groups' languages, then per metric a table of run x (all, each
    group), each cell ``mean (n=items)``."""
    lines = ["## By language group", ""]
    lines.append(
        "Each cell: the mean of the group's per-language means (each language weighs the "
        "same), n = the items they cover; - where the run has no language of the group."
    )
    static = [f"{name}: {', '.join(members)}" for name, members in _static(study)]
    if static:
        lines += ["", "Groups: " + "; ".join(static) + "."]
    if any(c.tuned_languages is not None for c in conditions):
        lines += [
            "",
            f"{RUN_TUNED} / {RUN_UNSEEN}: the run's evaluation languages in / not in its "
            "tuning data.",
        ]
    for metric in metrics:
        means = group_means(study, conditions, table, metric)
        if not means:
            continue
        columns = _columns(means)
        lines += ["", f"### {report.METRICS[metric][0]}", ""]
        lines.append("| run | " + " | ".join(columns) + " |")
        lines.append("|---" * (len(columns) + 1) + "|")
        for run, groups in means.items():
            cells = [groups.get(name, (math.nan, 0)) for name in columns]
            shown = ["-" if n == 0 else f"{mean:.2f} (n={n})" for mean, n in cells]
            lines.append(f"| {run} | " + " | ".join(shown) + " |")
    return lines


def _bar_runs(study: Study, conditions: Sequence[Condition]) -> dict[str, list[Condition]]:
    """A bar per run of a curve (named by the run), a bar per series of a bar figure."""
    if study.figure.kind == "curve":
        return {c.name: [c] for c in conditions}
    series: dict[str, list[Condition]] = {}
    for c in conditions:
        series.setdefault(c.series, []).append(c)
    return series


def figure(
    study: Study, conditions: Sequence[Condition], table: Table, metrics: Sequence[str]
) -> matplotlib.figure.Figure | None:
    """The per-language figure grouped by the study's language groups: a row per metric, a
    panel per group, a cluster per language, a bar per run (curve studies) or per series (bar
    studies); None when the study has no groups or no scores."""
    langs = sorted({lang for _, lang in table})
    groups = [(name, [x for x in members if x in langs]) for name, members in _static(study)]
    groups = [(name, members) for name, members in groups if members]
    runs = {
        label: members
        for label, members in _bar_runs(study, conditions).items()
        if any((c.name, x) in table for c in members for x in langs)
    }
    if not groups or not metrics or not runs:
        return None
    widths = [max(1.5, len(members) * (0.4 + 0.12 * len(runs))) for _, members in groups]
    fig, axes = plt.subplots(
        len(metrics),
        len(groups),
        figsize=(1.2 + sum(widths), 3.4 * len(metrics)),
        gridspec_kw={"width_ratios": widths},
        squeeze=False,
    )
    for row, metric in zip(axes, metrics, strict=True):
        scale = chart.metric_range(study, metric)
        for ax, (name, members) in zip(row, groups, strict=True):
            series = {
                label: [chart.cell_value(table, rs, x, metric) for x in members]
                for label, rs in runs.items()
            }
            chart.bar_clusters(ax, members, series, scale)
            ax.set_title(name, fontsize=9)
        row[0].set_ylabel(report.METRICS[metric][0], fontsize=8)
    fig.suptitle(f"{study.title}: per target language, by language group", fontsize=9)
    chart.legend_below(fig, axes[0][0])
    return fig
