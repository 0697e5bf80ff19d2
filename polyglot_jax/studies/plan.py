"""A study's plan: for every run its stages, each an exact command and a check of its output.

Stages of a run, in order: ``train`` (``python -m polyglot_jax.train``), ``infer`` (the study's
prompts and decoding), ``langid`` (language agreement, chrF), ``judge`` (the study's LLM judge
protocol and prompt, with ``--judge``) and ``benchmarks`` (``polyglot-jax eval``); then one
``report`` of the study. A stage is done when its output is complete and newer than its input,
as ``make`` decides:

- train: ``checkpoint_<step>`` of the run's last step (``TRAIN_STEPS`` of the
  :class:`~polyglot_jax.training.config.TrainConfig` that gin makes from the train command, or
  the step a finished run recorded in ``study_state.json`` when the steps follow from epochs);
- infer: ``infer/decoding.json`` (written after the last answer) newer than that checkpoint;
- langid: ``judge/judgments.jsonl`` newer than the answers;
- judge: ``judge/<protocol>.jsonl`` newer than the answers (and the baseline's) with no
  judgment left ``failed`` (a re-run asks again only for those: the rest are cached);
- benchmarks: ``structured/metrics.json`` with every task, newer than the checkpoint;
- report: ``report/report.md`` newer than every judge and benchmark output.

So a killed study started again with the same command redoes no finished stage.

A command-line binding (``--gin.NAME=VALUE``) reaches every stage whose gin files bind ``NAME``
(train: the model and experiment files; infer: the study's infer file, with their includes) or
whose command the plan gives ``NAME``; one that no stage takes is refused. Language ID and the
judge read each answer's language from the answers infer wrote, so ``EVAL_LANGUAGES`` reaches
them through infer.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from etils import epath

from polyglot_jax import gin_utils, storage
from polyglot_jax.clients import backends
from polyglot_jax.errors import ConfigError
from polyglot_jax.evaluation.benchmarks import registry
from polyglot_jax.launch.sweep import gin_literal
from polyglot_jax.studies.gin_files import binding_name, bound_keys, macro_value, takes
from polyglot_jax.studies.grid import Condition, Study, seeded_name, unseeded
from polyglot_jax.studies.options import Options
from polyglot_jax.training.config import TrainConfig, configured

STATE = "study_state.json"
REPORT_CONDITIONS = "conditions.json"  # the runs a study report covers
PLAN_OWNED = ("MODEL_DIR", "CHECKPOINT_PATH")  # set from --root: a binding would misplace runs


@dataclasses.dataclass
class Stage:
    """One stage of one run (``run`` empty for the study's report).

    Attributes:
      run: the condition's name.
      name: ``train``, ``infer``, ``langid``, ``judge``, ``benchmarks`` or ``report``.
      argv: the command, as it would be typed (``python -m ...``).
      done: whether its output is complete.
      outputs: what it writes (shown in the plan).
      note: why it does not run (e.g. no ``--judge``), or empty.
    """

    run: str
    name: str
    argv: list[str]
    done: Callable[[], bool]
    outputs: str
    note: str = ""

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def _flag(name: str, value: Any) -> str:
    return f"--gin.{name}={gin_literal(value)}"


def _mtime(path: epath.Path) -> float | None:
    return path.stat().mtime if path.exists() else None


def newer(output: epath.Path, *inputs: epath.Path) -> bool:
    """``output`` exists and is at least as new as every existing input."""
    out = _mtime(output)
    return out is not None and all(out >= (_mtime(i) or 0.0) for i in inputs)


def read_state(run_dir: epath.Path) -> dict:
    path = run_dir / STATE
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(run_dir: epath.Path, **values: Any) -> None:
    """Merges ``values`` into the run's ``study_state.json`` (atomically)."""
    storage.write_json(run_dir / STATE, {**read_state(run_dir), **values})


class Planner:
    """Builds the stages of a study's runs for one set of :class:`Options`."""

    def __init__(self, study: Study, options: Options) -> None:
        self.study, self.options = study, options
        self.root = storage.as_path(options.root)
        quick = study.quick if options.quick else None
        self.quick = quick
        default = "models/tiny.gin" if options.quick else study.model
        self.model = options.model or default
        self._train_configs: dict[str, TrainConfig] = {}

    def run_dir(self, name: str) -> epath.Path:
        return self.root / name

    def baseline(self, condition: Condition) -> str | None:
        """The run a pairwise judge compares ``condition`` with: the study's baseline with the
        same seed (None: the study has no baseline)."""
        baseline = self.study.judging.baseline if self.study.judging else None
        return seeded_name(baseline, condition.seed) if baseline else None

    # --- the commands -------------------------------------------------------------------------

    def train_bindings(self, condition: Condition) -> dict[str, Any]:
        values: dict[str, Any] = {**self.study.train_overrides, **condition.overrides}
        stem = self.model.rsplit("/", 1)[-1]
        if condition.lora:
            for prefix, targets in self.study.lora_targets.items():
                if stem.startswith(prefix):
                    values["LORA_TARGETS"] = targets
        if self.quick is not None:
            values.update(self.quick.train)
            values.update(self.quick.per_condition.get(unseeded(condition).name, {}))
        if self.options.base:
            values["INITIAL_CHECKPOINT_PATH"] = self.options.base
        if self.options.data_dir:
            values["DATA_DIR"] = self.options.data_dir
        return values

    def train_files(self, condition: Condition) -> tuple[str, ...]:
        return (self.model, condition.gin_file)

    def train_argv(self, condition: Condition) -> list[str]:
        values = self.train_bindings(condition)
        flags = [f"--gin_file={file}" for file in self.train_files(condition)]
        flags += [_flag(k, v) for k, v in values.items()]
        flags += [f"--gin.{b}" for b in self.stage_bindings("train", condition)]
        flags.append(_flag("MODEL_DIR", str(self.run_dir(condition.name))))
        return [sys.executable, "-m", "polyglot_jax.train", *flags]

    def infer_bindings(self, condition: Condition) -> dict[str, Any]:
        values: dict[str, Any] = {**self.study.infer_overrides, **condition.infer_overrides}
        if self.quick is not None:
            values.update(self.quick.infer)
        if self.options.base:
            values["VOCABULARY_PATH"] = self.options.base
        if self.options.data_dir:
            values["DATA_DIR"] = self.options.data_dir
        return values

    def infer_argv(self, condition: Condition) -> list[str]:
        flags = [f"--gin_file={self.study.infer_gin}"]
        flags += [_flag(k, v) for k, v in self.infer_bindings(condition).items()]
        flags += [f"--gin.{b}" for b in self.stage_bindings("infer", condition)]
        flags.append(_flag("CHECKPOINT_PATH", str(self.run_dir(condition.name))))
        return [sys.executable, "-m", "polyglot_jax.infer", *flags]

    def eval_languages(self, condition: Condition | None = None) -> list[str]:
        """The languages infer answers in: a command-line ``EVAL_LANGUAGES``, else the study's
        (quick) overrides, else the ``EVAL_LANGUAGES`` the study's infer file binds."""
        if condition is not None:
            values = self.infer_bindings(condition)
        else:
            values = {**self.study.infer_overrides, **(self.quick.infer if self.quick else {})}
        bound = self.command_line_value("EVAL_LANGUAGES")
        if isinstance(bound, (list, tuple)):
            return list(bound)
        if "EVAL_LANGUAGES" in values:
            return list(values["EVAL_LANGUAGES"])
        return list(macro_value(self.study.infer_gin, "EVAL_LANGUAGES"))

    # --- command-line bindings ----------------------------------------------------------------

    def stage_bindings(self, stage: str, condition: Condition) -> list[str]:
        """The command-line bindings that ``stage`` (``train`` or ``infer``) of a run takes:
        those whose name its gin files bind or its command sets."""
        if stage == "train":
            files, planned = self.train_files(condition), self.train_bindings(condition)
        else:
            files, planned = (self.study.infer_gin,), self.infer_bindings(condition)
        keys = bound_keys(files) | set(planned)
        return [b for b in self.options.bindings if takes(keys, binding_name(b))]

    def check_bindings(self, conditions: Sequence[Condition]) -> None:
        """Refuses a command-line binding that no stage of ``conditions`` takes.

        Raises:
          ConfigError: one line naming each binding no stage takes (or that the plan owns).
        """
        names = [binding_name(b) for b in self.options.bindings]
        owned = [name for name in names if name in PLAN_OWNED]
        if owned:
            raise ConfigError(f"--gin.{owned[0]}: the study sets it from --root; leave it out")
        taken = {
            binding_name(b)
            for c in conditions
            for stage in ("train", "infer")
            for b in self.stage_bindings(stage, c)
        }
        unknown = [name for name in names if name not in taken]
        if unknown:
            shown = ", ".join(f"--gin.{name}" for name in unknown)
            files = sorted({f for c in conditions for f in self.train_files(c)})
            raise ConfigError(
                f"{shown}: no stage of study {self.study.name} binds "
                f"{', '.join(unknown)} (train: {' + '.join(files)}; "
                f"infer: {self.study.infer_gin})"
            )

    def judge_argv(self, condition: Condition, protocol: str | None) -> list[str]:
        run_dir = self.run_dir(condition.name)
        argv = [sys.executable, "-m", "polyglot_jax.judge", "--outputs", str(run_dir / "infer")]
        argv += ["--output_dir", str(run_dir / "judge"), "--run", condition.name]
        if protocol is None:  # language ID: every language lingua knows is a candidate
            return argv
        judging = self.study.judging
        judge = backends.redact_spec(self.options.judge or "JUDGE")  # the run reads the real one
        argv += [f"--protocol={protocol}", f"--judge={judge}"]
        argv += [f"--prompt_file={judging.prompt}"]
        argv += [f"--concurrency={self.options.judge_concurrency}"]
        if judging.language_gate:
            argv.append("--language_gate")
        if judging.baseline:
            argv += ["--baseline", str(self.run_dir(self.baseline(condition)) / "infer")]
        return argv

    def benchmark_tasks(self) -> dict[str, tuple[str, ...]]:
        """Each structured benchmark of the runs with its languages (the quick ones with
        ``quick``)."""
        quick = self.quick.benchmarks if self.quick is not None else None
        tasks: Mapping[str, Sequence[str]] = self.study.benchmarks if quick is None else quick
        return {name: tuple(langs) for name, langs in tasks.items()}

    def benchmarks_argv(self, condition: Condition) -> list[str]:
        argv = [sys.executable, "-m", "polyglot_jax.cli.evaluate"]
        argv += [f"--checkpoint_path={self.run_dir(condition.name)}"]
        argv += [f"--benchmarks={registry.format_tasks(self.benchmark_tasks())}"]
        argv += [f"--data_dir={self.options.benchmark_data}"]
        if self.options.benchmark_limit:
            argv.append(f"--limit={self.options.benchmark_limit}")
        return argv

    # --- completion ---------------------------------------------------------------------------

    def command_line_value(self, name: str) -> Any:
        """The value of ``--gin.NAME=VALUE`` when it is a Python literal, else None."""
        for binding in self.options.bindings:
            key, _, value = binding.partition("=")
            if key.strip() == name:
                try:
                    return ast.literal_eval(value.strip())
                except (ValueError, SyntaxError):
                    return None
        return None

    def train_config(self, condition: Condition) -> TrainConfig:
        """The run's :class:`TrainConfig` as its train command makes it.

        Gin parses the command's files and bindings (so ``--gin.TRAIN_STEPS`` given to the
        study wins, as it does in train) in a config of its own: this process's gin config is
        left as it was. Nothing is trained and no mixture is made.

        Raises:
          ConfigError: the files or bindings do not parse, or their values are refused.
        """
        if condition.name not in self._train_configs:
            args = gin_utils.parse_args(self.train_argv(condition)[3:])  # after "-m module"
            with gin_utils.isolated_config():
                gin_utils.configure(args, finalize=False)
                self._train_configs[condition.name] = configured(TrainConfig)
        return self._train_configs[condition.name]

    def final_checkpoint(self, condition: Condition) -> epath.Path | None:
        """``checkpoint_<last step>`` of the run, or None while the last step is unknown."""
        run_dir = self.run_dir(condition.name)
        steps = self.train_config(condition).train_steps
        if steps is None:  # counted from NUM_EPOCHS: the step the finished run recorded
            steps = read_state(run_dir).get("train_step")
        return None if steps is None else run_dir / f"checkpoint_{steps}"

    def train_done(self, condition: Condition) -> bool:
        checkpoint = self.final_checkpoint(condition)
        return checkpoint is not None and checkpoint.is_dir()

    def _answers(self, name: str) -> epath.Path:
        return self.run_dir(name) / "infer" / "decoding.json"

    def infer_done(self, condition: Condition) -> bool:
        checkpoint = self.final_checkpoint(condition)
        return checkpoint is not None and newer(self._answers(condition.name), checkpoint)

    def langid_done(self, condition: Condition) -> bool:
        output = self.run_dir(condition.name) / "judge" / "judgments.jsonl"
        return newer(output, self._answers(condition.name))

    def judge_done(self, condition: Condition) -> bool:
        judging = self.study.judging
        output = self.run_dir(condition.name) / "judge" / f"{judging.protocol}.jsonl"
        inputs = [self._answers(condition.name)]
        if judging.baseline:
            inputs.append(self._answers(self.baseline(condition)))
        if not newer(output, *inputs):
            return False
        rows = [json.loads(line) for line in output.read_text().splitlines() if line]
        return all(row.get("status") != "failed" for row in rows)

    def benchmarks_done(self, condition: Condition) -> bool:
        path = self.run_dir(condition.name) / "structured" / "metrics.json"
        checkpoint = self.final_checkpoint(condition)
        if checkpoint is None or not newer(path, checkpoint):
            return False
        wanted = {f"{b}_{lang}" for b, langs in self.benchmark_tasks().items() for lang in langs}
        return wanted <= set(json.loads(path.read_text()))

    # --- the plan -----------------------------------------------------------------------------

    def stages(self, condition: Condition) -> list[Stage]:
        """The stages of one run, in order."""
        name, run_dir = condition.name, self.run_dir(condition.name)
        stages = [
            Stage(name, "train", self.train_argv(condition), lambda: self.train_done(condition),
                  f"{run_dir}/checkpoint_*"),
            Stage(name, "infer", self.infer_argv(condition), lambda: self.infer_done(condition),
                  f"{run_dir}/infer"),
            Stage(name, "langid", self.judge_argv(condition, None),
                  lambda: self.langid_done(condition), f"{run_dir}/judge/judgments.jsonl"),
        ]  # fmt: skip
        judging = self.study.judging
        if judging is not None:
            note = "" if self.options.judge else "no --judge: LLM judging left out"
            if self.baseline(condition) == name:
                note = "the pairwise baseline itself"
            stages.append(
                Stage(
                    name,
                    "judge",
                    self.judge_argv(condition, judging.protocol),
                    lambda: self.judge_done(condition),
                    f"{run_dir}/judge/{judging.protocol}.jsonl",
                    note,
                )
            )
        if self.benchmark_tasks():
            stages.append(
                Stage(
                    name,
                    "benchmarks",
                    self.benchmarks_argv(condition),
                    lambda: self.benchmarks_done(condition),
                    f"{run_dir}/structured",
                    "" if self.options.benchmarks else "--benchmarks=none",
                )
            )
        return stages

    def report_stage(self, conditions: Sequence[Condition]) -> Stage:
        inputs = [self.run_dir(c.name) / "judge" / "judgments.jsonl" for c in conditions]
        if self.study.judging is not None:
            protocol = self.study.judging.protocol
            inputs += [self.run_dir(c.name) / "judge" / f"{protocol}.jsonl" for c in conditions]
        inputs += [self.run_dir(c.name) / "structured" / "metrics.json" for c in conditions]
        inputs += [self._answers(c.name) for c in conditions]
        output = self.root / "report" / "report.md"
        covered = self.root / "report" / REPORT_CONDITIONS
        names = [c.name for c in conditions]

        def done() -> bool:
            same = covered.exists() and json.loads(covered.read_text()) == names
            return same and newer(output, *inputs)

        argv = ["polyglot-jax", "study", "report", self.study.name, f"--root={self.root}"]
        seeds = list(dict.fromkeys(c.seed for c in conditions if c.seed is not None))
        bases = dict.fromkeys(unseeded(c).name for c in conditions)
        argv.append(f"--conditions={','.join(bases)}")
        if seeds:
            argv.append(f"--seeds={','.join(map(str, seeds))}")
        if self.options.pretraining_shares:
            argv.append(f"--pretraining_shares={self.options.pretraining_shares}")
        return Stage("", "report", argv, done, str(output.parent))
