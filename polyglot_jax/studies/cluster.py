"""A study's runs on a Ray cluster, several at once (``polyglot-jax study run --cluster=ray``).

Every pending run goes through its stages in order, as :func:`~polyglot_jax.studies.runner.run`
does, but the runs proceed together: the accelerator stages (train, infer, benchmarks) are Ray
tasks named after the run, each asking for the run's :class:`~polyglot_jax.studies.slices.Request`
(a TPU slice, GPU hosts or CPUs), and Ray starts as many as the cluster holds. Language ID and
the judge run here, on the driver, as each run's answers land; judge stages take turns, so the
requests in flight never pass ``--judge_concurrency``. A task runs the same stage functions
(:data:`~polyglot_jax.studies.execute.STAGES`) on the run directory, which stays the single
source of truth: the same study continues with or without Ray.

A task whose worker or node dies (preemption) is started again, up to ``--max_retries`` times;
training resumes from the run's last checkpoint. A stage that fails with a
:class:`~polyglot_jax.errors.UserError` (or any other exception raised by its code) is not
retried; the other runs go on and the study then stops, naming each failed run and stage.

Progress: one log line per run and stage: queued, running on NODE, done, failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any

from polyglot_jax.errors import ConfigError, JobFailedError
from polyglot_jax.studies import compute, execute, slices
from polyglot_jax.studies.grid import Condition, Study
from polyglot_jax.studies.plan import Planner, Stage

ON_ACCELERATOR = compute.ON_ACCELERATOR  # Ray tasks; the other stages run here

log = logging.getLogger(__name__)

CRASH_ENV = "POLYGLOT_JAX_STUDY_CRASH"
"""Tests: ``RUN:FILE``: the first attempt of RUN's train stage exits once ``FILE`` is in the run
directory (a worker killed mid-training)."""


def _crash_when(path: str) -> None:
    def watch() -> None:
        while not os.path.exists(path):
            time.sleep(0.05)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def stage_task(
    study: Study,
    options: Any,
    condition: Condition,
    stage_name: str,
    hosts: int,
    coordinator: str | None,
    index: int,
    env: dict[str, str],
) -> Iterator[dict[str, str]]:
    """One host's part of a stage (a Ray generator task): yields where it runs, then ``done``.

    Host 0 of a multi-host run picks the coordinator's port and yields its address; the other
    hosts get it (on a TPU slice all get ``auto``). The stage is the one the planner makes
    for ``options``.
    """
    import ray

    node = ray.util.get_node_ip_address()
    if hosts > 1 and coordinator is None:
        coordinator = f"{node}:{_free_port()}"
    os.environ.update(slices.host_env(coordinator or "", hosts, index))
    yield {"node": node, "coordinator": coordinator or ""}
    planner, run = Planner(study, options), condition.name
    stage = next(s for s in planner.stages(condition) if s.name == stage_name)
    if env.get(CRASH_ENV, "").startswith(f"{run}:") and stage_name == "train":
        _crash_when(str(planner.run_dir(run) / env[CRASH_ENV].split(":", 1)[1]))
    if hosts > 1:
        from polyglot_jax.training import multihost

        multihost.initialize()
    execute.STAGES[stage_name](planner, condition, stage)
    compute.record_devices(planner.run_dir(run), stage_name)  # before the driver's record
    yield {"node": node, "done": "1"}


@functools.cache
def _task(fresh: bool) -> Any:
    """:func:`stage_task` as a Ray task; ``fresh``: a new worker process each time
    (``max_calls=1``), so that accelerators and ``jax.distributed`` start clean (a CPU
    run reuses a worker and its imports)."""
    import ray

    return ray.remote(max_calls=1)(stage_task) if fresh else ray.remote(stage_task)


def _died() -> tuple[type[BaseException], ...]:
    from ray import exceptions as e

    return (
        e.WorkerCrashedError,
        e.NodeDiedError,
        e.LocalRayletDiedError,
        e.OwnerDiedError,
        e.ObjectLostError,
        e.RaySystemError,
    )


def _cause(error: BaseException) -> BaseException:
    from ray.exceptions import RayTaskError

    return error.cause if isinstance(error, RayTaskError) and error.cause else error


@dataclasses.dataclass
class Driver:
    """The study's runs on Ray: one thread per run, the stages of each in order."""

    planner: Planner
    conditions: Sequence[Condition]
    request: slices.Request
    changed: Callable[[Planner, Stage], str | None]
    record: Callable[..., None]
    judge_turn: threading.Semaphore = dataclasses.field(default_factory=threading.Semaphore)
    answered: dict[str, threading.Event] = dataclasses.field(default_factory=dict)
    failures: list[str] = dataclasses.field(default_factory=list)

    def progress(self, run: str, stage: str, what: str) -> None:
        """One progress line: ``RUN STAGE: queued|running on NODE|done in N s|failed: ...``."""
        log.info("%s %s: %s", run, stage, what)

    def _wait(self, gens: list[Any]) -> list[dict[str, str]]:
        """The next item of every host's generator; the first failure cancels the others."""
        import ray

        items: dict[int, dict[str, str]] = {}
        pending = {id(g): i for i, g in enumerate(gens)}
        waiting = list(gens)
        try:
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                for gen in ready:
                    items[pending[id(gen)]] = ray.get(next(gen))
        except BaseException:
            for gen in gens:
                with contextlib.suppress(Exception):  # already finished or gone
                    ray.cancel(gen, force=True)
            raise
        return [items[i] for i in range(len(gens))]

    def _attempt(self, condition: Condition, stage: Stage, attempt: int) -> str:
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        req, options = self.request, self.planner.options
        group = req.placement_group(f"{stage.run}-{stage.name}-{attempt}")
        pg = getattr(group, "placement_group", group)  # a SlicePlacementGroup's group
        try:
            if pg is not None:
                ray.get(pg.ready())
                if hasattr(group, "release_head_pgs"):
                    group.release_head_pgs()
            crash = os.environ.get(CRASH_ENV)
            env = {CRASH_ENV: crash} if crash and attempt == 0 else {}
            task = _task(req.kind != "cpu" or req.hosts > 1)
            gens: list[Any] = []

            def start(index: int, coordinator: str | None) -> Any:
                placed: dict[str, Any] = {}
                if pg is not None:
                    placed["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                        pg, placement_group_bundle_index=index
                    )
                return task.options(
                    name=stage.run, num_returns="streaming", max_retries=0,
                    **req.task_options(), **placed,
                ).remote(
                    self.planner.study, options, condition, stage.name, req.hosts,
                    coordinator, index, env,
                )  # fmt: skip

            gens.append(start(0, "auto" if req.kind == "tpu" else None))
            first = self._wait(gens)[0]
            gens += [start(i, first["coordinator"] or None) for i in range(1, req.hosts)]
            nodes = [first["node"], *(i["node"] for i in self._wait(gens[1:]))]
            self.progress(stage.run, stage.name, f"running on {', '.join(sorted(set(nodes)))}")
            self._wait(gens)
            return nodes[0]
        finally:
            if hasattr(group, "shutdown"):
                group.shutdown()
            elif pg is not None:
                ray.util.remove_placement_group(pg)

    def remote(self, condition: Condition, stage: Stage) -> str:
        """Runs ``stage`` on the run's hosts; again when a worker died. Returns host 0's node."""
        retries = self.planner.options.max_retries
        for attempt in range(retries + 1):
            again = f", attempt {attempt + 1} of {retries + 1}" if attempt else ""
            self.progress(stage.run, stage.name, f"queued ({self.request.label}{again})")
            try:
                return self._attempt(condition, stage, attempt)
            except _died() as e:
                if attempt == retries:
                    raise JobFailedError(
                        f"the worker died {attempt + 1} times ({type(e).__name__})"
                    ) from e
                self.progress(stage.run, stage.name, f"worker died ({type(e).__name__}); retrying")
        raise AssertionError("unreachable")

    def stage(self, condition: Condition, stage: Stage) -> None:
        """One stage of one run, skipped when done; its interval recorded."""
        if stage.note:
            self.progress(condition.name, stage.name, f"skipped ({stage.note})")
            return
        difference = self.changed(self.planner, stage)
        if difference:
            raise ConfigError(
                f"{stage.outputs} was made by another command ({difference}); remove it to "
                "redo the stage, or use another --root"
            )
        baseline = self.planner.study.judging and self.planner.study.judging.baseline
        if stage.name == "judge" and baseline in self.answered:
            self.answered[baseline].wait()
        if stage.done():
            self.progress(condition.name, stage.name, "done, skipped")
            return
        began = time.time()
        if stage.name in ON_ACCELERATOR:
            node = self.remote(condition, stage)
        else:
            self.progress(condition.name, stage.name, "running on the driver")
            node = "driver"
            if stage.name == "judge":
                with self.judge_turn:
                    execute.STAGES[stage.name](self.planner, condition, stage)
            else:
                execute.STAGES[stage.name](self.planner, condition, stage)
        self.record(self.planner, stage, began, time.time(), node)
        self.progress(condition.name, stage.name, f"done in {time.time() - began:.0f} s")

    def run_one(self, condition: Condition) -> None:
        """The stages of one run in order; a failure is kept, named, and ends the run."""
        try:
            for stage in self.planner.stages(condition):
                try:
                    self.stage(condition, stage)
                except Exception as e:
                    cause = _cause(e)
                    kind = type(cause).__name__
                    message = str(cause).strip().splitlines()
                    first = message[-1] if message else ""
                    self.progress(condition.name, stage.name, f"failed: {kind}: {first}")
                    self.failures.append(
                        f"run {condition.name}, stage {stage.name}: {kind}: {first}"
                    )
                    return
                if stage.name == "infer":
                    self.answered[condition.name].set()
        finally:
            self.answered[condition.name].set()

    def run(self) -> None:
        """Every run at once (Ray holds back what the cluster cannot place)."""
        self.answered.update({c.name: threading.Event() for c in self.conditions})
        with futures.ThreadPoolExecutor(max(1, len(self.conditions))) as pool:
            list(pool.map(self.run_one, self.conditions))


def connect(cluster: str) -> bool:
    """Connects to ``--cluster`` (starts a local Ray for ``ray``); whether it started one.

    Raises:
      ConfigError: a bad address, or none that answers.
    """
    import ray

    address = slices.parse_cluster(cluster)
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"--cluster {cluster}: no Ray cluster there ({first})") from e
    return address is None


def run(
    planner: Planner,
    conditions: Sequence[Condition],
    changed: Callable[[Planner, Stage], str | None],
    record: Callable[..., None],
) -> None:
    """Runs every pending stage of ``conditions`` on Ray (the report is left to the caller).

    ``changed`` and ``record`` are the runner's: how a done stage's recorded command differs,
    and the record of a finished stage (its command, when and where it ran).

    Raises:
      ConfigError: a bad ``--cluster``, ``--slice`` or host counts.
      JobFailedError: runs that failed (each run, stage and error named, one line).
    """
    import ray

    options = planner.options
    assert options.cluster is not None
    request = slices.request(
        options.slice, options.gpus_per_host, options.hosts, options.cpus_per_run
    )
    started = connect(options.cluster)
    try:
        driver = Driver(planner, conditions, request, changed, record)
        driver.run()
    finally:
        if started:
            ray.shutdown()
    if driver.failures:
        for line in driver.failures:
            log.error("%s", line)
        count = len(driver.failures)
        raise JobFailedError(
            f"{count} run{'s' if count > 1 else ''} failed: " + "; ".join(driver.failures)
        )
