"""``polyglot-jax data describe MIXTURE``: examples and tokens per language of a mixture.

Counts one pass over the mixture's tasks (the recipe's exact selection): examples, tokens,
trained (response) tokens, and examples longer than ``--length`` that packing would truncate.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import sys
from collections.abc import Sequence

import numpy as np
import seqio

from polyglot_jax import cli_utils
from polyglot_jax.data import preprocessors

COLUMNS = ("examples", "tokens", "target_tokens", "over_length")


def describe(name: str, split: str = "train", length: int = 512) -> dict[str, dict[str, int]]:
    """Per language: examples, tokens, target tokens and examples over ``length`` tokens."""
    task_or_mixture = seqio.get_mixture_or_task(name)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polyglot-jax data", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["describe"])
    parser.add_argument("mixture", help="a registered task or mixture name")
    parser.add_argument("--split", default="train")
    parser.add_argument("--length", type=int, default=512, help="packing length to check")
    parser.add_argument(
        "--module", action="append", default=["tasks"], help="module(s) that register the mixture"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for module in args.module:
        importlib.import_module(module)
    print(format_table(describe(args.mixture, args.split, args.length)))
    return 0


if __name__ == "__main__":
    sys.exit(cli_utils.run(main))
