"""The study runner: a study's grid run stage by stage, skipping what is done.

:func:`run` prints the plan (``dry_run``), prints the commands for a TPU VM (``tpu``: training,
inference and benchmarks on every worker, judging and the report here), or runs every pending
stage of every run in this process, then the report with the study's figure. ``<root>/study.json``
lists the runs and their commands. A stage that fails stops the study with its error; started
again, the study skips every finished stage (see :mod:`~polyglot_jax.studies.plan`). A judge or
benchmark stage that left failed items stops the study before its report, naming each; with
``allow_partial`` they are logged and the report (which warns of them) is written.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import time
from collections.abc import Sequence

from polyglot_jax import storage
from polyglot_jax.errors import ConfigError, PartialResultsError
from polyglot_jax.launch import tpu as tpu_lib
from polyglot_jax.studies import compute, execute, fidelity, preflight
from polyglot_jax.studies.grid import Condition, Study, select
from polyglot_jax.studies.plan import Options, Planner, Stage, read_state, write_state

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TPU:
    """A TPU VM that runs the accelerator stages (``polyglot-jax tpu create`` makes one)."""

    name: str
    zone: str
    project: str | None = None


ON_ACCELERATOR = compute.ON_ACCELERATOR  # cluster.ON_ACCELERATOR
RECORDED = ON_ACCELERATOR  # stages whose command a run records (no credentials in them)


def _previous(planner: Planner, stage: Stage) -> str | None:
    if stage.name not in RECORDED:
        return None
    return read_state(planner.run_dir(stage.run)).get("commands", {}).get(stage.name)


def changed(planner: Planner, stage: Stage) -> str | None:
    """How a done stage's recorded command differs from the planned one (None: it does not).

    A finished stage is skipped by its outputs; one made by another command (another
    ``--gin.MAX_NEW_TOKENS``, ``--gin.EVAL_LANGUAGES``, learning rate) must not be skipped
    silently.
    """
    previous = _previous(planner, stage)
    if previous is None or previous == stage.command or not stage.done():
        return None
    old = shlex.split(previous)
    now = " ".join(a for a in stage.argv if a not in old) or "-"
    was = " ".join(a for a in old if a not in stage.argv) or "-"
    return f"now {now}, was {was}"


def record(
    planner: Planner,
    stage: Stage,
    began: float | None = None,
    ended: float | None = None,
    node: str = "local",
) -> None:
    """Writes the finished stage's command and when and where it ran (``intervals``: wall
    clock seconds, the node) into the run's ``study_state.json``."""
    run_dir = planner.run_dir(stage.run)
    state = read_state(run_dir)
    intervals = dict(state.get("intervals", {}))
    if began is not None and ended is not None:
        intervals[stage.name] = [began, ended, node]
    if stage.name in RECORDED:
        commands = {**state.get("commands", {}), stage.name: stage.command}
        write_state(run_dir, commands=commands, intervals=intervals)
    else:
        write_state(run_dir, intervals=intervals)


def status(planner: Planner, stage: Stage) -> str:
    if stage.note:
        return f"skip ({stage.note})"
    if changed(planner, stage):
        return "changed"
    return "done" if stage.done() else "todo"


def plan_lines(study: Study, planner: Planner, conditions: Sequence[Condition]) -> list[str]:
    """The plan: every run's stages with their state and exact command."""
    lines = [
        f"# study {study.name}: {study.title}",
        f"# {len(conditions)} runs under {planner.root}, model {planner.model}",
    ]
    differences = [line for line in fidelity.lines(study.name) if line.startswith("- ")]
    if differences:
        lines.append(
            f"# differences from the paper (gin_configs/studies/{study.name}/FIDELITY.md): "
            f"{len(differences)}"
        )
        lines += [f"#   {line[2:]}" for line in differences]
    for i, condition in enumerate(conditions, start=1):
        lines.append(f"## [{i}/{len(conditions)}] {condition.name}")
        for stage in planner.stages(condition):
            lines.append(f"{stage.name:<10} [{status(planner, stage)}] {stage.command}")
    report = planner.report_stage(conditions)
    lines.append(f"## report [{status(planner, report)}] {report.command}")
    return lines


def tpu_commands(planner: Planner, conditions: Sequence[Condition], vm: TPU) -> list[str]:
    """The pending stages as commands: accelerator stages on every worker of ``vm``."""
    flags = [f"--name={vm.name}", f"--zone={vm.zone}"]
    flags += [f"--project={vm.project}"] if vm.project else []
    lines = []
    for condition in conditions:
        lines.append(f"# {condition.name}")
        for stage in planner.stages(condition):
            if stage.note or stage.done():
                continue
            if stage.name == "train":
                cmds, _ = tpu_lib.commands(["train", *flags, "--", *stage.argv[3:]])
                lines += [shlex.join(c) for c in cmds]
            elif stage.name in ON_ACCELERATOR:
                remote = f"cd {tpu_lib.REMOTE_DIR} && JAX_COORDINATOR_ADDRESS=auto "
                remote += shlex.join(["python", *stage.argv[1:]])
                ssh = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", vm.name, f"--zone={vm.zone}"]
                ssh += [f"--project={vm.project}"] if vm.project else []
                lines.append(shlex.join([*ssh, "--worker=all", f"--command={remote}"]))
            else:
                lines.append(stage.command)
    lines.append(planner.report_stage(conditions).command)
    return lines


def write_listing(study: Study, planner: Planner, conditions: Sequence[Condition]) -> None:
    runs = [
        {
            "name": c.name,
            "model_dir": str(planner.run_dir(c.name)),
            "gin_file": c.gin_file,
            "overrides": dict(c.overrides),
            "stages": {s.name: s.command for s in planner.stages(c)},
        }
        for c in conditions
    ]
    storage.write_json(planner.root / "study.json", {"study": study.name, "runs": runs})


def refuse_changed(planner: Planner, stage: Stage, where: str) -> None:
    """Refuses a stage whose outputs another command made (noted stages are never run).

    Raises:
      ConfigError: naming the stage, its outputs and what differs.
    """
    difference = None if stage.note else changed(planner, stage)
    if difference:
        raise ConfigError(
            f"{where}: {stage.outputs} was made by another command ({difference}); "
            "remove it to redo the stage, or use another --root"
        )


def run(
    study: Study,
    options: Options,
    patterns: Sequence[str] | None = None,
    dry_run: bool = False,
    tpu: TPU | None = None,
) -> str:
    """Runs (or prints) a study; returns the plan, the TPU commands or the report summary.

    Raises:
      ConfigError: a command-line binding that no stage takes.
      PartialResultsError: a judge or benchmark stage left failed items (each run, stage and
        count named) and ``options.allow_partial`` is off; the report is not written.
      JobFailedError: with ``options.cluster``, runs whose stages failed (each named).
    """
    conditions = select(study, patterns, options.quick, options.seeds)
    planner = Planner(study, options)
    planner.check_bindings(conditions)
    if dry_run:
        return "\n".join(plan_lines(study, planner, conditions))
    if tpu is not None:
        return "\n".join(tpu_commands(planner, conditions, tpu))
    write_listing(study, planner, conditions)
    for i, condition in enumerate(conditions, start=1):  # a cheap refusal before any check
        for stage in planner.stages(condition):
            refuse_changed(planner, stage, f"[{i}/{len(conditions)}] {condition.name} {stage.name}")
    preflight.check(planner, conditions)  # chat framing and contamination, before training
    start = time.perf_counter()
    if options.cluster is not None:  # the runs on Ray, several at once
        from polyglot_jax.studies import cluster

        cluster.run(planner, conditions, changed, record)
        return finish(study, planner, conditions, start)
    for i, condition in enumerate(conditions, start=1):
        for stage in planner.stages(condition):
            where = f"[{i}/{len(conditions)}] {condition.name} {stage.name}"
            if stage.note:
                log.info("%s: skipped (%s)", where, stage.note)
                continue
            refuse_changed(planner, stage, where)
            if stage.done():
                log.info("%s: done, skipped", where)
                continue
            log.info("%s: %s", where, stage.command)
            began = time.time()
            execute.STAGES[stage.name](planner, condition, stage)
            compute.record_devices(planner.run_dir(stage.run), stage.name)
            record(planner, stage, began, time.time())
            log.info("%s: finished in %.0f s", where, time.time() - began)
    return finish(study, planner, conditions, start)


def finish(study: Study, planner: Planner, conditions: Sequence[Condition], start: float) -> str:
    """After every run's stages: stops at failed items (unless ``allow_partial``), else writes
    the report (skipped when done); returns its summary.

    Raises:
      PartialResultsError: as :func:`run`.
    """
    options = planner.options
    failed = [line for c in conditions for line in execute.failed_items(planner, c)]
    if failed and not options.allow_partial:
        raise PartialResultsError(failed)
    for line in failed:
        log.warning("%s; reported anyway (--allow_partial)", line)
    report = planner.report_stage(conditions)
    if report.done():
        log.info("report: done, skipped")
        return (planner.root / "report" / "study.md").read_text()
    summary = execute.write_report(planner, conditions)
    log.info(
        "study %s: %d runs in %.0f s; report %s",
        study.name,
        len(conditions),
        time.perf_counter() - start,
        planner.root / "report",
    )
    return summary
