"""``polyglot-jax demo``: the whole pipeline on the embedded demo data, on CPU, in minutes.

Trains the tiny decoder on English-only and "pinch" data (22 of 68 English examples replaced by
translations, 2 per language; the full demo adds the uniform 12-language mixture), answers the
held-out prompts of all 12 languages with each model, judges the response language and chrF,
and writes a report with tables and heatmaps. Re-running with the same output folder resumes.

``--study=multi_k|pinch|budget`` runs a whole study grid in miniature through the study runner
(:mod:`polyglot_jax.studies`) and draws its curve: language agreement vs. the number of tuning
languages k (k = 1..6), vs. the number of multilingual examples (0 to 66 of 68), or per language
for English-only, downsampled (68 in all) and multilingual (68 x 12) tuning.
"""

from __future__ import annotations

import logging
import pathlib
import sys
import time
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.cli import common
from polyglot_jax.data import demo_build
from polyglot_jax.evaluation import report
from polyglot_jax.evaluation.judges import language
from polyglot_jax.inference import infer
from polyglot_jax.inference.config import InferConfig
from polyglot_jax.studies import catalog, runner
from polyglot_jax.studies.plan import Options
from polyglot_jax.training import config, loop

log = logging.getLogger(__name__)

FULL = {
    "mixtures": ("demo_en_only", "demo_pinch", "demo_uniform"),
    "steps": 300,
    "batch": 16,
    "max_new_tokens": 48,
}
QUICK = {"mixtures": ("demo_en_only", "demo_pinch"), "steps": 20, "batch": 8, "max_new_tokens": 16}
EVAL_MIXTURE = "demo_uniform"  # every language's held-out prompts


def run_demo(output_dir: str | pathlib.Path, quick: bool = False) -> pathlib.Path:
    """Trains, generates, judges and reports; returns the path of ``report.md``."""
    size = QUICK if quick else FULL
    out = pathlib.Path(output_dir).absolute()
    judge_dirs = []
    for i, mixture in enumerate(size["mixtures"], start=1):
        run_dir = out / mixture
        start = time.perf_counter()
        log.info("[%d/%d] training on %s -> %s", i, len(size["mixtures"]), mixture, run_dir)
        gin_utils.configure(
            gin_utils.GinArgs(
                files=["models/tiny.gin", "runs/finetune.gin"],
                bindings=[
                    f'MODEL_DIR = "{run_dir}"',
                    f'MIXTURE_OR_TASK_NAME = "{mixture}"',
                    f"TRAIN_STEPS = {size['steps']}",
                    f"BATCH_SIZE = {size['batch']}",
                ],
            )
        )
        result = loop.train(*config.from_gin())
        log.info(
            "[%d/%d] %s trained: loss %.3f (%.0f s); generating for %d languages",
            i,
            len(size["mixtures"]),
            mixture,
            result.metrics.get("loss", float("nan")),
            time.perf_counter() - start,
            len(demo_build.DEMO_LANGUAGES),
        )
        infer.infer(
            InferConfig(str(run_dir), EVAL_MIXTURE, max_new_tokens=size["max_new_tokens"]),
            progress=False,
        )
        judge_dir = run_dir / "judge"
        language.judge_outputs([run_dir / "infer"], judge_dir, mixture)
        judge_dirs.append(judge_dir)
    infer_dirs = [out / mixture / "infer" for mixture in size["mixtures"]]
    return report.write_report(judge_dirs, out / "report", outputs=infer_dirs)


DEMO_STUDIES = ("multi_k", "pinch", "budget")


def run_study(study: str, output_dir: str | pathlib.Path, quick: bool = False) -> str:
    """Runs the demo study ``study`` under ``<output_dir>/<study>``; returns its summary."""
    root = pathlib.Path(output_dir).absolute() / study
    return runner.run(catalog.STUDIES[f"demo_{study}"], Options(root=str(root), quick=quick))


def main(argv: Sequence[str] | None = None) -> int:
    parser = gin_utils.ArgumentParser(prog="polyglot-jax demo", description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", default="demo_output", help="where runs and report go")
    parser.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    parser.add_argument("--study", choices=DEMO_STUDIES, help="a whole study grid in miniature")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    if args.study:
        summary = run_study(args.study, args.output_dir, quick=args.quick)
        figure = pathlib.Path(args.output_dir).absolute() / args.study / "report" / "study.png"
        print(f"\n{summary}\nfigure: {figure}  ({time.perf_counter() - start:.0f} s)")
        return 0
    path = run_demo(args.output_dir, quick=args.quick)
    print(f"\nreport: {path}  ({time.perf_counter() - start:.0f} s)")
    print((path.parent / "report.md").read_text(encoding="utf-8").split("## chrF")[0])
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
