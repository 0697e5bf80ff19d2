"""``polyglot-jax report JUDGE_DIR ...``: tables, heatmaps and correlations from judge folders."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.cli import common
from polyglot_jax.evaluation.report import write_report


def main(argv: Sequence[str] | None = None) -> int:
    parser = gin_utils.ArgumentParser(
        prog="polyglot-jax report",
        description="Tables, heatmaps and correlations from judge folders.",
    )
    parser.add_argument("judge_dirs", nargs="+", help="judge folders or judgments.jsonl files")
    parser.add_argument("--output_dir", default="report")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    path = write_report(args.judge_dirs, args.output_dir)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
