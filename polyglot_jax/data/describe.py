"""``polyglot-jax data describe MIXTURE``: examples and tokens per language of a mixture.

Counts one pass over the mixture's tasks (the recipe's exact selection): examples, tokens,
trained (response) tokens, and examples longer than ``--length`` that packing would truncate.
"""

from __future__ import annotations

import collections

import numpy as np

from polyglot_jax.data import pipeline, preprocessors

COLUMNS = ("examples", "tokens", "target_tokens", "over_length")


def describe(name: str, split: str = "train", length: int = 512) -> dict[str, dict[str, int]]:
    """Per language: examples, tokens, target tokens and examples over ``length`` tokens."""
    task_or_mixture = pipeline.get_mixture_or_task(name)
    tasks = getattr(task_or_mixture, "tasks", [task_or_mixture])
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for task in tasks:
        ds = task.get_dataset(None, split=split, shuffle=False, num_epochs=1)
        for ex in ds.as_numpy_iterator():
            row = rows[ex["lang"].decode("utf-8")]
            row["examples"] += 1
            row["tokens"] += len(ex["targets"])
            row["target_tokens"] += int(np.sum(ex["loss_mask"] == preprocessors.TARGET))
            row["over_length"] += int(len(ex["targets"]) > length)
    return {lang: {c: rows[lang][c] for c in COLUMNS} for lang in sorted(rows)}


def format_table(table: dict[str, dict[str, int]]) -> str:
    """A markdown table with a total row."""
    lines = ["| lang | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    totals = collections.Counter()
    for lang, row in table.items():
        totals.update(row)
        lines.append(f"| {lang} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    lines.append("| total | " + " | ".join(str(totals[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)
