"""``polyglot-jax data describe|tag|fetch``: inspect a mixture, split a dataset, download one.

polyglot-jax data describe [MIXTURE] [--gin_file=F --gin.MACRO=V ...] [--examples_only]
                                      examples and tokens per language of a mixture (the gin
                                      files' MIXTURE_OR_TASK_NAME when no name is given)
polyglot-jax data tag INPUT --output_dir DIR [--identifier lingua|fasttext:MODEL.bin]
    [--threshold 0.5] [--text first_user|whole] [--format jsonl|guanaco|oasst1|...]
                                      one <name>.<lang>.jsonl file per identified language
                                      (--text whole: every turn, as the Polyglots release)
polyglot-jax data fetch NAME --data_dir=DIR [--languages=en,de]
    [--identifier fasttext:lid201-model.bin] [--threshold 0.8]
                                      download a study dataset or evaluation set (pinned
                                      revision) into DIR in the project's layout; resumable;
                                      Guanaco is tagged as the Polyglots release did (whole
                                      conversation, top-1, >= 0.8; OpenLID to match it exactly)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.cli import common
from polyglot_jax.errors import JobFailedError, UserError


def _parser() -> argparse.ArgumentParser:
    from polyglot_jax.data import fetch, formats

    parser = gin_utils.ArgumentParser(prog="polyglot-jax data", description=__doc__.split("\n")[0])
    actions = parser.add_subparsers(dest="action", required=True, metavar="{describe,tag,fetch}")

    describe = actions.add_parser("describe", help="examples and tokens per language of a mixture")
    describe.add_argument(
        "mixture", nargs="?", help="a registered task or mixture (default: the gin files')"
    )
    describe.add_argument("--split", default="train")
    describe.add_argument("--length", type=int, default=512, help="packing length to check")
    describe.add_argument(
        "--examples_only", action="store_true", help="count examples without tokenizing them"
    )
    describe.add_argument(
        "--module", action="append", default=["tasks"], help="module(s) that register the mixture"
    )

    tag = actions.add_parser("tag", help="split a dataset into one file per identified language")
    tag.add_argument("input", help="the mixed-language dataset file")
    tag.add_argument("--output_dir", required=True, help="where <name>.<lang>.jsonl files go")
    _identifier_flags(tag, threshold=0.5)
    tag.add_argument(
        "--text",
        default="first_user",
        choices=("first_user", "whole"),
        help="what is identified: the first user turn (default, its first 1000 characters) "
        "or every turn with Guanaco's markers removed (the Polyglots release's way)",
    )
    tag.add_argument("--format", default="jsonl", choices=sorted(formats.READERS))
    tag.add_argument("--name", default=None, help="file name prefix (default: the input's)")
    tag.add_argument(
        "--languages", default=None, help="lingua only: comma-separated candidate codes"
    )

    get = actions.add_parser("fetch", help="download a dataset into the data folder's layout")
    get.add_argument("name", choices=fetch.names(), metavar="NAME", help=", ".join(fetch.names()))
    get.add_argument("--data_dir", required=True, help="the data folder (DATA_DIR)")
    get.add_argument("--languages", default=None, help="comma-separated codes (default: all)")
    get.add_argument("--cache_dir", default=None, help="the datasets download cache")
    _identifier_flags(
        get,
        None,
        "guanaco: language of each whole conversation, as `data tag --text whole`; the release "
        "used OpenLID, fasttext:lid201-model.bin (https://data.statmt.org/lid/lid201-model.bin.gz)",
    )
    return parser


def _identifier_flags(
    parser: argparse.ArgumentParser, threshold: float | None, what: str = ""
) -> None:
    parser.add_argument(
        "--identifier",
        default="lingua",
        help=f"{what + ': ' if what else ''}'lingua' (default) or 'fasttext:MODEL.bin'",
    )
    shown = f"default {threshold}" if threshold is not None else "default: the dataset's, 0.8"
    parser.add_argument(
        "--threshold",
        type=float,
        default=threshold,
        help=f"confidence in (0, 1] below which a conversation is undetermined ({shown})",
    )


def _describe(args: argparse.Namespace, gin_args: gin_utils.GinArgs) -> int:
    from polyglot_jax.data.describe import describe, format_table

    for module in args.module:
        common.import_tasks(module)
    name = args.mixture
    if gin_args.files or gin_args.bindings:
        gin_utils.configure(gin_args, finalize=False)  # a run's MODEL_DIR is not needed here
        name = name or _gin_mixture()
    if name is None:
        raise gin_utils.GinError(
            "data describe: name a task or mixture, or give the --gin_file that sets "
            "MIXTURE_OR_TASK_NAME"
        )
    print(format_table(describe(name, args.split, args.length, not args.examples_only)))
    return 0


def _gin_mixture() -> str:
    """The gin config's ``MIXTURE_OR_TASK_NAME``, registering its recipe when it is one."""
    import gin

    try:
        value = gin.query_parameter("%MIXTURE_OR_TASK_NAME")
    except ValueError:
        raise gin_utils.GinError(
            "data describe: the gin files set no MIXTURE_OR_TASK_NAME; name a task or mixture"
        ) from None
    if isinstance(value, gin.config.ConfigurableReference):
        try:
            value = value.scoped_configurable_fn()
        except UserError:
            raise
        except (ValueError, TypeError, RuntimeError) as e:  # gin.REQUIRED macros are unset
            raise gin_utils.GinError(f"gin: {str(e).strip().splitlines()[0]}") from None
    return value


def _tag(args: argparse.Namespace) -> int:
    from polyglot_jax.data import tag
    from polyglot_jax.evaluation import langid

    tag.check_threshold(args.threshold)
    candidates = args.languages.split(",") if args.languages else None
    identifier = langid.make_identifier(args.identifier, candidates)
    summary = tag.tag(
        args.input,
        args.output_dir,
        identifier,
        args.threshold,
        args.format,
        args.name,
        text=args.text,
    )
    print(tag.format_table(summary))
    if not summary["total"]:
        raise JobFailedError(
            f"data tag: no conversation was read from {args.input} (--format {args.format}); "
            f"is it empty or of another format?"
        )
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from polyglot_jax.data import fetch, tag
    from polyglot_jax.evaluation import langid

    languages = (
        [c.strip() for c in args.languages.split(",") if c.strip()] if args.languages else None
    )
    identifier = None
    if args.name == "guanaco":
        if args.threshold is not None:
            tag.check_threshold(args.threshold)
        identifier = langid.make_identifier(args.identifier)
    rows = fetch.fetch(
        args.name,
        args.data_dir,
        languages,
        identifier,
        args.cache_dir,
        threshold=args.threshold,
    )
    print(fetch.format_rows(rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    gin_args = gin_utils.parse_args(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(gin_args.rest)
    if args.action != "describe" and (gin_args.files or gin_args.bindings):
        raise gin_utils.GinError(f"data {args.action} takes no gin flags")
    if args.action == "describe":
        return _describe(args, gin_args)
    return _tag(args) if args.action == "tag" else _fetch(args)


if __name__ == "__main__":
    sys.exit(common.run(main))
