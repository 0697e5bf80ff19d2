"""A study's figure and summary table from the report's (run, language) scores.

``curve``: the mean over evaluation languages of each metric vs. the conditions' ``x`` (language
agreement vs. k; score vs. the share of multilingual examples; vs. the learning rate), one line
per series, plus the mean over the non-English languages. ``bars``: one group of bars per
language, one bar per series (English-only, monolingual on its own language, multilingual,
downsampled): the budget comparison. Writes ``study.png`` and ``study.md`` (the numbers drawn);
with ``select_by_x`` the table names, per series, the ``x`` with the best non-English mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from etils import epath

from polyglot_jax import storage
from polyglot_jax.evaluation import report
from polyglot_jax.studies.grid import Condition, Study

Table = dict[tuple[str, str], dict[str, float]]


def metrics_of(study: Study, table: Table) -> list[str]:
    """Language agreement, then the study's judge score when the table has it."""
    present = report.present_metrics(table)
    wanted = ["lang_agree"]
    if study.judging is not None:
        wanted.append(f"{study.judging.protocol}_score")
    return [m for m in wanted if m in present]


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def run_means(table: Table, run: str, metric: str) -> tuple[float, float]:
    """``(mean over languages, mean over non-English languages)`` of one run's metric."""
    cells = {lang: row[metric] for (r, lang), row in table.items() if r == run}
    return _mean(list(cells.values())), _mean([v for k, v in cells.items() if k != "en"])


def rows(study: Study, conditions: Sequence[Condition], table: Table) -> list[dict]:
    """One row per run that has scores: series, x and each metric's means."""
    out = []
    for condition in conditions:
        if not any(r == condition.name for r, _ in table):
            continue
        x = 0.0 if condition.name == study.figure.zero else condition.x
        row = {"run": condition.name, "series": condition.series, "x": x}
        for metric in metrics_of(study, table):
            row[metric], row[f"{metric}_non_en"] = run_means(table, condition.name, metric)
        out.append(row)
    return out


def _curves(study: Study, conditions: Sequence[Condition], table: Table, metric: str) -> dict:
    """``series → [(x, mean, non-English mean)]`` sorted by x, with the zero condition."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    zero = study.figure.zero
    for condition in conditions:
        if condition.x is None or not any(r == condition.name for r, _ in table):
            continue
        curves.setdefault(condition.series, []).append(
            (condition.x, *run_means(table, condition.name, metric))
        )
    if zero and any(r == zero for r, _ in table):
        for points in curves.values():
            points.append((0.0, *run_means(table, zero, metric)))
    return {s: sorted(p) for s, p in curves.items()}


def _bars(conditions: Sequence[Condition], table: Table, metric: str) -> tuple[list, dict]:
    """Languages and ``series → per-language value`` (own-language runs on their language)."""
    langs = sorted({lang for _, lang in table})
    series: dict[str, list[float]] = {}
    for name in dict.fromkeys(c.series for c in conditions):
        runs = [c for c in conditions if c.series == name]
        values = []
        for lang in langs:
            cells = [
                table[(c.name, lang)][metric]
                for c in runs
                if (c.name, lang) in table and c.own_language in (None, lang)
            ]
            values.append(_mean(cells))
        if not all(math.isnan(v) for v in values):
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
        metric = metrics[-1]
        lines += [
            "",
            f"Selected on the non-English prompts ({metric}). These are the reported prompts "
            f"too, so the selected scores are optimistic; the study selected on a separate "
            f"multilingual validation set.",
            "",
        ]
        lines += _selection(study, table_rows, metric)
    return "\n".join(lines) + "\n"


def draw(
    study: Study, conditions: Sequence[Condition], table: Table, path: epath.Path
) -> list[str]:
    """Writes the study figure as PNG; returns the metrics drawn."""
    metrics = metrics_of(study, table)
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(6.5 * max(1, len(metrics)), 4.2))
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics, strict=False):
        title = report.METRICS[metric][0]
        if study.figure.kind == "curve":
            for series, points in _curves(study, conditions, table, metric).items():
                xs, means, non_en = zip(*points, strict=True)
                ax.plot(xs, means, marker="o", label=f"{series}: all languages")
                ax.plot(xs, non_en, marker="s", linestyle="--", label=f"{series}: non-English")
            if study.figure.log_x:
                ax.set_xscale("log")
            ax.set_xlabel(study.figure.x_label)
        else:
            langs, series = _bars(conditions, table, metric)
            width = 0.8 / max(1, len(series))
            for i, (name, values) in enumerate(series.items()):
                ax.bar(np.arange(len(langs)) + i * width, values, width, label=name)
            ax.set_xticks(np.arange(len(langs)) + 0.4 - width / 2, langs)
            ax.set_xlabel("evaluation language")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.suptitle(study.title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return metrics


def write(
    study: Study,
    conditions: Sequence[Condition],
    table: Table,
    out_dir: epath.Path,
    notes: Sequence[str] = (),
) -> str:
    """Writes ``study.png`` and ``study.md`` (``notes`` under its title); returns the markdown."""
    metrics = draw(study, conditions, table, storage.as_path(out_dir) / "study.png")
    text = summary(study, rows(study, conditions, table), metrics, notes)
    storage.write_atomic(storage.as_path(out_dir) / "study.md", text)
    return text
