"""Report: per-(run, language) tables and heatmaps from judge outputs.

``python -m polyglot_jax.report RUN_A/judge RUN_B/judge --output_dir=report`` writes
``report.md`` (tables with bootstrap 95% intervals), ``lang_agree.png`` and ``chrf.png``
(heatmaps, run × evaluation language) and ``scores.csv``. With ``--outputs RUN/infer`` it adds
the answers' surface metrics (:mod:`~polyglot_jax.evaluation.surface`); correlations with the
language features include the base model's pretraining shares and typological distance to
English, each with a scatter plot (:mod:`~polyglot_jax.evaluation.analysis`).
"""

from __future__ import annotations

import collections
import csv
import math
import pathlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from polyglot_jax import languages
from polyglot_jax.data import sources
from polyglot_jax.errors import DataError, MissingFileError
from polyglot_jax.evaluation import analysis, metrics, surface
from polyglot_jax.evaluation.benchmarks import registry
from polyglot_jax.evaluation.judges.protocols import FACETS

METRICS = {
    "lang_agree": ("Language agreement (%)", 100.0),
    "chrf": ("chrF", 1.0),
    "pairwise_score": ("Pairwise win rate vs baseline (%)", 100.0),
    "single_score": ("Single-answer score (the rubric's scale)", 1.0),
    "mtbench_score": ("MT-bench rating (1-10)", 1.0),
    "facets_score": ("Mean of six facets (1-3)", 1.0),
    **{f"facets_{f}": (f"Facet: {f.replace('_', ' ')} (1-3)", 1.0) for f in FACETS},
    **registry.report_metrics(),
    **surface.REPORT_METRICS,
}
LLM_PROTOCOLS = ("pairwise", "single", "mtbench", "facets")
# What a failed row was, as the report's warning names it: ``failed`` of a row is a key here.
FAILED_KINDS = {"judge": ("judgments", "prompts"), "benchmark": ("benchmark items", "items")}


def load_judgments(paths: Iterable[str | pathlib.Path]) -> list[dict]:
    """Rows from judge folders (``judgments.jsonl``, ``<protocol>.jsonl``), structured
    benchmark folders (``structured.jsonl``, from ``polyglot-jax eval``) or such files.

    LLM-judge rows get their score as ``<protocol>_score`` (a facets row also each facet as
    ``facets_<facet>``); rows that did not end ``ok`` (the
    request failed, or the judge's output did not parse) carry no score and are left out of the
    means, and are marked ``failed: "judge"``; benchmark rows with ``status: "failed"`` are
    marked ``failed: "benchmark"`` (:func:`score_table` counts both).
    """
    out = []
    for path in map(pathlib.Path, paths):
        files = [path / "judgments.jsonl"] if path.is_dir() else [path]
        if path.is_dir():
            files += [path / f"{p}.jsonl" for p in LLM_PROTOCOLS if (path / f"{p}.jsonl").exists()]
            files.append(path / "structured.jsonl")
            files = [f for f in files if f.exists()] or files[:1]
        for file in files:
            if not file.exists():
                raise MissingFileError(f"{file} does not exist: run the judge stage first")
            protocol = file.stem if file.stem in LLM_PROTOCOLS else None
            for where, row in sources.iter_json_lines(file):
                if not isinstance(row, dict) or not {"run", "lang"} <= row.keys():
                    raise DataError(f"{where}: not a judgment (an object with run and lang)")
                if protocol is not None:
                    row = {
                        "run": row["run"],
                        "lang": row["lang"],
                        f"{protocol}_score": row.get("score"),
                        **{f"facets_{f}": row.get(f) for f in FACETS if protocol == "facets"},
                        **({"language_id": row["language_id"]} if "language_id" in row else {}),
                        **({"failed": "judge"} if row.get("status", "ok") != "ok" else {}),
                        **prompt_of(row),
                        **({"verdicts": row["verdicts"]} if "verdicts" in row else {}),
                    }
                elif row.get("status") == "failed":
                    row = {**row, "failed": "benchmark"}
                out.append(row)
    return out


def prompt_of(row: dict) -> dict[str, Any]:
    """``{"id", "sample"}`` of an LLM-judge row's ``item_id`` (``<run>/<lang>/<id>``, with
    ``#sample<n>`` past the first sample), which pairs it with other runs' answers to the same
    prompt; empty when the row has none."""
    item = row.get("item_id")
    if not isinstance(item, str):
        return {}
    marker = f"/{row['lang']}/"
    rest = item.split(marker, 1)[1] if marker in item else item.rsplit("/", 1)[-1]
    prompt, _, sample = rest.partition("#sample")
    return {"id": prompt, "sample": int(sample) if sample.isdigit() else 0}


def score_table(judgments: Sequence[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """``(run, lang) → {n, failed, <metric>, <metric>_n, <metric>_low, <metric>_high}``, scaled
    for display.

    ``<metric>_n`` is the number of items the metric's mean covers (failed items have no
    value), ``n`` the largest of them; ``failed`` counts the cell's failed items, and
    ``failed_<kind>`` those of each kind of :data:`FAILED_KINDS`.
    """
    groups: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for j in judgments:
        groups[(j["run"], j["lang"])].append(j)
    table = {}
    for key, items in sorted(groups.items()):
        row: dict[str, float] = {}
        counts = [0]
        for name, (_, scale) in METRICS.items():
            values = [float(j[name]) * scale for j in items if j.get(name) is not None]
            counts.append(len(values))
            row[name] = float(np.mean(values)) if values else math.nan
            row[f"{name}_n"] = float(len(values))
            row[f"{name}_low"], row[f"{name}_high"] = metrics.bootstrap_ci(values)
        row["n"] = max(counts)
        for kind in FAILED_KINDS:
            row[f"failed_{kind}"] = float(sum(j.get("failed") == kind for j in items))
        row["failed"] = sum(row[f"failed_{kind}"] for kind in FAILED_KINDS)
        table[key] = row
    return table


def _known(value: object, feature: Callable[[Any], object]) -> float | None:
    return None if value is None else float(feature(value))


# Each feature is None for a language whose registry entry does not know it.
LANGUAGE_FEATURES = {
    "resource tier": lambda lang: _known(languages.get(lang).tier, int),
    "Latin script": lambda lang: _known(languages.get(lang).script, lambda s: s == "Latin"),
    "Indo-European": lambda lang: _known(
        languages.get(lang).family, lambda f: f.startswith("Indo-European")
    ),
}


def correlations(
    table: dict[tuple[str, str], dict[str, float]],
    min_languages: int = 4,
    features: dict[str, Callable[[str], float | None]] | None = None,
) -> list[dict]:
    """Pearson and Spearman correlation, per run and metric, of the per-language scores with
    each feature (default: the registry's, :data:`LANGUAGE_FEATURES`), over languages with a
    score and a known value of the feature.

    Pairs with fewer than ``min_languages`` languages or a constant side are left out.
    """
    out = []
    for run in sorted({r for r, _ in table}):
        for metric in present_metrics(table):
            cells = {
                lang: row[metric]
                for (r, lang), row in table.items()
                if r == run and not math.isnan(row[metric])
            }
            if len(cells) < min_languages:
                continue
            for feature, value_of in (LANGUAGE_FEATURES if features is None else features).items():
                known = {lang: v for lang in cells if (v := value_of(lang)) is not None}
                if len(known) < min_languages:
                    continue
                values = np.array(list(known.values()))
                scores = np.array([cells[lang] for lang in known])
                if np.ptp(values) == 0 or np.ptp(scores) == 0:
                    continue
                pearson, spearman = stats.pearsonr(values, scores), stats.spearmanr(values, scores)
                out.append(
                    {
                        "run": run,
                        "metric": metric,
                        "feature": feature,
                        "n": len(known),
                        "pearson": float(pearson.statistic),
                        "pearson_p": float(pearson.pvalue),
                        "spearman": float(spearman.statistic),
                        "spearman_p": float(spearman.pvalue),
                    }
                )
    return out


def present_metrics(table: dict[tuple[str, str], dict[str, float]]) -> list[str]:
    """Metrics with at least one value in the table."""
    return [m for m in METRICS if any(not math.isnan(r[m]) for r in table.values())]


def heatmap(
    table: dict[tuple[str, str], dict[str, float]], metric: str, path: pathlib.Path
) -> pathlib.Path:
    """Writes a run × language heatmap of ``metric`` as PNG."""
    runs = sorted({r for r, _ in table})
    langs = sorted({lang for _, lang in table})
    grid = np.full((len(runs), len(langs)), np.nan)
    for (run, lang), row in table.items():
        grid[runs.index(run), langs.index(lang)] = row[metric]
    title, scale = METRICS[metric]
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(langs), 1.2 + 0.5 * len(runs)))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100 if scale == 100 else None)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(runs)), runs)
    ax.set_xlabel("evaluation language")
    ax.set_title(title)
    for i in range(len(runs)):
        for j in range(len(langs)):
            if not np.isnan(grid[i, j]):
                color = "white" if grid[i, j] < np.nanmax(grid) * 0.6 else "black"
                ax.text(
                    j, i, f"{grid[i, j]:.0f}", ha="center", va="center", color=color, fontsize=8
                )
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def failure_warnings(table: dict[tuple[str, str], dict[str, float]]) -> list[str]:
    """One ``warning:`` line per kind of failed item (:data:`FAILED_KINDS`) with its counts per
    run and language, e.g. ``warning: 12 judgments failed (run k3: fi 5, sw 7); their cells
    cover fewer prompts``; none when nothing failed."""
    lines = []
    for kind, (items, units) in FAILED_KINDS.items():
        per_run: dict[str, list[str]] = collections.defaultdict(list)
        total = 0
        for (run, lang), row in table.items():
            count = int(row.get(f"failed_{kind}", 0))
            if count:
                per_run[run].append(f"{lang} {count}")
                total += count
        if total:
            where = "; ".join(f"run {run}: {', '.join(cells)}" for run, cells in per_run.items())
            lines.append(
                f"warning: {total} {items} failed ({where}); their cells cover fewer {units}"
            )
    return lines


def language_id_lines(judgments: Sequence[dict]) -> list[str]:
    """How the answers' languages were identified, e.g. ``Language ID: lingua, open set (75
    languages)``: the ``language_id`` that language agreement and language-gated judgments
    record, one line per identifier (naming the runs when they differ); ``not recorded`` for
    language agreement judged before judgments recorded it."""
    runs: dict[str, set[str]] = collections.defaultdict(set)
    for j in judgments:
        if "language_id" in j or "lang_agree" in j:
            runs[j.get("language_id") or "not recorded"].add(j["run"])
    if len(runs) == 1:
        return [f"Language ID: {next(iter(runs))}"]
    return [f"Language ID: {d} (runs {', '.join(sorted(r))})" for d, r in sorted(runs.items())]


def markdown(
    table: dict[tuple[str, str], dict[str, float]],
    plots: Sequence[str],
    features: dict[str, Callable[[str], float | None]] | None = None,
    notes: Sequence[str] = (),
    language_ids: Sequence[str] = (),
) -> str:
    """The summary: one table per metric (runs as rows, languages as columns), correlations
    with ``features`` (default: the registry's; ``notes`` name their sources) and plot links;
    ``language_ids`` (:func:`language_id_lines`) head it."""
    runs = sorted({r for r, _ in table})
    warnings = failure_warnings(table)
    lines = ["# polyglot_jax report", "", *warnings, *([""] if warnings else [])]
    lines += [*language_ids, *([""] if language_ids else [])]
    metrics_shown = present_metrics(table)
    for metric in metrics_shown:
        title = METRICS[metric][0]
        # The languages this metric has (a benchmark covers its own list, not every language).
        langs = sorted(
            {g for (_, g), row in table.items() if not math.isnan(row.get(metric, math.nan))}
        )
        lines += [f"## {title}", "", "| run | mean | " + " | ".join(langs) + " |"]
        lines.append("|---" * (len(langs) + 2) + "|")
        for run in runs:
            cells = [table.get((run, lang), {}).get(metric, math.nan) for lang in langs]
            mean = np.nanmean(cells) if not np.all(np.isnan(cells)) else math.nan
            lines.append(f"| {run} | {mean:.1f} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
        lines.append("")
    lines += ["## Per run and language, with bootstrap 95% intervals", ""]
    header = " | ".join(METRICS[m][0] for m in metrics_shown)
    lines += [
        "Each cell: mean [interval], n = the items its mean covers (failed items excluded).",
        "",
    ]
    lines += [f"| run | lang | failed | {header} |", "|---" * (3 + len(metrics_shown)) + "|"]
    for (run, lang), row in table.items():
        cells = [
            f"{row[m]:.1f} [{row[m + '_low']:.1f}, {row[m + '_high']:.1f}], n={row[m + '_n']:.0f}"
            if row[m + "_n"]
            else "-"
            for m in metrics_shown
        ]
        lines.append(f"| {run} | {lang} | {row['failed']:.0f} | " + " | ".join(cells) + " |")
    rows = correlations(table, features=features)
    if rows:
        lines += ["", "## Correlation with language features", ""]
        lines += [f"- {note}" for note in notes] + ([""] if notes else [])
        lines += [
            "| run | metric | feature | languages | Pearson r (p) | Spearman rho (p) |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {c['run']} | {METRICS[c['metric']][0]} | {c['feature']} | {c['n']} | "
            f"{c['pearson']:.2f} ({c['pearson_p']:.3f}) | "
            f"{c['spearman']:.2f} ({c['spearman_p']:.3f}) |"
            for c in rows
        ]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(
    judge_paths: Iterable[str | pathlib.Path],
    output_dir: str | pathlib.Path,
    outputs: Iterable[str | pathlib.Path] = (),
    pretraining_shares: str | pathlib.Path | None = None,
    typological_distances: str | pathlib.Path | None = None,
) -> pathlib.Path:
    """Writes ``report.md``, ``scores.csv``, the heatmaps and the scatter plots; returns the
    markdown path.

    Args:
      judge_paths: judge and structured-benchmark folders or files (:func:`load_judgments`).
      output_dir: where the report goes.
      outputs: ``infer`` folders or files whose answers' surface metrics join the tables.
      pretraining_shares: TSV of the base model's pretraining share per language (default:
        Llama 2's, :mod:`~polyglot_jax.evaluation.analysis`).
      typological_distances: TSV of distances to English (default: the shipped URIEL table).
    """
    judge_paths, outputs = list(judge_paths), list(outputs)
    judgments = load_judgments(judge_paths)
    answers = surface.surface_rows(outputs)
    if not judgments and not answers:
        raise DataError(f"no judgments found in {list(map(str, judge_paths + outputs))}")
    return write_rows(judgments, answers, output_dir, pretraining_shares, typological_distances)


def write_rows(
    judgments: Sequence[dict],
    answers: Sequence[dict],
    output_dir: str | pathlib.Path,
    pretraining_shares: str | pathlib.Path | None = None,
    typological_distances: str | pathlib.Path | None = None,
) -> pathlib.Path:
    """:func:`write_report` of rows already read (``judgments``: :func:`load_judgments`;
    ``answers``: surface rows), e.g. runs of several roots renamed apart.

    Raises:
      DataError: there are no rows.
    """
    features = {
        **LANGUAGE_FEATURES,
        **analysis.language_features(pretraining_shares, typological_distances),
    }
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = score_table([*judgments, *answers])
    if not table:
        raise DataError("no judgments to report")
    shown = present_metrics(table)
    plots = [heatmap(table, m, out / f"{m}.png").name for m in shown]
    extra = {k: features[k] for k in (analysis.SHARE_FEATURE, analysis.DISTANCE_FEATURE)}
    titles = {m: METRICS[m][0] for m in shown}
    plots += [p.name for p in analysis.scatter_plots(table, titles, extra, out)]
    with (out / "scores.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        fields = sorted(next(iter(table.values())))
        writer.writerow(["run", "lang", *fields])
        for (run, lang), row in table.items():
            writer.writerow([run, lang, *(row[k] for k in fields)])
    path = out / "report.md"
    notes = analysis.source_notes(pretraining_shares, typological_distances)
    language_ids = language_id_lines(judgments)
    path.write_text(markdown(table, plots, features, notes, language_ids), encoding="utf-8")
    return path
