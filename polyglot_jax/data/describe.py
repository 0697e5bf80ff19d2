"""``polyglot-jax data describe MIXTURE``: examples and tokens per language of a mixture.

Counts one pass over the mixture's tasks (the recipe's exact selection): examples, tokens,
trained (response) tokens, and examples longer than ``--length`` that packing would truncate.
``tokens=False`` (``--examples_only``) counts the examples alone, from the raw conversations
without tokenizing them: seconds instead of minutes for a mixture of tens of thousands.
"""

from __future__ import annotations

import collections

import numpy as np

from polyglot_jax.data import chat_tasks, pipeline, preprocessors

COLUMNS = ("examples", "tokens", "target_tokens", "over_length")


def describe(
    name: str, split: str = "train", length: int = 512, tokens: bool = True
) -> dict[str, dict[str, int]]:
    """Per language: examples, tokens, target tokens and examples over ``length`` tokens
    (``tokens=False``: examples only)."""
    task_or_mixture = pipeline.get_mixture_or_task(name)
    tasks = getattr(task_or_mixture, "tasks", [task_or_mixture])
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    if not tokens:
        for task in tasks:
            read = getattr(task.source, "records", None)  # chat tasks: no tf.data pass
            for record in read(split) if read else chat_tasks.task_records(task, split):
                rows[record["lang"]]["examples"] += 1
        return {lang: {"examples": rows[lang]["examples"]} for lang in sorted(rows)}
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
    columns = [c for c in COLUMNS if any(c in row for row in table.values())] or list(COLUMNS)
    lines = ["| lang | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    totals = collections.Counter()
    for lang, row in table.items():
        totals.update(row)
        lines.append(f"| {lang} | " + " | ".join(str(row[c]) for c in columns) + " |")
    lines.append("| total | " + " | ".join(str(totals[c]) for c in columns) + " |")
    return "\n".join(lines)
