"""How the HTTP backends ask: one retry policy, requests in flight at once, quiet URL loggers.

The OpenAI-compatible chat client (``backends.OpenAIBackend``) and Google translation
(``translate_backends.GoogleTranslator``) send every request through :meth:`RetryPolicy.call`:
the client makes one attempt and turns what went wrong into an :class:`AttemptError` (a short
reason that is counted, the HTTP status if an answer came back); the policy decides whether to
ask again and when, and ends every request with a :class:`Completion`, text or the last reason,
never an exception. :func:`iter_concurrent` keeps up to ``concurrency`` requests in flight and
yields each answer as it arrives.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from polyglot_jax.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Loggers of the HTTP stack that write each request URL (with its query) at INFO or DEBUG.
URL_LOGGERS = ("httpx", "httpcore", "openai")


@dataclasses.dataclass(frozen=True)
class Completion:
    """A backend's answer: ``text``, or ``error`` when every attempt failed."""

    text: str | None
    error: str | None = None
    attempts: int = 1


class AttemptError(Exception):
    """One failed attempt, as a client reports it to :meth:`RetryPolicy.call`.

    Args:
      reason: the short reason that is counted and reported (``HTTP 429``, ``timeout``,
        ``malformed response (no choices)``); it names the kind of failure, not the instance,
        and must hold no credential.
      status: the HTTP status of an answer that came back; None when none did.
      transient: for a failure without a status: whether asking again may help (timeouts,
        dropped connections, malformed bodies) or not (any other client error).
    """

    def __init__(self, reason: str, status: int | None = None, transient: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.status, self.transient = reason, status, transient


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When a request is asked again, how long each attempt may take, and the wait between.

    The ``openai`` client's own retries are switched off (``max_retries=0``) and this policy is
    the only one: every attempt is counted in :attr:`Completion.attempts` (translation reports
    the requests it sent), the last failure's reason is what the commands count and report, and
    the Google client, which has no retries of its own, follows the same rules.

    Attributes:
      max_retries: extra attempts after a retryable failure (0: one attempt).
      backoff: the first retry's delay in seconds; it doubles each retry, with jitter (x0.5 to
        x1.5), up to ``max_backoff``.
      timeout: seconds each attempt may take.
      max_backoff: the longest delay before a retry, in seconds.
      retry_statuses: HTTP statuses asked again (408 request timeout, 429 too many requests);
        any other 4xx (400, 401, 403, 404, ...) is final at once.
      retry_server_errors: ask again after any 5xx.
      retry_transient: ask again after a failure without a status that may pass (timeouts,
        dropped connections, malformed bodies).

    Raises:
      ConfigError: a value out of range (the message names the field).
    """

    max_retries: int = 5
    backoff: float = 1.0
    timeout: float = 60.0
    max_backoff: float = 30.0
    retry_statuses: frozenset[int] = frozenset({408, 429})
    retry_server_errors: bool = True
    retry_transient: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, got {self.max_retries}")
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be positive, got {self.timeout}")
        if not (self.backoff >= 0 and self.max_backoff >= 0):
            raise ConfigError(f"backoff must be 0 or more, got {self.backoff}/{self.max_backoff}")

    def retries(self, failure: AttemptError) -> bool:
        """Whether asking again may help after ``failure``."""
        if failure.status is None:
            return self.retry_transient and failure.transient
        if failure.status >= 500:
            return self.retry_server_errors
        return failure.status in self.retry_statuses

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...), jittered."""
        return min(self.max_backoff, self.backoff * 2 ** (retry - 1)) * (0.5 + random.random())

    def call(self, attempt: Callable[[], str], what: str) -> Completion:
        """``attempt()`` until it answers, a failure is final, or the retries are spent.

        Args:
          attempt: one request; returns the answer's text or raises :class:`AttemptError`.
          what: the request's kind in debug lines (``chat``, ``translate``).

        Returns:
          The text with the attempts it took, or the last failure's reason.
        """
        failure = AttemptError("no attempt")
        for number in range(1, self.max_retries + 2):
            try:
                return Completion(text=attempt(), attempts=number)
            except AttemptError as e:
                failure = e
            if number > self.max_retries or not self.retries(failure):
                break
            delay = self.delay(number)
            log.debug("%s request failed (%s), retry %d in %.2fs", what, failure, number, delay)
            time.sleep(delay)
        return Completion(text=None, error=failure.reason, attempts=number)


def check_concurrency(concurrency: int) -> int:
    """``concurrency`` when it is at least 1.

    Raises:
      ConfigError: it is not.
    """
    if isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    return concurrency


def iter_concurrent(
    call: Callable[[T], R], items: Sequence[T], concurrency: int
) -> Iterator[tuple[int, R]]:
    """``(index, call(item))`` for every item, ``concurrency`` in flight, in the order they end."""
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = {pool.submit(call, item): i for i, item in enumerate(items)}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()


def quiet_url_loggers() -> None:
    """Silences the HTTP stack's per-request log lines, which show URLs with their query."""
    for name in URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
