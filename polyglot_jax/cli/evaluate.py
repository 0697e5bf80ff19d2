"""Structured benchmarks entry point: ``polyglot-jax eval --checkpoint_path=... [...]``.

Scores XCOPA / XNLI (log-likelihood of the choices) and XQuAD (greedy answers, EM / F1) for
every requested language, writing ``<output_dir>/<task>.jsonl`` (one line per item),
``metrics.json`` and ``structured.jsonl`` (per-item rows that ``polyglot-jax report`` reads).
The checkpoint is a Hugging Face model directory (its tokenizer is used) or one of our runs
(the vocabulary comes from ``--mixture``, as for ``infer``).

  polyglot-jax eval --checkpoint_path=/ckpt/pinch40 --mixture=demo_pinch \\
      --benchmarks=xcopa,xquad --languages=et,sw,zh --split=test
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pathlib
import sys
from collections.abc import Sequence

from polyglot_jax import languages
from polyglot_jax.cli import common
from polyglot_jax.data import pipeline, vocab
from polyglot_jax.errors import ConfigError
from polyglot_jax.evaluation.benchmarks import scoring
from polyglot_jax.inference import generate
from polyglot_jax.models import Decoder, hf

log = logging.getLogger(__name__)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="polyglot-jax eval", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint_path", required=True, help="HF model dir or run dir")
    parser.add_argument("--benchmarks", default="xcopa,xnli,xquad")
    parser.add_argument("--languages", required=True, help="comma-separated language codes")
    parser.add_argument("--split", default="test")
    parser.add_argument("--data_dir", default="../shared/data")
    parser.add_argument("--mixture", help="task or mixture whose vocabulary a run uses")
    parser.add_argument("--module", action="append", default=["tasks"])
    parser.add_argument("--output_dir", help="default: <checkpoint>/structured")
    parser.add_argument("--run", help="run name in the report (default: checkpoint folder name)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--limit", type=int, help="first N items of each task (smoke runs)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    checkpoint = pathlib.Path(args.checkpoint_path)
    if hf.is_hf_model_dir(checkpoint):
        config, params = hf.load_model_dir(checkpoint)
        model, vocabulary = Decoder(config), vocab.load_vocabulary(checkpoint)
    else:
        if not args.mixture:
            raise ConfigError(f"{checkpoint} is a run directory: pass --mixture for its vocabulary")
        for module in args.module:
            importlib.import_module(module)
        model, params = generate.load_model(checkpoint)
        vocabulary = pipeline.vocabulary_of(args.mixture)
    run = args.run or generate.run_dir_of(checkpoint)[0].name
    out = pathlib.Path(args.output_dir) if args.output_dir else checkpoint / "structured"
    langs = languages.validate(args.languages.split(","))
    results, rows = {}, []
    for benchmark in args.benchmarks.split(","):
        for lang in langs:
            task = scoring.register_task(benchmark, lang, args.data_dir)
            path = out / f"{task.name}.jsonl"
            metrics = scoring.evaluate(
                task.name,
                args.split,
                model,
                params,
                vocabulary,
                path,
                args.batch_size,
                args.max_new_tokens,
                args.limit,
            )
            results[task.name] = metrics
            rows += [{**json.loads(line), "run": run} for line in path.read_text().splitlines()]
            shown = ", ".join(f"{k} {v:.1f}" for k, v in metrics.items())
            log.info("%s %s %s: %s", run, task.name, args.split, shown)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    with (out / "structured.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"metrics: {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
