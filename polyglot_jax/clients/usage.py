"""Token usage of judge and translation requests, kept beside their cached results.

An OpenAI-compatible server answers each chat completion with ``usage`` (``prompt_tokens``,
``completion_tokens``); :class:`OpenAIBackend <polyglot_jax.clients.backends.OpenAIBackend>`
returns it on a :class:`UsageCompletion`. The judge and translate commands write one row per
answered request into the ``usage`` table of their SQLite cache file (:class:`UsageStore`),
keyed by the cached result's key, with the stage, the model, the run or dataset and the
language, so a cost table can be made later from the cache files alone. Requests answered from
the cache send nothing and add no row.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from polyglot_jax.clients import sqlite_cache
from polyglot_jax.clients.http_client import Completion

CHARACTER_BILLED = "google-translate"  # model prefix of usage counted in characters sent

USAGE = sqlite_cache.Table(
    "usage",
    (
        ("stage", "TEXT"),
        ("model", "TEXT"),
        ("run", "TEXT"),
        ("lang", "TEXT"),
        ("prompt_tokens", "INTEGER"),
        ("completion_tokens", "INTEGER"),
    ),
    what="usage table",
    owner="judge or translate",
)


@dataclasses.dataclass(frozen=True)
class Usage:
    """Tokens one answered request was billed for.

    Attributes:
      model: the model asked (as sent in the request).
      prompt_tokens: input tokens.
      completion_tokens: output tokens. A service billed by characters (Google Translate,
        model ``google-translate/<model>``) reports the characters it was sent as
        ``prompt_tokens`` and 0 here.
    """

    model: str
    prompt_tokens: int
    completion_tokens: int


@dataclasses.dataclass(frozen=True)
class UsageCompletion(Completion):
    """A :class:`Completion` with the answering request's :class:`Usage` (None: not reported)."""

    usage: Usage | None = None


def from_response(model: str, response: Any) -> Usage | None:
    """The ``usage`` of an OpenAI chat-completion response, or None when it has none."""
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(model, prompt, completion)


class UsageStore(sqlite_cache.Store):
    """The ``usage`` table of a judge or translation cache file.

    Raises:
      DataError: ``path`` is not a SQLite database (or cannot be opened as one).
    """

    table = USAGE

    def put(self, key: str, stage: str, run: str, lang: str, usage: Usage) -> None:
        """Stores the usage of the request whose result is cached under ``key``."""
        record = {"stage": stage, "run": run, "lang": lang, **dataclasses.asdict(usage)}
        self.cache.put(key, record)

    def rows(self) -> list[dict[str, Any]]:
        """Every stored row (``key`` included)."""
        return [{"key": key, **record} for key, record in self.cache.items()]


def record(
    store: UsageStore, key: str, completion: Completion, stage: str, run: str, lang: str
) -> None:
    """Stores ``completion``'s usage under ``key`` when the server reported one."""
    usage = getattr(completion, "usage", None)
    if isinstance(usage, Usage):
        store.put(key, stage, run, lang, usage)


def read(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The usage rows of a cache file (none when the file does not exist)."""
    if not os.path.exists(path):
        return []
    return [{"key": key, **record} for key, record in sqlite_cache.read_finished(path, USAGE)]
