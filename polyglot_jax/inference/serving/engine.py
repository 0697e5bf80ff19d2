"""Continuous batching: requests from many clients decoded together, joining as slots free up.

One worker thread owns the model and a fixed set of decode slots (:mod:`slots`). Requests
(:class:`Job`) wait in a bounded queue; before every decode step the worker moves waiting jobs
into free slots (a prompt is read in alone, its cache row written into the slot), then advances
every busy slot by one token. A row leaves its slot when it emits an end token, reaches its
``max_tokens``, produces a stop string, or its client goes away, and the next request takes the
slot at the next step: nobody waits for the longest answer of a batch. Scoring jobs (log-probs
of given tokens) run between steps, batched together. A full queue refuses new work
(:class:`OverloadedError`); :meth:`Engine.close` lets queued and running jobs finish first.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from polyglot_jax.inference import decoding, placement
from polyglot_jax.inference.model import LanguageModel
from polyglot_jax.inference.serving import slots
from polyglot_jax.inference.serving.jobs import Job, JobCancelledError, OverloadedError, Row

log = logging.getLogger(__name__)


STEPS_PER_CALL = 8  # decode steps per round trip to the host


def _pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


@dataclasses.dataclass
class _Slot:
    job: Job
    index: int  # the job's row
    row: Row


class Engine:
    """Decodes :class:`Job` s with continuous batching on a worker thread.

    Args:
      model: the model, placed on its mesh.
      vocabulary: decodes tokens (for stop strings); its ``pad_id`` pads prompts.
      eos_ids: tokens that end a continuation.
      max_batch: decode slots (rows decoded together; rounded up to a multiple of the mesh's
        batch shards).
      max_queue: the most jobs waiting; more are refused with :class:`OverloadedError`.
      max_length: tokens per slot, prompt and continuation (default: the model's context).
      warm_up_width: before serving, compile every program that prompts of up to this many
        tokens can need (each bucket of rows and width, each decode variant), so no request
        waits for a compilation; 0 compiles on first use.
    """

    def __init__(
        self,
        model: LanguageModel,
        vocabulary: Any,
        eos_ids: Sequence[int],
        max_batch: int = 16,
        max_queue: int = 256,
        max_length: int | None = None,
        warm_up_width: int = 0,
    ) -> None:
        self.model, self.vocabulary, self.eos_ids = model, vocabulary, list(eos_ids)
        self.slots = placement.local_rows(max_batch, model.mesh, model.rules)
        self.max_queue = max_queue
        self.max_length = max_length or model.decoder.config.max_length
        self.pad_id = int(getattr(vocabulary, "pad_id", 0) or 0)
        self.warm_up_width = min(warm_up_width, self.max_length)
        self.ready = threading.Event()  # set once the engine takes requests (or failed)
        self.failed: BaseException | None = None
        self._queue: collections.deque[Job] = collections.deque()
        self._busy: list[_Slot | None] = [None] * self.slots
        self._cond = threading.Condition()
        self._closing = False
        self.stats = collections.Counter()  # jobs, steps, tokens, cancelled, rejected
        options = placement.decode_options() or None
        decoder = model.decoder
        self._prefill = jax.jit(
            functools.partial(slots.prefill, decoder), donate_argnums=1, compiler_options=options
        )
        self._decode = jax.jit(
            functools.partial(slots.decode, decoder),
            static_argnames=("steps", "penalties", "sampling"),
            donate_argnums=1,
            compiler_options=options,
        )
        self._thread = threading.Thread(target=self._work, name="polyglot-jax-engine", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> concurrent.futures.Future:
        """Queues ``job``; its future gives ``list[Row]`` (generate) or score arrays.

        Raises:
          OverloadedError: the queue is full.
          ValueError: the job has more rows than there are slots, or a row does not fit one.
        """
        if len(job.prompts) > self.slots:
            raise ValueError(f"{len(job.prompts)} rows; the server decodes {self.slots} at once")
        for prompt, limit in zip(job.prompts, job.max_tokens, strict=False):
            if len(prompt) + limit > self.max_length:
                raise ValueError(f"{len(prompt)} + {limit} tokens exceed {self.max_length}")
        if self.failed is not None:
            raise RuntimeError(f"the decoding engine stopped: {self.failed!r}")
        with self._cond:
            if self._closing or len(self._queue) >= self.max_queue:
                self.stats["rejected"] += 1
                raise OverloadedError(len(self._queue))
            self._queue.append(job)
            self.stats["jobs"] += 1
            self._cond.notify_all()
        return job.future

    def cancel(self, job: Job) -> None:
        """Ends ``job``: dropped if still queued, its rows stopped at the next step if running."""
        job.cancelled.set()
        with self._cond:
            if job in self._queue:
                self._queue.remove(job)
                self.stats["cancelled"] += 1
                job.future.set_exception(JobCancelledError())

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return sum(slot is not None for slot in self._busy)

    def close(self, timeout: float | None = None) -> None:
        """Refuses new jobs, finishes the queued and running ones, stops the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _take(self) -> tuple[list[Job], list[Job]] | None:
        """Waiting jobs that fit the free slots, and every waiting scoring job."""
        with self._cond:
            while not self._queue and not self.running and not self._closing:
                self._cond.wait()
            if not self._queue and not self.running:
                return None
            scoring = [job for job in self._queue if job.kind == "score"]
            starting, free = [], self._busy.count(None)
            for job in [job for job in self._queue if job.kind != "score"]:
                if len(job.prompts) > free:
                    break  # first come, first served
                starting.append(job)
                free -= len(job.prompts)
            for job in scoring + starting:
                self._queue.remove(job)
            return starting, scoring

    def _work(self) -> None:
        try:
            self._serve()
        except BaseException as e:  # a bug: say so to every waiting and later request
            self.failed = e
            with self._cond:
                for job in [*self._queue, *(s.job for s in self._busy if s is not None)]:
                    if not job.future.done():
                        job.future.set_exception(e)
                self._queue.clear()
            raise
        finally:
            self.ready.set()

    def _serve(self) -> None:
        with self.model.context():
            state = self._warm_up(self._empty())
            self.ready.set()
            while (taken := self._take()) is not None:
                starting, scoring = taken
                if scoring:
                    self._guarded(scoring, self._score)
                if starting:
                    started = self._guarded(starting, lambda jobs, s=state: self._start(jobs, s))
                    state = self._reset() if started is None else started
                if self.running:
                    stepped = self._guarded(self._running_jobs(), lambda _, s=state: self._step(s))
                    state = self._reset() if stepped is None else stepped

    def _warm_up(self, state: slots.Slots) -> slots.Slots:
        """Runs every program once on idle slots (prefilled rows are dropped: no effect)."""
        if not self.warm_up_width:
            return state
        start, programs = time.perf_counter(), 0
        rows, widths = 1, [min(16, self.max_length)]  # the widths _start pads prompts to
        while widths[-1] < min(self.warm_up_width, self.max_length):
            widths.append(min(widths[-1] * 2, self.max_length))
        while rows <= self.slots:
            for width in widths:
                knobs = {k: np.zeros((rows,), np.float32) for k in slots.KNOBS}
                state = self._prefill(
                    self.model.params,
                    state,
                    np.full((rows,), self.slots, np.int32),  # every row dropped
                    np.full((rows, width), self.pad_id, np.int32),
                    np.ones((rows,), np.int32),
                    np.zeros((rows, 2), np.uint32),
                    knobs,
                )
                programs += 1
            rows *= 2
        idle = np.zeros((self.slots,), bool)
        steps = 1
        while steps <= STEPS_PER_CALL:
            for penalties in (False, True):
                for sampling in (False, True):
                    _, state = self._decode(
                        self.model.params,
                        state,
                        idle,
                        steps=steps,
                        penalties=penalties,
                        sampling=sampling,
                    )
                    programs += 1
            steps *= 2
        jax.block_until_ready(state)
        log.info("compiled %d programs in %.1f s", programs, time.perf_counter() - start)
        return state

    def _empty(self) -> slots.Slots:
        make = jax.jit(slots.empty, static_argnums=(0, 1, 2))
        return make(self.model.decoder, self.slots, self.max_length)

    def _running_jobs(self) -> list[Job]:
        return list({id(s.job): s.job for s in self._busy if s is not None}.values())

    def _guarded(self, jobs: list[Job], run: Callable[[list[Job]], Any]) -> Any:
        """``run(jobs)``; if it fails, the jobs fail with its error and the server goes on."""
        try:
            return run(jobs)
        except Exception as e:
            log.exception("%d requests failed", len(jobs))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e)
            return None

    def _reset(self) -> slots.Slots:
        """Fresh slots after a failure (the old state may be gone); running requests fail."""
        for busy in self._busy:
            if busy is not None and not busy.job.future.done():
                busy.job.future.set_exception(RuntimeError("decoding failed; see the server log"))
        self._busy = [None] * self.slots
        return self._empty()

    def _start(self, jobs: list[Job], state: slots.Slots) -> slots.Slots:
        """Reads every prompt of ``jobs`` into a free slot, all in one prefill."""
        starting = [(job, i) for job in jobs for i in range(len(job.prompts))]
        rows = _pow2(len(starting))
        width = min(_pow2(max(16, *(len(job.prompts[i]) for job, i in starting))), self.max_length)
        slot_ids = np.full((rows,), self.slots, np.int32)  # padding rows are dropped
        prompts = np.full((rows, width), self.pad_id, np.int32)  # [rows, width]
        lengths = np.ones((rows,), np.int32)
        seeds = np.zeros((rows,), np.uint32)
        knobs = {k: np.zeros((rows,), np.float32) for k in slots.KNOBS}
        free = [slot for slot, busy in enumerate(self._busy) if busy is None]
        for r, ((job, i), slot) in enumerate(zip(starting, free, strict=False)):
            if i == 0:
                job.rows = [Row() for _ in job.prompts]
            slot_ids[r], seeds[r] = slot, job.seeds[i]
            prompts[r, : len(job.prompts[i])] = job.prompts[i]
            lengths[r] = len(job.prompts[i])
            for k in slots.KNOBS:
                knobs[k][r] = getattr(job.sampling, k)
            self._busy[slot] = _Slot(job, i, job.rows[i])
        keys = np.asarray(jax.vmap(jax.random.PRNGKey)(seeds))  # [rows, 2]
        return self._prefill(self.model.params, state, slot_ids, prompts, lengths, keys, knobs)

    def _step(self, state: slots.Slots) -> slots.Slots:
        """A few tokens for every busy slot; finished rows leave their slots.

        As many steps as no busy row can overrun: the fewest tokens any of them may still
        take, rounded down to a power of two, at most :data:`STEPS_PER_CALL`.
        """
        busy = [slot for slot in self._busy if slot is not None]
        room = min(s.job.max_tokens[s.index] - len(s.row.tokens) for s in busy)
        steps = _pow2(min(room, STEPS_PER_CALL) + 1) // 2
        active = np.asarray([slot is not None for slot in self._busy])
        tokens, state = self._decode(
            self.model.params,
            state,
            active,
            steps=steps,
            penalties=any(s.job.sampling.penalized for s in busy),
            sampling=any(s.job.sampling.temperature > 0 for s in busy),
        )
        tokens = np.asarray(tokens)  # [steps, slots]
        self.stats["steps"] += steps
        for slot, busy_slot in enumerate(self._busy):
            if busy_slot is None:
                continue
            for token in tokens[:, slot]:
                if self._advance(busy_slot.job, busy_slot.index, busy_slot.row, int(token)):
                    self._busy[slot] = None
                    self._finish_if_done(busy_slot.job)
                    break
        return state

    def _finish_if_done(self, job: Job) -> None:
        if any(row.finish_reason is None for row in job.rows):
            return
        if job.cancelled.is_set():
            self.stats["cancelled"] += 1
            job.future.set_exception(JobCancelledError())
        else:
            job.future.set_result(job.rows)

    def _advance(self, job: Job, i: int, row: Row, token: int) -> bool:
        """Adds this step's token to ``row``; whether the row is done."""
        if job.cancelled.is_set():
            row.finish_reason = "cancelled"
            return True
        if token in self.eos_ids:
            row.finish_reason = "stop"
            return True
        row.tokens.append(token)
        self.stats["tokens"] += 1
        if job.on_token is not None:
            job.on_token(i, token)
        if job.sampling.stop_strings:
            text = self.vocabulary.decode(row.tokens)
            if decoding.cut_at_stop_strings(text, job.sampling.stop_strings)[1]:
                row.finish_reason = "stop"
                return True
        if len(row.tokens) >= job.max_tokens[i]:
            row.finish_reason = "length"
            return True
        return False

    def _score(self, batch: list[Job]) -> None:
        sequences = [p for job in batch for p in job.prompts]
        width = decoding.bucket_length(max(len(s) for s in sequences))
        rows = _pow2(len(sequences))
        tokens = np.full((rows, width), self.pad_id, np.int32)  # [rows, width]
        targets = np.full((rows, width), self.pad_id, np.int32)
        for r, seq in enumerate(sequences):
            tokens[r, : len(seq) - 1] = seq[:-1]
            targets[r, : len(seq) - 1] = seq[1:]
        k = max(1, *(job.top_logprobs for job in batch))
        picked, top_ids, top_logp = self.model.top_scores(tokens, targets, k)
        start = 0
        for job in batch:
            out = []
            for seq in job.prompts:
                n = len(seq) - 1
                out.append((picked[start, :n], top_ids[start, :n], top_logp[start, :n]))
                start += 1
            job.future.set_result(out)
