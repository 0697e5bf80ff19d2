"""Structured benchmarks entry point: ``polyglot-jax eval --checkpoint_path=... [...]``.

Scores XCOPA / XNLI / X-CSQA (log-likelihood of the choices; X-CSQA also length-normalised as
lm-evaluation-harness's ``acc_norm`` and ``acc_bytes``) and XQuAD (greedy answers, EM / F1) for
each benchmark's languages, writing ``<output_dir>/<task>.jsonl`` (one line per item),
``metrics.json`` and ``structured.jsonl`` (per-item rows that ``polyglot-jax report`` reads),
each atomically. The checkpoint is a run directory, one of its ``checkpoint_<step>`` folders or
a Hugging Face model directory, loaded as a ``ChatModel`` (whose docstring gives the one rule
for the vocabulary: ``--mixture`` only serves a run that records none).
Outputs go to ``<run>/structured`` by default, never inside a checkpoint.

``--benchmarks`` names each benchmark with its languages (``NAME:LANG+LANG``), or names
benchmarks that share the comma-separated ``--languages``; the two kinds may be mixed.

XQuAD is scored with the official SQuAD v1.1 normalisation (comparable with published XQuAD
numbers); ``--squad_normalization=mlqa`` uses MLQA's language-aware one instead.

  polyglot-jax eval --checkpoint_path=/ckpt/pinch40 --benchmarks=xcopa,xquad \\
      --languages=et,sw,zh --split=test
  polyglot-jax eval --checkpoint_path=/ckpt/k3 --benchmarks=xnli:en+de+es,xcopa:et+it
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils, storage
from polyglot_jax.cli import common
from polyglot_jax.errors import ConfigError
from polyglot_jax.evaluation.benchmarks import metrics, registry, suite
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.runtime.model import inference_mesh
from polyglot_jax.training import runs

log = logging.getLogger(__name__)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line of ``polyglot-jax eval``."""
    parser = gin_utils.ArgumentParser(prog="polyglot-jax eval", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint_path", required=True, help="run, checkpoint or HF dir")
    parser.add_argument(
        "--benchmarks",
        default=",".join(registry.DEFAULT_BENCHMARKS),
        help="comma-separated NAME:LANG+LANG (its own languages) or NAME (--languages); "
        f"default: {','.join(registry.DEFAULT_BENCHMARKS)} (the studies' benchmarks)",
    )
    parser.add_argument("--languages", help="comma-separated languages of NAME entries")
    parser.add_argument(
        "--split", help="split of every task (default: each benchmark's, X-CSQA validation)"
    )
    parser.add_argument("--data_dir", default="../shared/data")
    parser.add_argument(
        "--mixture", help="task or mixture giving the vocabulary of a run that records none"
    )
    parser.add_argument("--module", action="append", default=["tasks"])
    parser.add_argument("--output_dir", help="default: <run>/structured")
    parser.add_argument("--run", help="run name in the report (default: the run folder name)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--limit", type=int, help="first N items of each task (smoke runs)")
    parser.add_argument(
        "--mesh_shape",
        default="1,-1,1",
        help="data,fsdp,model sizes of the device mesh the model is placed on (-1 fills)",
    )
    common.add_load_arguments(parser)
    parser.add_argument(
        "--squad_normalization",
        default="squad",
        choices=metrics.NORMALIZATIONS,
        help="XQuAD answer normalisation: official SQuAD v1.1 (default) or MLQA's",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluates one model on the structured benchmarks; exit status 0.

    Items that could not be scored (:func:`scoring.run_task`) are named in a ``warning:`` line.
    """
    args = parse(sys.argv[1:] if argv is None else argv)
    for flag, value in (
        ("--batch_size", args.batch_size),
        ("--max_new_tokens", args.max_new_tokens),
    ):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(
            f"--limit must be >= 1 (the first N items of each task), got {args.limit}"
        )
    tasks = suite.prepare(  # every data file is read (and checked) before the model loads
        registry.parse_tasks(args.benchmarks, args.languages),
        args.data_dir,
        registry.Options(args.squad_normalization),
        args.split,
    )
    source = runs.resolve(args.checkpoint_path)
    if source.run_dir is not None:
        for module in args.module:
            common.import_tasks(module)
    model = ChatModel.load(
        args.checkpoint_path,
        inference_mesh(common.mesh_shape(args.mesh_shape)),
        mixture_or_task_name=args.mixture if source.run_dir else None,
        dtype=args.dtype,
        quantization=args.quantization,
    )
    out = storage.as_path(args.output_dir) if args.output_dir else source.output_dir("structured")
    results = suite.evaluate(
        model,
        tasks,
        out,
        args.run or source.name,
        args.batch_size,
        args.max_new_tokens,
        args.limit,
    )
    failed = {name: int(m["failed"]) for name, m in results.items() if m.get("failed")}
    if failed:
        shown = ", ".join(f"{name} {n}" for name, n in failed.items())
        print(f"warning: {sum(failed.values())} benchmark items failed ({shown})", file=sys.stderr)
    print(f"metrics: {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
