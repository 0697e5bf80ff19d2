"""``polyglot-jax translate``: machine-translated parallel data, one JSONL file per language.

Reads ``{id, lang, messages}`` examples (``--format`` names any dataset reader) and writes
``<output_dir>/<name>.<lang>.jsonl`` for each of ``--languages`` with the same ids, roles and
turns. Code blocks, inline code, URLs and ``{placeholders}`` are never sent for translation;
every answer must keep them, stay within ``--max_length_ratio`` of the source's length and be
in the target language (lingua), else it is asked once more and then rejected: an example
with a rejected message is not written. ``--backend``: ``openai:MODEL[@BASE_URL]`` (key from
``$OPENAI_API_KEY``), ``google[:MODEL][@BASE_URL]`` (Cloud Translation v2, key from
``$GOOGLE_TRANSLATE_API_KEY``) or ``local:CHECKPOINT``. Translations are cached in SQLite
(``--db``, default ``<output_dir>/translations.sqlite``), so a re-run or a restarted run sends no
request for a finished message. Fails (status 2) when no example could be translated.

  polyglot-jax translate --input lima.en.jsonl --languages de,fi,zh \\
      --backend openai:gpt-4o-mini --output_dir data/lima_mt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.cli import common
from polyglot_jax.clients import backend_spec
from polyglot_jax.data import translate, translate_backends
from polyglot_jax.data.translate_text import Checks
from polyglot_jax.errors import ConfigError
from polyglot_jax.evaluation import langid


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command's flags, checked.

    Raises:
      ConfigError: an unknown flag, a missing or malformed value (the message names the flag).
    """
    parser = gin_utils.ArgumentParser(
        prog="polyglot-jax translate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--input", required=True, help="examples to translate")
    parser.add_argument("--format", default="jsonl", help="dataset reader (default: jsonl)")
    parser.add_argument("--languages", required=True, help="comma-separated target languages")
    parser.add_argument("--backend", required=True, help=translate_backends.SPEC_FORMS)
    parser.add_argument("--output_dir", required=True, help="where <name>.<lang>.jsonl go")
    parser.add_argument("--name", help="output files' stem (default: the input's)")
    parser.add_argument(
        "--only",
        default="all",
        help="all (default), or user / assistant: translate those turns only",
    )
    parser.add_argument("--max_length_ratio", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument(
        "--max_retries", type=int, default=5, help="extra attempts after 429, 5xx, timeouts"
    )
    parser.add_argument("--db", help="SQLite cache (default: <output_dir>/translations.sqlite)")
    parser.add_argument(
        "--retry_rejected", action="store_true", help="ask again for cached rejections"
    )
    parser.add_argument(
        "--mixture", help="local backend: the vocabulary's task or mixture (default: recorded)"
    )
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    for flag, low in (("concurrency", 1), ("max_retries", 0)):
        if getattr(args, flag) < low:
            raise ConfigError(f"--{flag} must be at least {low}, got {getattr(args, flag)}")
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be positive, got {args.timeout}")
    if not args.max_length_ratio > 1:
        raise ConfigError(f"--max_length_ratio must be above 1, got {args.max_length_ratio}")
    if args.only not in translate.ROLES:
        raise ConfigError(f"--only {args.only!r}: expected one of {', '.join(translate.ROLES)}")
    targets = [t.strip() for t in args.languages.split(",") if t.strip()]
    if not targets:
        raise ConfigError("--languages: no language given")
    args.languages = targets
    # a bad spec fails before any file is read
    args.backend = backend_spec.parse_spec(args.backend, "--backend", translate_backends.KINDS)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``translate``; returns the exit status.

    Raises:
      JobFailedError: not one example could be translated (each reason counted).
    """
    args = parse(sys.argv[1:] if argv is None else argv)

    def backend() -> translate_backends.Translator:
        return translate_backends.from_spec(
            args.backend,
            concurrency=args.concurrency,
            timeout=args.timeout,
            max_retries=args.max_retries,
            mixture_or_task_name=args.mixture,
        )

    result = translate.translate_file(
        args.input,
        args.output_dir,
        args.languages,
        backend,
        Checks(langid.detect, args.max_length_ratio),
        name=args.name,
        fmt=args.format,
        only=args.only,
        db=args.db,
        retry_rejected=args.retry_rejected,
        progress=not args.no_progress,
    )
    print(translate.format_table(result))
    if result.reasons:
        shown = ", ".join(f"{r} x{n}" for r, n in result.reasons.most_common())
        print(f"rejected: {shown}")
    print(f"requests sent: {result.requests}")
    for path in result.paths.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
