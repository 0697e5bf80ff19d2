"""Axes of the study figures: each metric on its full scale, bars that stay visible at the
scale's floor, intervals as error bars, and x axes that show every condition's point.

A score at the floor of its scale (0 of a language-gated rubric, 1 of a 1-6 rubric) would be a
bar of no height, indistinguishable from a missing one: it is drawn as a hatched stub with its
value written above it. A share curve with its English-only point at x = 0 gets a symlog axis
(linear below the smallest share, logarithmic above), so 1, 2 and 5 % stay apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.figure
import numpy as np
from matplotlib.axes import Axes

from polyglot_jax.evaluation.judges import protocols
from polyglot_jax.studies.grid import Condition, Figure, Study

Table = dict[tuple[str, str], dict[str, float]]
# (mean, interval low, interval high) of one bar; NaN bounds: no interval.
Value = tuple[float, float, float]
MISSING: Value = (math.nan, math.nan, math.nan)
STUB = 0.025  # a floor bar's height, as a share of the axis' span
PERCENT = {"lang_agree": (0.0, 100.0), "pairwise_score": (0.0, 100.0)}


def metric_range(study: Study, metric: str) -> tuple[float, float] | None:
    """The full scale of ``metric`` in this study, or None when it has no fixed one.

    Percentages span 0-100; a single-answer score its rubric's scale (the prompt's ``# scale``
    line, 1-6 by default) extended to 0 when the judge is language-gated; facets 1-3.
    """
    if metric in PERCENT:
        return PERCENT[metric]
    if metric == "facets_score" or metric.startswith("facets_"):
        return (1.0, 3.0)
    if metric == "mtbench_score":
        return (1.0, 10.0)
    judging = study.judging
    if metric == "single_score" and judging is not None and judging.protocol == "single":
        low, high = protocols.get_protocol("single", judging.prompt).scale
        return (0.0 if judging.language_gate else float(low), float(high))
    return None


def style_y(ax: Axes, scale: tuple[float, float] | None) -> float:
    """Sets the y limits to ``scale`` (integer ticks for a rubric); returns the bars' floor."""
    if scale is None:
        return 0.0
    low, high = scale
    span = high - low
    ax.set_ylim(low, high + 0.08 * span)
    if span <= 10:
        ax.set_yticks(np.arange(low, high + 1))
    return low


def style_x(ax: Axes, figure: Figure, xs: Sequence[float]) -> None:
    """A curve's x axis: log for learning rates; symlog with a tick per point when the zero
    condition sits at x = 0 (its tick names it); a tick per point when every x is an integer
    (k languages)."""
    xs = sorted(set(xs))
    if figure.log_x:
        ax.set_xscale("log")
        return
    positive = [x for x in xs if x > 0]
    if figure.zero and 0 in xs and positive:
        ax.set_xscale("symlog", linthresh=min(positive), linscale=0.6)
        ax.set_xticks(xs, [f"0\n{figure.zero}" if x == 0 else f"{x:g}" for x in xs])
        ax.set_xlim(-0.15 * min(positive), max(xs) * 1.15)
    elif xs and all(float(x).is_integer() for x in xs):
        ax.set_xticks(xs, [f"{x:g}" for x in xs])


def cell_value(table: Table, runs: Sequence[Condition], lang: str, metric: str) -> Value:
    """The value of ``runs`` on ``lang``: their mean (a per-language run counts only on its own
    language), with the report's bootstrap interval when it is one run's cell."""
    cells = [
        table[(c.name, lang)]
        for c in runs
        if (c.name, lang) in table
        and c.own_language in (None, lang)
        and not math.isnan(table[(c.name, lang)][metric])
    ]
    if not cells:
        return MISSING
    if len(cells) == 1:
        cell = cells[0]
        bounds = cell.get(f"{metric}_low", math.nan), cell.get(f"{metric}_high", math.nan)
        return (cell[metric], *bounds)
    return (float(np.mean([c[metric] for c in cells])), math.nan, math.nan)


def bar_clusters(
    ax: Axes,
    categories: Sequence[str],
    series: Mapping[str, Sequence[Value]],
    scale: tuple[float, float] | None,
) -> None:
    """One cluster of bars per category, one bar per series, on ``scale`` (:func:`style_y`).

    Bars rise from the scale's floor; one at the floor is a hatched stub labelled with its
    value; intervals are error bars.
    """
    floor = style_y(ax, scale)
    low, high = ax.get_ylim()
    stub = STUB * (high - low)
    width = 0.8 / max(1, len(series))
    positions = np.arange(len(categories))
    for i, (name, values) in enumerate(series.items()):
        color = f"C{i % 10}"
        shown = [(p + i * width, v) for p, v in zip(positions, values, strict=True)]
        shown = [(x, v) for x, v in shown if not math.isnan(v[0])]
        if not shown:  # a zero-height bar, for the legend's colour
            ax.bar([positions[0]], [0.0], width, bottom=floor, color=color, label=name)
            continue
        xs = [x for x, _ in shown]
        heights = [max(v[0] - floor, stub) for _, v in shown]
        bars = ax.bar(xs, heights, width, bottom=floor, color=color, label=name)
        for bar, (x, (value, lo, hi)) in zip(bars, shown, strict=True):
            if value - floor < stub:
                bar.set_hatch("////")
                bar.set_edgecolor("black")
                ax.text(x, floor + stub, f"{value:g}", ha="center", va="bottom", fontsize=6)
            if not (math.isnan(lo) or math.isnan(hi)):
                yerr = [[max(value - lo, 0.0)], [max(hi - value, 0.0)]]
                ax.errorbar([x], [value], yerr=yerr, fmt="none", ecolor="0.3", capsize=1.5, lw=0.6)
    ax.set_xticks(positions + 0.4 - width / 2, categories)


def legend_below(fig: matplotlib.figure.Figure, ax: Axes, columns: int = 4) -> None:
    """The legend of ``ax``'s lines or bars under the panels (so it hides none of them), then
    a tight layout above it."""
    handles, labels = ax.get_legend_handles_labels()
    if labels:  # no more columns than fit the figure's width (about 0.06 inch a character)
        entry = 0.5 + 0.06 * max(len(label) for label in labels)
        columns = max(1, min(columns, int(fig.get_figwidth() / entry)))
    rows = math.ceil(len(labels) / columns)
    height = fig.get_figheight()
    bottom = min(0.4, (0.15 + 0.22 * rows) / height) if labels else 0.0
    if labels:
        fig.legend(handles, labels, loc="lower center", ncol=min(columns, len(labels)), fontsize=7)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
