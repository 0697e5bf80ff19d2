"""What the serving engine works on: a request's rows (:class:`Job`) and their results.

A :class:`Job` carries token ids, not text: the routes encode and decode, the engine decodes
tokens. Its future gives the job's :class:`Row` s (``kind == "generate"``) or, per prompt, the
log-probabilities of its tokens with the most likely alternatives (``kind == "score"``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable

from polyglot_jax.runtime import decoding


class OverloadedError(Exception):
    """The queue is full; the client should retry after ``retry_after`` seconds."""

    def __init__(self, queued: int, retry_after: int = 1) -> None:
        super().__init__(f"the server is busy ({queued} requests queued); retry later")
        self.retry_after = retry_after


class InvalidJobError(ValueError):
    """A job the engine cannot run (a setting out of range, too many rows); ``param`` names it."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class JobCancelledError(Exception):
    """The job was cancelled (its client went away) before it finished."""


@dataclasses.dataclass
class Row:
    """One continuation: its tokens so far and why it ended."""

    tokens: list[int] = dataclasses.field(default_factory=list)
    finish_reason: str | None = None  # "stop" (EOS or a stop string), "length", "cancelled"


@dataclasses.dataclass
class Job:
    """A request's rows (one per prompt and choice), admitted to the engine together.

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

    rows: list[Row] = dataclasses.field(default_factory=list)  # filled as the job runs


def validate(job: Job, slots: int, max_length: int, vocab_size: int) -> None:
    """Refuses a job the engine cannot run, before it joins a batch.

    Raises:
      InvalidJobError: naming the setting that is out of range.
    """
    rows = len(job.prompts)
    if rows > slots:
        raise InvalidJobError(f"n x prompts: {rows} rows; the server decodes {slots} at once", "n")
    if job.kind == "generate" and not len(job.max_tokens) == len(job.seeds) == rows:
        raise InvalidJobError("a job needs max_tokens and a seed per row")
    for i, prompt in enumerate(job.prompts):
        limit = job.max_tokens[i] if job.kind == "generate" else 0
        if not 0 <= limit <= max_length or not 0 < len(prompt) <= max_length - limit:
            raise InvalidJobError(
                f"{len(prompt)} prompt tokens + {limit} new tokens do not fit {max_length}",
                "max_tokens",
            )
        if not all(isinstance(t, int) and 0 <= t < vocab_size for t in prompt):
            raise InvalidJobError(f"prompt: token ids must be in 0..{vocab_size - 1}", "prompt")
    if not all(isinstance(s, int) and 0 <= s < 2**32 for s in job.seeds):
        raise InvalidJobError("seed: row seeds must be in 0..2**32-1", "seed")
    s = job.sampling
    ranges = {
        "temperature": 0 <= s.temperature <= 1e4,
        "top_k": isinstance(s.top_k, int) and 0 <= s.top_k < 2**31,
        "top_p": 0 < s.top_p <= 1,
        "repetition_penalty": 0 < s.repetition_penalty <= 1e4,
        "frequency_penalty": -1e4 <= s.frequency_penalty <= 1e4,
    }
    for name, fits in ranges.items():
        if not fits:  # also NaN, which no comparison admits
            raise InvalidJobError(f"{name}: {getattr(s, name)!r} is out of range", name)
