"""SQLite cache of translated messages, keyed by everything that determines a translation.

The key hashes (backend, model, prompt version, source language, masked source text, target
language), so a re-run finds every finished message and sends no request for it, and a run
killed at any moment resumes where it stopped: each answer is committed as it arrives (WAL).
``ok`` and ``rejected`` (the answer failed its checks twice) rows are final; ``failed`` rows
(no answer at all) are tried again on the next run. No credentials are stored.

The file is a :class:`sqlite_cache.Cache` of :data:`TRANSLATIONS` (WAL, safe across threads),
and one process uses it at a time: :data:`exclusive` holds an ``flock`` on ``<db>.lock`` for the
run, so a second process on the same cache stops at once instead of sending every request again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from polyglot_jax.clients import sqlite_cache

STATUSES = ("ok", "rejected", "failed")
INPUTS = ("backend", "model", "prompt_version", "source_lang", "target_lang", "source")
TRANSLATIONS = sqlite_cache.Table(
    "translations",
    (
        ("status", "TEXT"),
        ("translation", "TEXT"),
        ("reason", "TEXT"),
        ("attempts", "INTEGER"),
        *((name, "TEXT") for name in INPUTS),
    ),
    what="translation cache",
    owner="translate",
)
# Holds ``<db>.lock`` for a block, one translate process per cache at a time (BusyError else).
exclusive = TRANSLATIONS.lock


@dataclasses.dataclass(frozen=True)
class Entry:
    """One cached message.

    Attributes:
      key: hash of the translation's inputs (:func:`cache_key`).
      status: ``ok``, ``rejected`` (failed its checks) or ``failed`` (no answer).
      translation: the restored translation (``ok``), else the last raw answer or ``""``.
      reason: why it was rejected or failed.
      attempts: answers requested for it (2 when the first failed its checks).
    """

    key: str
    status: str
    translation: str
    reason: str = ""
    attempts: int = 1


def cache_key(
    backend: str, model: str, prompt_version: str, source: str, text: str, target: str
) -> str:
    """Stable hash of one translation's inputs."""
    payload = json.dumps([backend, model, prompt_version, source, text, target], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class TranslationCache(sqlite_cache.Store):
    """A thread-safe SQLite table of :class:`Entry` rows; closes when used with ``with``.

    Raises:
      DataError: ``path`` is not a SQLite database (or cannot be opened as one).
    """

    table = TRANSLATIONS

    def get(self, key: str) -> Entry | None:
        record = self.cache.get(key)
        if record is None:
            return None
        return Entry(
            key, *(record[name] for name in ("status", "translation", "reason", "attempts"))
        )

    def put(self, entry: Entry, **inputs: str) -> None:
        """Inserts or replaces, and commits at once (nothing translated is lost on a crash).

        Args:
          entry: the result.
          **inputs: ``backend``, ``model``, ``prompt_version``, ``source_lang``,
            ``target_lang`` and ``source`` (the masked text), kept for inspection.
        """
        if entry.status not in STATUSES:
            raise ValueError(f"unknown translation status {entry.status!r}")
        record = dataclasses.asdict(entry)
        self.cache.put(record.pop("key"), record | {n: inputs.get(n, "") for n in INPUTS})
