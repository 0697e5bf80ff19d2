"""A study's figures and summary tables from the report's (run, language) scores.

``curve``: the mean over evaluation languages of each metric vs. the conditions' ``x`` (language
agreement vs. k; score vs. the share of multilingual examples; vs. the learning rate), one line
per series, plus the mean over the non-English languages. ``bars``: one group of bars per
language, one bar per series (English-only, monolingual on its own language, multilingual,
downsampled): the budget comparison, with the report's intervals as error bars. Each metric is
drawn on its full scale (:mod:`~polyglot_jax.studies.chart`); a facets judge adds a panel per
facet beside their mean.

Writes ``study.png``, ``study_groups.png`` (per target language by the study's language groups,
:mod:`~polyglot_jax.studies.groups`) and ``study.md``: the numbers drawn, each metric by
language group, and with ``select_by_x``, per series, the ``x`` with the best non-English mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib
import matplotlib.figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from etils import epath

from polyglot_jax import storage
from polyglot_jax.evaluation import analysis, report
from polyglot_jax.evaluation.judges.protocols import FACETS
from polyglot_jax.studies import chart, fidelity, groups, transfer
from polyglot_jax.studies.grid import Condition, Study

Table = dict[tuple[str, str], dict[str, float]]


def metrics_of(study: Study, table: Table) -> list[str]:
    """Language agreement, then the study's judge score when the table has it (a facets judge:
    the mean of the six facets, then each facet)."""
    present = report.present_metrics(table)
    wanted = ["lang_agree"]
    if study.judging is not None:
        wanted.append(f"{study.judging.protocol}_score")
        if study.judging.protocol == "facets":
            wanted += [f"facets_{f}" for f in FACETS]
    return [m for m in wanted if m in present]


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def run_means(table: Table, run: str, metric: str) -> tuple[float, float]:
    """``(mean over languages, mean over non-English languages)`` of one run's metric."""
    cells = {lang: row[metric] for (r, lang), row in table.items() if r == run}
    return _mean(list(cells.values())), _mean([v for k, v in cells.items() if k != "en"])


def zero_run(study: Study, name: str) -> str | None:
    """The run of the figure's zero condition beside run ``name``: in a report of several
    models (runs ``<model>/<condition>``, :mod:`~polyglot_jax.studies.roots`) the same model's."""
    if not study.figure.zero:
        return None
    prefix = name.rpartition("/")[0]
    return f"{prefix}/{study.figure.zero}" if prefix else study.figure.zero


def rows(study: Study, conditions: Sequence[Condition], table: Table) -> list[dict]:
    """One row per run that has scores: series, x and each metric's means."""
    out = []
    for condition in conditions:
        if not any(r == condition.name for r, _ in table):
            continue
        x = 0.0 if condition.name == zero_run(study, condition.name) else condition.x
        row = {"run": condition.name, "series": condition.series, "x": x}
        for metric in metrics_of(study, table):
            row[metric], row[f"{metric}_non_en"] = run_means(table, condition.name, metric)
        out.append(row)
    return out


def _curves(study: Study, conditions: Sequence[Condition], table: Table, metric: str) -> dict:
    """``series → [(x, mean, non-English mean)]`` sorted by x, with the zero condition."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    zeros: dict[str, str | None] = {}
    for condition in conditions:
        if condition.x is None or not any(r == condition.name for r, _ in table):
            continue
        curves.setdefault(condition.series, []).append(
            (condition.x, *run_means(table, condition.name, metric))
        )
        zeros[condition.series] = zero_run(study, condition.name)
    for series, zero in zeros.items():
        if zero and any(r == zero for r, _ in table):
            curves[series].append((0.0, *run_means(table, zero, metric)))
    return {s: sorted(p) for s, p in curves.items()}


def _bars(conditions: Sequence[Condition], table: Table, metric: str) -> tuple[list, dict]:
    """Languages and ``series → per-language (value, low, high)`` (own-language runs on their
    language; the interval where the value is one run's cell)."""
    langs = sorted({lang for _, lang in table})
    series: dict[str, list[chart.Value]] = {}
    for name in dict.fromkeys(c.series for c in conditions):
        runs = [c for c in conditions if c.series == name]
        values = [chart.cell_value(table, runs, lang, metric) for lang in langs]
        if not all(math.isnan(v[0]) for v in values):
            series[name] = values
    return langs, series


def _selection(study: Study, table_rows: list[dict], metric: str) -> list[str]:
    best: dict[str, dict] = {}
    for row in table_rows:
        value = row.get(f"{metric}_non_en", math.nan)
        if math.isnan(value):
            continue
        if row["series"] not in best or value > best[row["series"]][f"{metric}_non_en"]:
            best[row["series"]] = row
    key = f"{metric}_non_en"
    return [
        f"- {series}: x = {row['x']:g} ({row['run']}), non-English {metric} {row[key]:.2f}"
        for series, row in best.items()
    ]


def summary(
    study: Study, table_rows: list[dict], metrics: Sequence[str], notes: Sequence[str] = ()
) -> str:
    """The figure's numbers as a markdown table (and the selection, with ``select_by_x``), after
    ``notes`` (e.g. :func:`report.language_id_lines`)."""
    header = ["run", "series", study.figure.x_label]
    for metric in metrics:
        title = report.METRICS[metric][0]
        header += [f"{title}, mean", f"{title}, non-English"]
    lines = [f"# {study.title}", "", *notes, *([""] if notes else [])]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---" * len(header) + "|")
    for row in table_rows:
        x = "" if row["x"] is None else f"{row['x']:g}"
        cells = [row["run"], row["series"], x]
        cells += [f"{row[m]:.1f} | {row[m + '_non_en']:.1f}" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    if study.select_by_x and metrics:
        judged = [m for m in metrics if study.judging and m == f"{study.judging.protocol}_score"]
        metric = (judged or metrics)[-1]  # the judge's score (a facets judge: their mean)
        lines += [
            "",
            f"Selected on the non-English prompts ({metric}). These are the reported prompts "
            f"too, so the selected scores are optimistic; the study selected on a separate "
            f"multilingual validation set.",
            "",
        ]
        lines += _selection(study, table_rows, metric)
    return "\n".join(lines) + "\n"


def figure(
    study: Study, conditions: Sequence[Condition], table: Table
) -> tuple[matplotlib.figure.Figure, list[str]]:
    """The study figure, a panel per metric (:func:`metrics_of`); and the metrics drawn."""
    metrics = metrics_of(study, table)
    cols = min(4, max(1, len(metrics)))
    nrows = max(1, math.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(6.0 * cols, 4.0 * nrows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes, metrics, strict=False):
        title = report.METRICS[metric][0]
        scale = chart.metric_range(study, metric)
        if study.figure.kind == "curve":
            xs = []
            for i, (series, points) in enumerate(_curves(study, conditions, table, metric).items()):
                x, means, non_en = zip(*points, strict=True)
                xs += x
                color = f"C{i % 10}"
                ax.plot(x, means, marker="o", color=color, label=f"{series}: all languages")
                ax.plot(x, non_en, marker="s", ls="--", color=color, label=f"{series}: non-English")
            chart.style_y(ax, scale)
            chart.style_x(ax, study.figure, xs)
            ax.set_xlabel(study.figure.x_label)
        else:
            langs, series = _bars(conditions, table, metric)
            chart.bar_clusters(ax, langs, series, scale)
            ax.set_xlabel("evaluation language")
        ax.set_ylabel(title)
        ax.set_title(title)
    fig.suptitle(study.title, fontsize=9)
    chart.legend_below(fig, axes[0])
    return fig, metrics


def _save(fig: matplotlib.figure.Figure, path: epath.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def draw(
    study: Study, conditions: Sequence[Condition], table: Table, path: epath.Path
) -> list[str]:
    """Writes the study figure as PNG; returns the metrics drawn."""
    fig, metrics = figure(study, conditions, table)
    _save(fig, path)
    return metrics


def write(
    study: Study,
    conditions: Sequence[Condition],
    table: Table,
    out_dir: epath.Path,
    notes: Sequence[str] = (),
    pretraining_shares: str | None = None,
    sections: Sequence[str] = (),
) -> str:
    """Writes ``study.png``, ``study_groups.png`` (a study with language groups) and
    ``study.md`` (``notes`` under its title; with monolingual runs, tuning vs. evaluation
    language, :mod:`~polyglot_jax.studies.transfer`, correlated with ``pretraining_shares``
    when given; then the markdown lines of ``sections``, e.g. the significance tables of
    :mod:`~polyglot_jax.studies.trust`); returns the markdown."""
    out_dir = storage.as_path(out_dir)
    metrics = draw(study, conditions, table, out_dir / "study.png")
    plots = ["study.png"]
    grouped = groups.figure(study, conditions, table, metrics)
    if grouped is not None:
        _save(grouped, out_dir / "study_groups.png")
        plots.append("study_groups.png")
    share = None
    if pretraining_shares:
        notes = [*notes, f"Pretraining shares: {pretraining_shares}"]
        share = analysis.language_features(pretraining_shares)[analysis.SHARE_FEATURE]
    text = summary(study, rows(study, conditions, table), metrics, notes)
    text += "\n" + "\n".join(groups.tables(study, conditions, table, metrics)) + "\n"
    moved = transfer.lines(conditions, table, metrics, share, pretraining_shares)
    text += "\n" + "\n".join(moved) + "\n" if moved else ""
    text += "\n" + "\n".join(sections) + "\n" if sections else ""
    differences = fidelity.lines(study.name)
    text += "\n" + "\n".join(differences) + "\n" if differences else ""
    text += "\n" + "\n".join(f"![{p}]({p})" for p in plots) + "\n"
    storage.write_atomic(out_dir / "study.md", text)
    return text
