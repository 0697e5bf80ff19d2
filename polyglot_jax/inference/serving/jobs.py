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

from polyglot_jax.inference import decoding


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
