"""``polyglot-jax data describe|tag``: inspect a mixture, or split a dataset by language.

polyglot-jax data describe MIXTURE    examples and tokens per language of a mixture
polyglot-jax data tag INPUT --output_dir DIR [--identifier lingua|fasttext:MODEL.bin]
    [--threshold 0.5] [--format jsonl|guanaco|oasst1|...]
                                      one <name>.<lang>.jsonl file per identified language
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.cli import common


def _parser() -> argparse.ArgumentParser:
    from polyglot_jax.data import formats

    parser = gin_utils.ArgumentParser(prog="polyglot-jax data", description=__doc__.split("\n")[0])
    actions = parser.add_subparsers(dest="action", required=True, metavar="{describe,tag}")

    describe = actions.add_parser("describe", help="examples and tokens per language of a mixture")
    describe.add_argument("mixture", help="a registered task or mixture name")
    describe.add_argument("--split", default="train")
    describe.add_argument("--length", type=int, default=512, help="packing length to check")
    describe.add_argument(
        "--module", action="append", default=["tasks"], help="module(s) that register the mixture"
    )

    tag = actions.add_parser("tag", help="split a dataset into one file per identified language")
    tag.add_argument("input", help="the mixed-language dataset file")
    tag.add_argument("--output_dir", required=True, help="where <name>.<lang>.jsonl files go")
    tag.add_argument(
        "--identifier", default="lingua", help="'lingua' (default) or 'fasttext:MODEL.bin'"
    )
    tag.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="confidence in (0, 1] below which a conversation is undetermined",
    )
    tag.add_argument("--format", default="jsonl", choices=sorted(formats.READERS))
    tag.add_argument("--name", default=None, help="file name prefix (default: the input's)")
    tag.add_argument(
        "--languages", default=None, help="lingua only: comma-separated candidate codes"
    )
    return parser


def _describe(args: argparse.Namespace) -> int:
    from polyglot_jax.data.describe import describe, format_table

    for module in args.module:
        common.import_tasks(module)
    print(format_table(describe(args.mixture, args.split, args.length)))
    return 0


def _tag(args: argparse.Namespace) -> int:
    from polyglot_jax.data import tag
    from polyglot_jax.evaluation import langid

    tag.check_threshold(args.threshold)
    candidates = args.languages.split(",") if args.languages else None
    identifier = langid.make_identifier(args.identifier, candidates)
    summary = tag.tag(
        args.input, args.output_dir, identifier, args.threshold, args.format, args.name
    )
    print(tag.format_table(summary))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return _describe(args) if args.action == "describe" else _tag(args)


if __name__ == "__main__":
    sys.exit(common.run(main))
