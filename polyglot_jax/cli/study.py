"""``polyglot-jax study list|run|report``: the four studies, one command each.

  polyglot-jax study list
  polyglot-jax study run polyglots --base=/models/Llama-2-7b-hf --root=/ckpt/polyglots \\
      --judge=openai:gpt-4o-mini --data_dir=/data/polyglot [--conditions='lora_*'] [--dry_run]
  polyglot-jax study run pinch --quick --root=/tmp/pinch --data_dir=/tmp/fixtures
  polyglot-jax study report polyglots --root=/ckpt/polyglots
  polyglot-jax study report polyglots --root=/ckpt/llama2_7b --root=/ckpt/falcon_7b \\
      --output_dir=/reports/polyglots [--pretraining_shares=falcon_shares.tsv]

``run`` expands the study's grid (:mod:`polyglot_jax.studies.catalog`) into runs under ``--root``
and runs train → infer (the study's prompts and decoding) → language ID → the study's LLM judge
(with ``--judge``) → structured benchmarks for each, then one report with the study's figure.
Finished stages are skipped, so a killed study resumes with the same command. ``--dry_run``
prints the plan (each stage's command, done or not); ``--tpu=NAME --zone=ZONE`` prints the
commands that run the pending stages on a TPU VM. ``--quick`` runs the study's quick conditions
on the tiny model at the tiniest size (e.g. on ``write_fixture_data`` data). A judge or
benchmark stage that left failed items (failed requests, unparsed verdicts, unscorable items)
ends ``run`` with status 1 before the report, one ``error:`` line per run and stage; with
``--allow_partial`` the report is written, with a warning of the cells that cover fewer items.
``--gin.NAME=VALUE`` reaches every stage whose gin files bind ``NAME`` (train: the model and
experiment files; infer: the study's infer file), e.g. ``--gin.EVAL_LANGUAGES="['en','fi']"`` or
``--gin.MAX_NEW_TOKENS=8`` the infer commands, ``--gin.LEARNING_RATE=1e-4`` the train commands;
a binding that no stage takes is refused.

``--cluster=ray[://HOST:PORT]`` runs the runs on Ray, several at once, each on ``--slice=v4-32``,
``--gpus_per_host=N --hosts=H`` or ``--cpus_per_run=C`` (:mod:`polyglot_jax.studies.cluster`).

``report`` over several roots (``--root`` repeated or ``--roots=R1,R2``, one model each, with
``--output_dir``) labels each root's runs by its model (:mod:`~polyglot_jax.studies.roots`):
rows ``llama2_7b/lora_k3``, a line or bar per model; roots of another study are refused.
``--seeds=0,1,2`` (``run`` and ``report``) runs each condition once per seed (``SEED`` of
training and decoding; runs ``<condition>_seed<s>``): the report pools the seeds, shows their
spread (mean ± std) and tests differences over prompts × seeds.
``--pretraining_shares=TSV`` (``run`` and ``report``) gives the base model's per-language
pretraining shares to the report's correlations and to the tuning vs. evaluation language
summary of monolingual runs (:mod:`~polyglot_jax.studies.transfer`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils, storage
from polyglot_jax.cli import common
from polyglot_jax.errors import ConfigError, MissingFileError, PartialResultsError
from polyglot_jax.evaluation import analysis
from polyglot_jax.studies import catalog, execute, grid, runner
from polyglot_jax.studies.plan import Options, Planner


def _study(name: str) -> catalog.Study:
    if name not in catalog.STUDIES:
        raise ConfigError(f"unknown study {name!r}; known: {', '.join(catalog.STUDIES)}")
    return catalog.STUDIES[name]


def _seeds(text: str | None) -> tuple[int, ...]:
    """``--seeds=0,1,2`` as integers (none: one run per condition, as named)."""
    try:
        return tuple(int(s) for s in (text or "").split(",") if s.strip())
    except ValueError:
        raise ConfigError(
            f"--seeds={text}: expected comma-separated integers, e.g. 0,1,2"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    gin = gin_utils.parse_args(argv)  # --gin.NAME=VALUE: to every stage whose files bind NAME
    parser = gin_utils.ArgumentParser(prog="polyglot-jax study", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["list", "run", "report"])
    parser.add_argument("name", nargs="?", help="the study (see: polyglot-jax study list)")
    parser.add_argument(
        "--root",
        action="append",
        default=[],
        help="parent folder of the runs and the report (report: repeat it, one root per model)",
    )
    parser.add_argument("--roots", help="report: comma-separated roots, one per model")
    parser.add_argument("--output_dir", help="report: where it goes (default: ROOT/report)")
    parser.add_argument(
        "--pretraining_shares", help="TSV of the base model's pretraining share per language"
    )
    parser.add_argument("--base", help="Hugging Face base model folder")
    parser.add_argument("--model", help="model gin file (default: the study's)")
    parser.add_argument("--conditions", help="comma-separated names or patterns (default: all)")
    parser.add_argument(
        "--seeds", help="comma-separated seeds: each condition once per seed (runs NAME_seedS)"
    )
    parser.add_argument("--judge", help="openai:MODEL[@BASE_URL] or local:CHECKPOINT_PATH")
    parser.add_argument("--judge_concurrency", type=int, default=16)
    parser.add_argument("--data_dir", help="study datasets (default: $POLYGLOT_JAX_DATA_DIR)")
    parser.add_argument("--benchmark_data", default="../shared/data")
    parser.add_argument("--benchmarks", choices=["run", "none"], default="run")
    parser.add_argument("--benchmark_limit", type=int, help="first N items of each task")
    parser.add_argument("--quick", action="store_true", help="tiny model, tiniest sizes")
    parser.add_argument("--dry_run", action="store_true", help="print the plan, run nothing")
    parser.add_argument(
        "--allow_partial",
        action="store_true",
        help="write the report even when judge or benchmark items failed (with a warning)",
    )
    parser.add_argument(
        "--cluster", help="ray or ray://HOST:PORT: the runs as Ray tasks, several at once"
    )
    parser.add_argument("--slice", help="Ray: each run's TPU slice, e.g. v4-32")
    parser.add_argument("--gpus_per_host", type=int, default=0, help="Ray: each run's GPUs")
    parser.add_argument("--hosts", type=int, default=1, help="Ray: each run's hosts")
    parser.add_argument("--cpus_per_run", type=float, default=1.0, help="Ray: each run's CPUs")
    parser.add_argument(
        "--max_retries", type=int, default=3, help="Ray: restarts of a stage whose worker died"
    )
    parser.add_argument("--tpu", help="TPU VM name: print the commands that run it there")
    parser.add_argument("--zone")
    parser.add_argument("--project")
    args = parser.parse_args(gin.rest)
    if args.action == "list":
        for study in catalog.STUDIES.values():
            print(f"{study.name:<14} {len(study.conditions):>3} runs  {study.title}")
        return 0
    root_list = [*args.root, *(r for r in (args.roots or "").split(",") if r)]
    if not args.name or not root_list:
        raise ConfigError(f"study {args.action}: give the study NAME and --root")
    study = _study(args.name)
    if args.action == "run" and (len(root_list) > 1 or args.output_dir):
        raise ConfigError("study run: one --root (several roots, and --output_dir, are for report)")
    if len(root_list) > 1 and not args.output_dir:
        raise ConfigError("study report: several roots need --output_dir (where the report goes)")
    if args.tpu and not args.zone:
        raise ConfigError("study run: --tpu needs --zone")
    demo = study.name.startswith("demo_")
    if args.action == "run" and not (args.base or args.quick or demo or args.dry_run):
        raise ConfigError(
            f"study run {study.name}: --base=HF_DIR is required (the pretrained model every run "
            f"starts from); without it the runs would train {study.model} from random weights"
        )
    options = Options(
        root=root_list[0],
        base=args.base,
        model=args.model,
        judge=args.judge,
        data_dir=args.data_dir,
        benchmark_data=args.benchmark_data,
        benchmarks=args.benchmarks == "run",
        benchmark_limit=args.benchmark_limit,
        quick=args.quick,
        bindings=tuple(b.replace(" = ", "=", 1) for b in gin.bindings),
        judge_concurrency=args.judge_concurrency,
        allow_partial=args.allow_partial,
        pretraining_shares=args.pretraining_shares,
        cluster=args.cluster,
        slice=args.slice,
        gpus_per_host=args.gpus_per_host,
        hosts=args.hosts,
        cpus_per_run=args.cpus_per_run,
        max_retries=args.max_retries,
        seeds=_seeds(args.seeds),
    )
    patterns = args.conditions.split(",") if args.conditions else None
    if args.pretraining_shares:  # a bad table fails before anything runs
        analysis.read_language_table(args.pretraining_shares, analysis.SHARE_COLUMN, 0.0, 100.0)
    if args.action == "report":
        for root in root_list:
            if not storage.as_path(root).is_dir():
                raise MissingFileError(f"study report {study.name}: --root {root} does not exist")
        conditions = grid.select(study, patterns, args.quick, options.seeds)
        if args.output_dir:
            shares = args.pretraining_shares
            print(
                execute.write_models_report(study, root_list, conditions, args.output_dir, shares)
            )
        else:
            print(execute.write_report(Planner(study, options), conditions))
        return 0
    if args.judge:
        from polyglot_jax.clients import backends

        backends.parse_spec(args.judge)  # a bad spec fails before anything runs
    vm = runner.TPU(args.tpu, args.zone, args.project) if args.tpu else None
    try:
        print(runner.run(study, options, patterns, args.dry_run, vm))
    except PartialResultsError as e:
        for line in e.lines:
            print(f"error: {line}", file=sys.stderr)
        print("error: no report: run again to retry them, or pass --allow_partial", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
