"""Judge entry point: ``python -m polyglot_jax.judge --outputs=RUN/infer [...]``.

``--protocol=langid`` (default): language identification of every response (agreement with the
prompt's language) and chrF against the reference; writes ``judgments.jsonl`` and
``summary.json``. ``--protocol=pairwise|single|mtbench|facets`` with ``--judge``
(``openai:MODEL[@BASE_URL]``, key from ``$OPENAI_API_KEY``, or ``local:CHECKPOINT``) writes
``<protocol>.jsonl``; pairwise needs ``--baseline`` outputs. Output goes to ``--output_dir``
(default: ``judge`` beside the outputs folder); judgments are cached in SQLite there.

  python -m polyglot_jax.judge --outputs /ckpt/pinch40/infer --protocol=pairwise \\
      --judge=openai:gpt-4o --baseline /ckpt/mono_en/infer --language_gate
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

from polyglot_jax import languages
from polyglot_jax.cli import common
from polyglot_jax.errors import ConfigError
from polyglot_jax.evaluation.judges import language, protocols, runner
from polyglot_jax.inference import backends


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="polyglot-jax judge", description=__doc__.split("\n")[0])
    parser.add_argument("--outputs", nargs="+", required=True, help="infer JSONL files or folders")
    parser.add_argument("--output_dir", help="where judgments go (default: <outputs>/../judge)")
    parser.add_argument("--run", help="run name in the report (default: the run folder's name)")
    parser.add_argument(
        "--languages",
        help="comma-separated candidate languages for language ID (default: all detectable)",
    )
    parser.add_argument(
        "--protocol", default="langid", choices=["langid", *sorted(protocols.PROTOCOLS)]
    )
    parser.add_argument("--judge", help="openai:MODEL[@BASE_URL] or local:CHECKPOINT_PATH")
    parser.add_argument("--baseline", nargs="*", default=[], help="baseline outputs (pairwise)")
    parser.add_argument(
        "--language_gate",
        action="store_true",
        help="score 0 when the response is not in the prompt's language",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--db", help="SQLite judgment cache (default: <output_dir>/judgments.sqlite)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    first = pathlib.Path(args.outputs[0])
    base = first if first.is_dir() else first.parent
    output_dir = pathlib.Path(args.output_dir) if args.output_dir else base.parent / "judge"
    run = args.run or base.parent.name
    candidates = languages.validate(args.languages.split(",")) if args.languages else None
    if args.protocol != "langid":
        if not args.judge:
            raise ConfigError(f"--protocol={args.protocol} needs --judge")
        kwargs = {"concurrency": args.concurrency} if args.judge.startswith("openai:") else {}
        backend = backends.from_spec(args.judge, **kwargs)
        path = runner.llm_judge_outputs(
            args.outputs,
            output_dir,
            run,
            args.protocol,
            backend,
            args.baseline,
            args.db,
            args.language_gate,
        )
        results = [json.loads(line) for line in path.read_text().splitlines()]
        ok = [r for r in results if r["status"] == "ok"]
        mean = sum(r["score"] for r in ok) / len(ok) if ok else float("nan")
        print(f"{run} {args.protocol}: {len(ok)}/{len(results)} judged, mean score {mean:.3f}")
        print(f"judgments: {path}")
        return 0
    path = language.judge_outputs(args.outputs, output_dir, run, candidates)
    summary = json.loads((output_dir / "summary.json").read_text())
    for lang, row in summary.items():
        print(
            f"{run} {lang}: n={row['n']} agreement={row['lang_agree']:.2f} chrF={row['chrf']:.1f}"
        )
    print(f"judgments: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
