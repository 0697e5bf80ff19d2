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
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from polyglot_jax.runtime import decoding, placement
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.serving import jobs, slots, warmup
from polyglot_jax.serving.jobs import Job, JobCancelledError, OverloadedError, Row

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
      model: the model, placed on its mesh: its stop tokens end a continuation, its vocabulary
        decodes tokens for stop strings and its ``pad_id`` pads prompts.
      max_batch: decode slots (rows decoded together; rounded up to a multiple of the mesh's
        batch shards).
      max_queue: the most jobs waiting; more are refused with :class:`OverloadedError`.
      max_length: tokens per slot, prompt and continuation (default, and at most: the model's
        context).
      warm_up_width: before serving, compile every program that prompts of up to this many
        tokens can need (each bucket of rows and width, each decode variant), so no request
        waits for a compilation; 0 compiles on first use.
    """

    def __init__(
        self,
        model: ChatModel,
        max_batch: int = 16,
        max_queue: int = 256,
        max_length: int | None = None,
        warm_up_width: int = 0,
    ) -> None:
        self.model, self.vocabulary, self.eos_ids = model, model.vocabulary, model.stop_ids
        self.slots = placement.local_rows(max_batch, model.mesh, model.rules)
        self.max_queue = max_queue
        positions = model.decoder.config.max_length
        if max_length is not None and not 2 <= max_length <= positions:
            raise ValueError(f"max_length {max_length} is not in 2..{positions} (model positions)")
        self.max_length = max_length or positions
        self.pad_id = model.pad_id
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
          InvalidJobError: a setting is out of range, the job has more rows than there are
            slots, or a row does not fit one.
        """
        jobs.validate(job, self.slots, self.max_length, self.model.decoder.config.vocab_size)
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
                    self._alone_on_failure(scoring, lambda batch: self._score(batch))
                if starting:
                    state = self._admit(starting, state)
                if self.running:
                    state = self._advance_all(state)

    def _warm_up(self, state: slots.Slots) -> slots.Slots:
        """Runs every program once on idle slots (see :func:`warmup.warm_up`)."""
        return warmup.warm_up(self, state, STEPS_PER_CALL) if self.warm_up_width else state

    def _empty(self) -> slots.Slots:
        make = jax.jit(slots.empty, static_argnums=(0, 1, 2))
        return make(self.model.decoder, self.slots, self.max_length)

    def _running_jobs(self) -> list[Job]:
        return list({id(s.job): s.job for s in self._busy if s is not None}.values())

    def _alone_on_failure(self, batch: list[Job], run: Callable[[list[Job]], Any]) -> None:
        """``run(batch)``; if it fails, each job again alone: only a job that fails alone fails."""
        try:
            run(batch)
            return
        except Exception as e:
            if len(batch) == 1:
                return self._fail(batch, e)
            log.warning("%d requests failed together (%r); retrying each alone", len(batch), e)
        for job in batch:
            try:
                run([job])
            except Exception as e:
                self._fail([job], e)

    def _fail(self, failed: list[Job], e: Exception) -> None:
        log.error("%d requests failed: %r", len(failed), e, exc_info=e)
        for job in failed:
            if not job.future.done():
                job.future.set_exception(e)

    def _admit(self, starting: list[Job], state: slots.Slots) -> slots.Slots:
        """``starting`` in free slots; a failure fails only the jobs it can be laid to."""

        def start(batch: list[Job]) -> None:
            nonlocal state
            try:
                state = self._start(batch, state)
            except Exception:
                state = self._intact(state)
                raise

        self._alone_on_failure(starting, start)
        return state

    def _advance_all(self, state: slots.Slots) -> slots.Slots:
        """A decode step; a failed one (which no request can be blamed for) is retried once."""
        try:
            return self._step(state)
        except Exception as e:
            log.warning("a decode step failed (%r); retrying it once", e)
        state = self._intact(state)
        try:
            return self._step(state)
        except Exception as e:
            self._fail(self._running_jobs(), e)
            self._busy = [None] * self.slots
            return self._empty()

    def _intact(self, state: slots.Slots) -> slots.Slots:
        """``state`` after a failed call; if the call consumed it, the running rows read anew."""
        if not any(leaf.is_deleted() for leaf in jax.tree.leaves(state)):
            return state
        running = [(s.job, s.index) for s in self._busy if s is not None]
        self._busy = [None] * self.slots
        state = self._empty()
        if running:
            try:
                state = self._prefill_rows(running, state)
            except Exception as e:
                self._fail(list({id(job): job for job, _ in running}.values()), e)
                self._busy = [None] * self.slots
                state = self._empty()
        return state

    def _start(self, starting: list[Job], state: slots.Slots) -> slots.Slots:
        """Reads every prompt of ``starting`` into a free slot, all in one prefill."""
        for job in starting:
            job.rows = [Row() for _ in job.prompts]
        return self._prefill_rows(
            [(job, i) for job in starting for i in range(len(job.prompts))], state
        )

    def _prefill_rows(self, starting: list[tuple[Job, int]], state: slots.Slots) -> slots.Slots:
        """Reads rows ``(job, index)`` into free slots: the prompt and the row's tokens so far.

        The slots are taken only once the prefill succeeded.
        """
        sequences = [[*job.prompts[i], *job.rows[i].tokens] for job, i in starting]
        rows = _pow2(len(starting))
        width = min(_pow2(max(16, *(len(seq) for seq in sequences))), self.max_length)
        slot_ids = np.full((rows,), self.slots, np.int32)  # padding rows are dropped
        prompts = np.full((rows, width), self.pad_id, np.int32)  # [rows, width]
        lengths = np.ones((rows,), np.int32)
        done = np.zeros((rows,), np.int32)
        seeds = np.zeros((rows,), np.uint32)
        knobs = {k: np.zeros((rows,), np.float32) for k in slots.KNOBS}
        vocab_size = self.model.decoder.config.vocab_size
        free = [slot for slot, busy in enumerate(self._busy) if busy is None]
        for r, ((job, i), seq, slot) in enumerate(zip(starting, sequences, free, strict=False)):
            slot_ids[r], seeds[r] = slot, job.seeds[i]
            prompts[r, : len(seq)] = seq
            lengths[r], done[r] = len(seq), len(job.rows[i].tokens)
            for k in slots.KNOBS:
                knobs[k][r] = getattr(job.sampling, k)
            knobs["top_k"][r] = min(job.sampling.top_k, vocab_size)  # exact in float32
        keys = np.asarray(jax.vmap(jax.random.PRNGKey)(seeds))  # [rows, 2]
        state = self._prefill(
            self.model.params, state, slot_ids, prompts, lengths, keys, knobs, done
        )
        for (job, i), slot in zip(starting, free, strict=False):
            self._busy[slot] = _Slot(job, i, job.rows[i])
        return state

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
            try:
                job.on_token(i, token)
            except Exception as e:  # its client's failure alone: that job ends, no other
                log.warning("a request's token callback failed (%r); it is cancelled", e)
                job.cancelled.set()
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
