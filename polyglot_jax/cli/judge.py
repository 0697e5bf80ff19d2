"""Judge entry point: ``python -m polyglot_jax.judge --outputs=RUN/infer [...]``.

``--protocol=langid`` (default): language identification of every response (agreement with the
prompt's language) and chrF against the reference; writes ``judgments.jsonl`` and
``summary.json``. Language ID (agreement, and ``--language_gate`` of an LLM judge) uses one
identifier, ``--identifier=lingua`` (default) or ``fasttext:MODEL.bin`` (OpenLID, GlotLID), with
every language it knows as a candidate: an answer in another language, evaluation language or
not, does not agree. ``--languages`` restricts lingua's candidates; every judgment records the
identifier and its candidate set. ``--protocol=pairwise|single|mtbench|facets`` with ``--judge``
(``openai:MODEL[@BASE_URL]``, key from ``$OPENAI_API_KEY``, or ``local:CHECKPOINT``) writes
``<protocol>.jsonl``; pairwise needs ``--baseline`` outputs; ``--prompt_file`` asks with another
prompt (a file, or a shipped study rubric such as ``better_alpaca_1to3``). Output goes to
``--output_dir`` (default: ``judge`` beside the outputs folder); judgments are cached in SQLite
there, and one judge process at a time may use a cache. A local judge's vocabulary is the
mixture its run recorded, or ``--judge_mixture``. The command fails (status 2) when no item
could be judged, naming each failure reason with its count; partial failures are counted in a
``warning:`` line (status 0).

  python -m polyglot_jax.judge --outputs /ckpt/pinch40/infer --protocol=pairwise \\
      --judge=openai:gpt-4o --baseline /ckpt/mono_en/infer --language_gate

Human calibration (:mod:`~polyglot_jax.evaluation.judges.calibration`): ``judge export`` writes
a seeded sample per language of a run's (``RUN/judge``) or a study root's judged items as a CSV
for annotators; ``judge import`` reads it back filled in, stores the labels beside the judge
output and prints the judge-human agreement per language (kappa of verdicts, Spearman's rho of
scores). A judging command line starts with a flag, so these two words cannot be mistaken for
one.

  polyglot-jax judge export /ckpt/pinch40/judge --protocol=single --per_language=20 \\
      --output=sample.csv [--html=sample.html] [--seed=0] [--baseline=...]
  polyglot-jax judge import sample.csv /ckpt/pinch40/judge --protocol=single [--skip_bad]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils, languages, storage
from polyglot_jax.cli import common
from polyglot_jax.clients import backend_spec, backends
from polyglot_jax.errors import ConfigError, JobFailedError, MissingFileError
from polyglot_jax.evaluation import langid
from polyglot_jax.evaluation.judges import calibration, language, protocols, runner


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command's flags, checked.

    Raises:
      ConfigError: an unknown flag, a missing or malformed value (the message names the flag).
    """
    parser = gin_utils.ArgumentParser(prog="polyglot-jax judge", description=__doc__.split("\n")[0])
    parser.add_argument("--outputs", nargs="+", required=True, help="infer JSONL files or folders")
    parser.add_argument("--output_dir", help="where judgments go (default: <outputs>/../judge)")
    parser.add_argument("--run", help="run name in the report (default: the run folder's name)")
    parser.add_argument(
        "--identifier",
        default="lingua",
        help="language identifier for agreement and --language_gate: lingua or "
        "fasttext:MODEL.bin (default: lingua)",
    )
    parser.add_argument(
        "--languages",
        help="restrict lingua's candidate languages to these comma-separated codes, recorded "
        "with the judgments (default: every language lingua knows)",
    )
    parser.add_argument(
        "--protocol", default="langid", choices=["langid", *sorted(protocols.PROTOCOLS)]
    )
    parser.add_argument("--judge", help="openai:MODEL[@BASE_URL] or local:CHECKPOINT_PATH")
    parser.add_argument(
        "--judge_mixture",
        help="local judge: task or mixture whose vocabulary the run was trained with "
        "(default: the one the run recorded)",
    )
    parser.add_argument("--baseline", nargs="*", default=[], help="baseline outputs (pairwise)")
    parser.add_argument(
        "--prompt_file",
        help="judge prompt for the protocol: a file or a shipped prompt name, e.g. "
        "polyglots_helpfulness (default: the protocol's own)",
    )
    parser.add_argument(
        "--language_gate",
        action="store_true",
        help="score 0 when the response is not in the prompt's language",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument(
        "--max_retries", type=int, default=5, help="extra attempts after 429, 5xx, timeouts"
    )
    parser.add_argument(
        "--db", help="SQLite judgment cache (default: <output_dir>/judgments.sqlite)"
    )
    args = parser.parse_args(argv)
    for flag, low in (("concurrency", 1), ("max_retries", 0)):
        if getattr(args, flag) < low:
            raise ConfigError(f"--{flag} must be at least {low}, got {getattr(args, flag)}")
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be positive, got {args.timeout}")
    return args


def _counts(reasons: collections.Counter) -> str:
    return ", ".join(f"{reason} x{n}" for reason, n in reasons.most_common())


def _label_parser(command: str) -> gin_utils.ArgumentParser:
    parser = gin_utils.ArgumentParser(prog=f"polyglot-jax judge {command}")
    parser.add_argument(
        "--protocol", required=True, choices=sorted(protocols.PROTOCOLS), help="judge protocol"
    )
    return parser


def export_main(argv: Sequence[str]) -> int:
    """``judge export JUDGE_DIR --protocol=P --output=CSV``: a sample for annotators."""
    parser = _label_parser("export")
    parser.add_argument("judge_dir", help="a run's judge folder or a study root")
    parser.add_argument("--output", required=True, help="the CSV to write")
    parser.add_argument("--per_language", type=int, default=20, help="items per language")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("--baseline", nargs="*", default=[], help="baseline outputs (pairwise)")
    parser.add_argument("--html", help="also write the sample as an HTML table")
    args = parser.parse_args(argv)
    counts = calibration.export_sample(
        args.judge_dir,
        args.protocol,
        args.output,
        args.per_language,
        args.seed,
        args.baseline,
        args.html,
    )
    shown = ", ".join(f"{lang} {n}" for lang, n in counts.items())
    print(f"{sum(counts.values())} items ({shown}): {args.output}")
    allowed, _ = calibration.allowed_labels(args.protocol)
    print(f"labels: {allowed}")
    return 0


def import_main(argv: Sequence[str]) -> int:
    """``judge import CSV JUDGE_DIR --protocol=P``: stores labels, prints the agreement."""
    parser = _label_parser("import")
    parser.add_argument("csv", help="the filled CSV")
    parser.add_argument("judge_dir", help="the judge folder or study root it came from")
    parser.add_argument("--skip_bad", action="store_true", help="skip and count bad rows")
    args = parser.parse_args(argv)
    if not storage.as_path(args.csv).exists():
        raise MissingFileError(f"{args.csv}: no such file")
    counts, table = calibration.import_labels(
        args.csv, args.judge_dir, args.protocol, args.skip_bad
    )
    print(
        f"{counts['labelled']} labels stored, {counts['unlabelled']} rows unlabelled, "
        f"{counts['bad']} bad rows skipped"
    )
    for row in table:
        print(
            f"{row['lang']}: n={row['n']} {row['statistic']}={row['value']:.3f} "
            f"exact={row['exact']:.2f}"
        )
    return 0


LABEL_COMMANDS = {"export": export_main, "import": import_main}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``judge`` (or ``judge export`` / ``judge import``); returns the exit status.

    Raises:
      JobFailedError: an LLM judge judged no item (the message counts each failure reason).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LABEL_COMMANDS:
        return LABEL_COMMANDS[argv[0]](argv[1:])
    args = parse(argv)
    for path in args.baseline:
        if not storage.as_path(path).exists():
            raise MissingFileError(f"--baseline {path}: no such file or folder of outputs")
    first = storage.as_path(args.outputs[0])
    base = first if first.is_dir() else first.parent
    output_dir = storage.as_path(args.output_dir) if args.output_dir else base.parent / "judge"
    run = args.run or base.parent.name
    try:
        candidates = languages.validate(args.languages.split(",")) if args.languages else None
    except languages.UnknownLanguageError as e:
        raise ConfigError(f"--languages: {e}") from None
    identifier = None  # a fastText model loads only when language ID runs
    if args.protocol == "langid" or args.language_gate:
        identifier = langid.make_identifier(args.identifier, candidates)
    if args.protocol != "langid":
        if not args.judge:
            raise ConfigError(f"--protocol={args.protocol} needs --judge")
        spec = backend_spec.parse_spec(args.judge)  # a bad spec fails before any file is read

        def backend() -> backends.Backend:
            return backends.from_spec(
                spec,
                concurrency=args.concurrency,
                timeout=args.timeout,
                max_retries=args.max_retries,
                mixture_or_task_name=args.judge_mixture,
            )

        path = runner.llm_judge_outputs(
            args.outputs,
            output_dir,
            run,
            args.protocol,
            backend,
            args.baseline,
            args.db,
            args.language_gate,
            prompt_file=args.prompt_file,
            identifier=identifier,
        )
        results = [json.loads(line) for line in path.read_text().splitlines()]
        ok = [r for r in results if r["status"] == "ok"]
        failures = runner.failure_counts(results)
        if not ok:
            raise JobFailedError(
                f"all {len(results)} judge requests failed: {_counts(failures)} (see {path})"
            )
        mean = sum(r["score"] for r in ok) / len(ok)
        print(f"{run} {args.protocol}: {len(ok)}/{len(results)} judged, mean score {mean:.3f}")
        if identifier is not None:
            print(f"language ID: {identifier.description}")
        if failures:
            print(
                f"warning: {len(results) - len(ok)} of {len(results)} items not judged: "
                f"{_counts(failures)}",
                file=sys.stderr,
            )
        print(f"judgments: {path}")
        return 0
    path = language.judge_outputs(args.outputs, output_dir, run, identifier)
    summary = json.loads((output_dir / "summary.json").read_text())
    for lang, row in summary.items():
        print(
            f"{run} {lang}: n={row['n']} agreement={row['lang_agree']:.2f} chrF={row['chrf']:.1f}"
        )
    print(f"language ID: {identifier.description}")
    print(f"judgments: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
