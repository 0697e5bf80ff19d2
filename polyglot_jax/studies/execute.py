"""Runs a study's stages in this process with the library functions their commands call.

``train`` and ``infer`` configure gin from the stage's own command line (so what runs is what
the plan prints) and call :func:`~polyglot_jax.training.loop.train` (with the configs gin binds)
and :func:`~polyglot_jax.inference.infer.infer`; ``langid`` and ``judge`` call the judge stage's
functions, ``benchmarks`` the benchmark scoring, ``report`` the report and the study figure.
"""

from __future__ import annotations

import collections
import json
import logging
import pathlib
from collections.abc import Sequence

from etils import epath

from polyglot_jax import gin_utils, storage
from polyglot_jax.clients import backends
from polyglot_jax.errors import JobFailedError
from polyglot_jax.evaluation import report, surface
from polyglot_jax.evaluation.benchmarks import suite
from polyglot_jax.evaluation.judges import language, runner
from polyglot_jax.inference import infer as infer_lib
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.runtime.model import inference_mesh
from polyglot_jax.studies import audit, calibration_section, figures, roots, trust
from polyglot_jax.studies.grid import Condition, Study
from polyglot_jax.studies.options import Options
from polyglot_jax.studies.plan import REPORT_CONDITIONS, Planner, Stage, write_state
from polyglot_jax.training import config, loop

log = logging.getLogger(__name__)


def _configure(stage: Stage) -> None:
    args = gin_utils.parse_args(stage.argv[3:])  # after "python -m polyglot_jax.<stage>"
    gin_utils.configure(args)


def train(planner: Planner, condition: Condition, stage: Stage) -> None:
    _configure(stage)
    result = loop.train(*config.from_gin(), progress=not planner.options.quick)
    write_state(planner.run_dir(condition.name), train_step=int(result.step))


def infer(planner: Planner, condition: Condition, stage: Stage) -> None:
    _configure(stage)
    result = infer_lib.infer(progress=not planner.options.quick)
    log.info("%s: %d new answers in %d files", condition.name, result.generated, len(result.files))


def langid(planner: Planner, condition: Condition, stage: Stage) -> None:
    run_dir = planner.run_dir(condition.name)
    language.judge_outputs([run_dir / "infer"], run_dir / "judge", condition.name)


def judge(planner: Planner, condition: Condition, stage: Stage) -> None:
    """The study's LLM judge; a stage with failed requests stays incomplete (asked again)."""
    run_dir, judging, options = (
        planner.run_dir(condition.name),
        planner.study.judging,
        planner.options,
    )
    baseline = planner.baseline(condition)
    baseline = [planner.run_dir(baseline) / "infer"] if baseline else []

    def backend() -> backends.Backend:
        return backends.from_spec(options.judge, concurrency=options.judge_concurrency)

    path = runner.llm_judge_outputs(
        [run_dir / "infer"],
        run_dir / "judge",
        condition.name,
        judging.protocol,
        backend,
        baseline,
        language_gate=judging.language_gate,
        progress=False,
        prompt_file=judging.prompt,
    )
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    status = collections.Counter(r["status"] for r in rows)
    log.info("%s %s: %s", condition.name, judging.protocol, dict(status))
    if rows and not status["ok"]:
        failures = runner.failure_counts(rows)
        shown = ", ".join(f"{reason} x{n}" for reason, n in failures.most_common())
        raise JobFailedError(f"{condition.name}: all {len(rows)} judge requests failed: {shown}")


def structured(planner: Planner, condition: Condition, stage: Stage) -> None:
    """The run's structured benchmarks, as ``polyglot-jax eval`` scores them."""
    run_dir, options = planner.run_dir(condition.name), planner.options
    tasks = suite.prepare(planner.benchmark_tasks(), options.benchmark_data)
    model = ChatModel.load(run_dir, inference_mesh((1, -1, 1)))
    suite.evaluate(
        model, tasks, run_dir / "structured", run_dir.name, limit=options.benchmark_limit
    )


def _rows(path: epath.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def failed_items(planner: Planner, condition: Condition) -> list[str]:
    """One line per judge or benchmark stage of the run whose output has failed items.

    A judge item failed when its request failed or the judge's output did not parse; a
    benchmark item when it could not be scored. Stages left out of the plan are not checked.
    """
    run_dir, lines = planner.run_dir(condition.name), []
    for stage in planner.stages(condition):
        if stage.note or stage.name not in ("judge", "benchmarks"):
            continue
        if stage.name == "judge":
            path = run_dir / "judge" / f"{planner.study.judging.protocol}.jsonl"
            rows = _rows(path) if path.exists() else []
            reasons = runner.failure_counts(rows)
        else:
            path = run_dir / "structured" / "structured.jsonl"
            rows = _rows(path) if path.exists() else []
            reasons = collections.Counter(
                r.get("reason", "failed") for r in rows if r.get("status") == "failed"
            )
        if reasons:
            shown = ", ".join(f"{reason} x{n}" for reason, n in reasons.most_common())
            lines.append(
                f"run {condition.name}, stage {stage.name}: {reasons.total()} of {len(rows)} "
                f"items failed ({shown})"
            )
    return lines


def _inputs(planner: Planner, conditions: Sequence[Condition]) -> tuple[list[dict], list[dict]]:
    """The judgment rows (judge and benchmark outputs) and answer rows of the runs."""
    paths, answers = [], []
    for condition in conditions:
        run_dir = planner.run_dir(condition.name)
        for folder in ("judge", "structured"):
            if (run_dir / folder).is_dir():
                paths.append(run_dir / folder)
        if (run_dir / "infer").is_dir():
            answers.append(run_dir / "infer")
    return report.load_judgments(paths), surface.surface_rows(answers)


def _write(
    study: Study,
    conditions: Sequence[Condition],
    rows: tuple[list[dict], list[dict]],
    out: epath.Path,
    pretraining_shares: str | None,
    notes: Sequence[str] = (),
    audited: list[str] | None = None,
) -> str:
    """The report of ``(judgments, answers)`` and the study's figure into ``out``; under a
    bucket written to a local folder and copied, ``report.md`` last. Seeds of a condition are
    pooled in the study's tables (:mod:`~polyglot_jax.studies.trust`), which add their spread,
    the paired significance tests and the judge's diagnostics. ``audited``: the provenance,
    cost and contamination sections (default: those of the runs beside ``out``)."""
    judgments, answers = rows
    pooled_conditions, pooled = trust.pool_seeds(conditions, judgments)
    table = report.score_table(pooled)
    notes = [*notes, *report.language_id_lines(judgments)]
    sections = trust.lines(study, conditions, judgments, answers, figures.metrics_of(study, table))
    sections += audit.lines(out.parent, conditions) if audited is None else audited
    sections += calibration_section.lines(out.parent, conditions, study)  # judge vs humans
    summary = figures.write(
        study, pooled_conditions, table, out, notes, pretraining_shares, sections
    )
    local = out if storage.is_local(out) else storage.local_file_for(out, "report", "reports")
    written = report.write_rows(judgments, answers, local, pretraining_shares)
    if local != out:  # report.md last: it marks the stage complete
        for file in sorted(pathlib.Path(local).iterdir(), key=lambda f: f == written):
            if file.is_file():
                storage.write_atomic(out / file.name, file.read_bytes())
    return summary


def write_report(planner: Planner, conditions: Sequence[Condition]) -> str:
    """The report of the runs that have judgments, and the study's figure; its summary.

    ``report/conditions.json`` names the runs it covers (a report of other runs is not
    complete); the tables include the surface metrics of each run's answers and correlate with
    ``options.pretraining_shares`` (default: Llama 2's).
    """
    out = planner.root / "report"
    storage.write_json(out / REPORT_CONDITIONS, [c.name for c in conditions])
    rows = _inputs(planner, conditions)
    return _write(planner.study, conditions, rows, out, planner.options.pretraining_shares)


def write_models_report(
    study: Study,
    root_list: Sequence[str],
    conditions: Sequence[Condition],
    output_dir: str,
    pretraining_shares: str | None = None,
) -> str:
    """One report of several roots of ``study``, each root's runs labelled by its model
    (:mod:`~polyglot_jax.studies.roots`): rows ``<model>/<run>``, a line or bar per model and
    condition; written to ``output_dir`` with ``roots.json`` (root → label); its summary.

    Raises:
      ConfigError: a root of another study or without the study's runs.
    """
    labels = roots.labels(study, root_list, conditions)
    judgments, answers, labelled = [], [], []
    for root, label in labels.items():
        found = _inputs(Planner(study, Options(root=root)), conditions)
        judgments += roots.relabel_rows(found[0], label)
        answers += roots.relabel_rows(found[1], label)
        labelled += [roots.relabel(c, label) for c in conditions]
    out = storage.as_path(output_dir)
    storage.write_json(out / "roots.json", labels)
    notes = ["Models: " + "; ".join(f"{label} ({root})" for root, label in labels.items())]
    audited = audit.lines(labels, conditions)  # each root's runs as <label>/<run>
    return _write(study, labelled, (judgments, answers), out, pretraining_shares, notes, audited)


STAGES = {
    "train": train,
    "infer": infer,
    "langid": langid,
    "judge": judge,
    "benchmarks": structured,
}
