"""The study report's sections on its yardsticks: the judge against human labels, and where the
evaluation data's non-English text comes from.

:func:`lines` gives the judge–human agreement table when ``polyglot-jax judge import`` stored
human labels under the study's runs (:mod:`~polyglot_jax.evaluation.judges.calibration`), and
one table of every benchmark's and prompt set's translation (human or machine) and license
(:data:`~polyglot_jax.evaluation.benchmarks.registry.BENCHMARKS`,
:data:`~polyglot_jax.data.prompt_sets.PROVENANCE`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from polyglot_jax import storage
from polyglot_jax.data import prompt_sets
from polyglot_jax.evaluation.benchmarks import registry
from polyglot_jax.evaluation.judges import calibration
from polyglot_jax.studies.grid import Condition, Study


def agreement_lines(rows: Sequence[dict], protocol: str) -> list[str]:
    """The agreement table of :func:`calibration.agreement` rows; empty without rows."""
    if not rows:
        return []
    name = "Cohen's kappa" if protocol == "pairwise" else "Spearman's rho"
    lines = [
        "## Judge against human labels",
        "",
        f"The {protocol} judge's verdicts against annotators' labels of a sample of its items "
        f"(`polyglot-jax judge export` / `import`): {name} per language, and the share of "
        "items where both give the same label.",
        "",
        f"| language | items | {name} | same label |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        value = "-" if math.isnan(row["value"]) else f"{row['value']:.2f}"
        lines.append(f"| {row['lang']} | {row['n']} | {value} | {row['exact']:.0%} |")
    return [*lines, ""]


def provenance_lines() -> list[str]:
    """One table: each benchmark's and prompt set's translation and license."""
    lines = [
        "## Evaluation data: translation and license",
        "",
        "How each benchmark's and prompt set's non-English text was made (human: translated by "
        "people; machine: automatically) and the license its release states.",
        "",
        "| data | kind | non-English text | license | note |",
        "|---|---|---|---|---|",
    ]
    for name, benchmark in registry.BENCHMARKS.items():
        lines.append(f"| {name} | benchmark | {benchmark.translation} | {benchmark.license} | |")
    for name, source in prompt_sets.PROVENANCE.items():
        lines.append(
            f"| {name} | prompt set | {source.translation} | {source.license} | {source.note} |"
        )
    return [*lines, ""]


def lines(root: str | os.PathLike, conditions: Sequence[Condition], study: Study) -> list[str]:
    """The agreement table (when the runs under ``root`` have human labels of the study's
    judge) and the evaluation data's provenance table."""
    found: list[dict] = []
    if study.judging is not None:
        root_path = storage.as_path(root)
        for condition in conditions:
            judge_dir = root_path / condition.name / "judge"
            if judge_dir.is_dir():
                found += calibration.stored_labels(judge_dir, study.judging.protocol)
    protocol = study.judging.protocol if study.judging is not None else ""
    table = calibration.agreement(found, protocol) if found else []
    return [*agreement_lines(table, protocol), *provenance_lines()]
