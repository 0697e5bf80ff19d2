"""Judge entry point: ``python -m polyglot_jax.judge --outputs=RUN/infer [...]``.

Language identification of every response (agreement with the prompt's language) and chrF
against the reference answer. Writes ``judgments.jsonl`` and ``summary.json`` to
``--output_dir`` (default: ``judge`` beside the outputs folder).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

from polyglot_jax import cli_utils, languages
from polyglot_jax.evaluation import judging


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="polyglot-jax judge", description=__doc__.split("\n")[0])
    parser.add_argument("--outputs", nargs="+", required=True, help="infer JSONL files or folders")
    parser.add_argument("--output_dir", help="where judgments go (default: <outputs>/../judge)")
    parser.add_argument("--run", help="run name in the report (default: the run folder's name)")
    parser.add_argument(
        "--languages",
        help="comma-separated candidate languages for language ID (default: all detectable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    first = pathlib.Path(args.outputs[0])
    base = first if first.is_dir() else first.parent
    output_dir = pathlib.Path(args.output_dir) if args.output_dir else base.parent / "judge"
    run = args.run or base.parent.name
    candidates = languages.validate(args.languages.split(",")) if args.languages else None
    path = judging.judge_outputs(args.outputs, output_dir, run, candidates)
    summary = json.loads((output_dir / "summary.json").read_text())
    for lang, row in summary.items():
        print(
            f"{run} {lang}: n={row['n']} agreement={row['lang_agree']:.2f} chrF={row['chrf']:.1f}"
        )
    print(f"judgments: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_utils.run(main))
