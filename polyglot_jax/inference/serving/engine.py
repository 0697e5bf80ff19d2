"""Dynamic batching: requests from many clients decoded together, one batch at a time.

One worker thread owns the model. Requests (:class:`Job`) wait in a bounded queue; the worker
takes the oldest, waits up to ``max_wait_s`` for more that can share its batch (same decoding
settings, or scoring), and runs them as one call of the model interface, up to ``max_batch``
rows. Shapes are bucketed so few programs compile: rows to a power of two, prompt widths to a
multiple of 16 (:func:`decoding.bucket_length`), new tokens to a power of two.

Each row keeps its own seed and its own ``max_tokens``: a host hook sees every decode step
(:data:`decoding.StepHook`), streams the tokens and ends a row when it reaches its limit, emits
a stop string, or its client left, so a request's answer does not depend on its batch. A full
queue refuses new work (:class:`OverloadedError`); :meth:`Engine.close` lets queued and running jobs
finish first.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from polyglot_jax.inference import decoding
from polyglot_jax.inference.model import LanguageModel

log = logging.getLogger(__name__)


class OverloadedError(Exception):
    """The queue is full; the client should retry after ``retry_after`` seconds."""

    def __init__(self, queued: int, retry_after: int = 1) -> None:
        super().__init__(f"the server is busy ({queued} requests queued); retry later")
        self.retry_after = retry_after


class JobCancelledError(Exception):
    """The job was cancelled (its client went away) before it finished."""


@dataclasses.dataclass
class Row:
    """One continuation: its tokens so far and why it ended."""

    tokens: list[int] = dataclasses.field(default_factory=list)
    finish_reason: str | None = None  # "stop" (EOS or a stop string), "length", "cancelled"


@dataclasses.dataclass
class Job:
    """A request's rows, decoded in one batch.

    Attributes:
      prompts: token ids per row [rows][prompt_length].
      max_tokens: per row, the most new tokens (``kind == "generate"``).
      sampling: decoding settings (stop strings are applied here, on the host).
      seeds: one sampling seed per row.
      top_logprobs: for ``kind == "score"``, how many likely tokens to return per position.
      on_token: called from the worker with ``(row, token)`` as each token is chosen.
      kind: ``"generate"`` or ``"score"`` (log-likelihoods of the prompt tokens).
    """

    prompts: list[list[int]]
    max_tokens: list[int] = dataclasses.field(default_factory=list)
    sampling: decoding.Sampling = dataclasses.field(default_factory=decoding.Sampling)
    seeds: list[int] = dataclasses.field(default_factory=list)
    top_logprobs: int = 0
    on_token: Callable[[int, int], None] | None = None
    kind: str = "generate"
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def key(self) -> tuple:
        """Jobs with equal keys share a batch."""
        if self.kind == "score":
            return ("score", self.top_logprobs)
        return ("generate", dataclasses.replace(self.sampling, stop_strings=()))


def _pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class Engine:
    """Decodes :class:`Job` s in dynamic batches on a worker thread.

    Args:
      model: the model, placed on its mesh.
      vocabulary: decodes tokens (for stop strings).
      eos_ids: tokens that end a continuation.
      max_batch: the most rows decoded together.
      max_queue: the most jobs waiting; more are refused with :class:`OverloadedError`.
      max_wait_s: how long the oldest job waits for others to share its batch.
    """

    def __init__(
        self,
        model: LanguageModel,
        vocabulary: Any,
        eos_ids: Sequence[int],
        max_batch: int = 16,
        max_queue: int = 256,
        max_wait_s: float = 0.01,
    ) -> None:
        self.model, self.vocabulary, self.eos_ids = model, vocabulary, list(eos_ids)
        self.max_batch, self.max_queue, self.max_wait_s = max_batch, max_queue, max_wait_s
        self.pad_id = int(getattr(vocabulary, "pad_id", 0) or 0)
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self.stats = collections.Counter()  # jobs, rows, batches, cancelled, rejected
        self._thread = threading.Thread(target=self._work, name="polyglot-jax-engine", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> concurrent.futures.Future:
        """Queues ``job``; its future gives ``list[Row]`` (generate) or score arrays.

        Raises:
          OverloadedError: the queue is full.
          ValueError: the job has more rows than a batch holds.
        """
        if len(job.prompts) > self.max_batch:
            raise ValueError(f"{len(job.prompts)} rows; a batch holds {self.max_batch}")
        with self._cond:
            if self._closing:
                raise OverloadedError(len(self._queue))
            if len(self._queue) >= self.max_queue:
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

    def close(self, timeout: float | None = None) -> None:
        """Refuses new jobs, finishes the queued and running ones, stops the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            key = self._queue[0].key
            deadline = time.monotonic() + self.max_wait_s
            while not self._closing and self._rows_like(key) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch, rows = [], 0
            for job in list(self._queue):
                if job.key == key and rows + len(job.prompts) <= self.max_batch:
                    self._queue.remove(job)
                    batch.append(job)
                    rows += len(job.prompts)
            return batch

    def _rows_like(self, key: tuple) -> int:
        return sum(len(j.prompts) for j in self._queue if j.key == key)

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            self.stats["batches"] += 1
            self.stats["rows"] += sum(len(j.prompts) for j in batch)
            try:
                if batch[0].kind == "score":
                    self._score(batch)
                else:
                    self._generate(batch)
            except Exception as e:  # the requests fail, the server keeps serving
                log.exception("batch of %d requests failed", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(e)

    def _generate(self, batch: list[Job]) -> None:
        slots = [(job, i) for job in batch for i in range(len(job.prompts))]
        rows = [Row() for _ in slots]
        prompts = [job.prompts[i] for job, i in slots]
        seeds = [job.seeds[i] for job, i in slots]
        padding = _pow2(len(slots)) - len(slots)
        prompts += [[self.pad_id]] * padding
        seeds += [0] * padding
        longest = max(job.max_tokens[i] for job, i in slots)
        limit = self.model.decoder.config.max_length - min(len(p) for p in prompts[: len(slots)])
        max_new = max(1, min(_pow2(longest), limit))

        def on_step(step: int, tokens: np.ndarray) -> np.ndarray:
            stop = np.ones(len(tokens), bool)
            for r, ((job, i), row) in enumerate(zip(slots, rows, strict=True)):
                stop[r] = self._advance(job, i, row, int(tokens[r]))
            return stop

        first = batch[0]
        self.model.generate(
            prompts, max_new, self.eos_ids, first.sampling, seeds, self.pad_id, on_step=on_step
        )
        for job in batch:
            mine = [row for (owner, _), row in zip(slots, rows, strict=True) if owner is job]
            for row in mine:
                row.finish_reason = row.finish_reason or "length"
            if job.cancelled.is_set():
                self.stats["cancelled"] += 1
                job.future.set_exception(JobCancelledError())
            else:
                job.future.set_result(mine)

    def _advance(self, job: Job, i: int, row: Row, token: int) -> bool:
        """Adds this step's token to ``row``; whether the row is done."""
        if row.finish_reason is not None:
            return True
        if job.cancelled.is_set():
            row.finish_reason = "cancelled"
            return True
        if token in self.eos_ids:
            row.finish_reason = "stop"
            return True
        row.tokens.append(token)
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
        k = max(1, batch[0].top_logprobs)
        picked, top_ids, top_logp = self.model.top_scores(tokens, targets, k)
        start = 0
        for job in batch:
            out = []
            for seq in job.prompts:
                n = len(seq) - 1
                out.append((picked[start, :n], top_ids[start, :n], top_logp[start, :n]))
                start += 1
            job.future.set_result(out)
