"""``polyglot-jax report JUDGE_DIR ... [--outputs RUN/infer ...]``: tables, heatmaps,
correlations and scatter plots from judge, structured-benchmark and inference folders.

  polyglot-jax report /ckpt/*/judge /ckpt/*/structured --outputs /ckpt/*/infer \\
      --pretraining_shares=falcon_shares.tsv --output_dir=report
"""

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
    parser.add_argument(
        "judge_dirs", nargs="*", help="judge or structured folders, or judgments.jsonl files"
    )
    parser.add_argument(
        "--outputs",
        nargs="+",
        default=[],
        help="infer folders or files: their answers' surface metrics (length, repetition, "
        "answers cut at the limit) join the tables; the run is the folder holding infer/",
    )
    parser.add_argument(
        "--pretraining_shares",
        help="TSV 'lang<TAB>share_percent' of the base model's pretraining data "
        "(default: Llama 2's, Touvron et al. 2023, Table 10)",
    )
    parser.add_argument(
        "--typological_distances",
        help="TSV 'lang<TAB>syntactic' of distances to English (default: the shipped URIEL table)",
    )
    parser.add_argument("--output_dir", default="report")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.judge_dirs and not args.outputs:
        parser.error("nothing to report: pass judge or structured folders, or --outputs")
    path = write_report(
        args.judge_dirs,
        args.output_dir,
        outputs=args.outputs,
        pretraining_shares=args.pretraining_shares,
        typological_distances=args.typological_distances,
    )
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
