"""SQLite cache of translated messages, keyed by everything that determines a translation.

The key hashes (backend, model, prompt version, source language, masked source text, target
language), so a re-run finds every finished message and sends no request for it, and a run
killed at any moment resumes where it stopped: each answer is committed as it arrives (WAL).
``ok`` and ``rejected`` (the answer failed its checks twice) rows are final; ``failed`` rows
(no answer at all) are tried again on the next run. No credentials are stored.

One process uses a cache at a time: :func:`exclusive` holds an ``flock`` on ``<db>.lock`` for
the run, so a second process on the same cache stops at once instead of sending every request
again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import threading

from polyglot_jax import storage

STATUSES = ("ok", "rejected", "failed")
_COLUMNS = "key, status, translation, reason, attempts"


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


def exclusive(db: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
    """Holds ``<db>.lock`` for the block: one translate process per cache at a time.

    Raises:
      BusyError: another process holds it (the message names the cache and that process).
    """
    busy = (
        f"{db} is in use by another translate process (pid {{pid}}); wait for it or use "
        f"another --db"
    )
    return storage.exclusive(f"{os.fspath(db)}.lock", busy)


class TranslationCache:
    """A thread-safe SQLite table of :class:`Entry` rows.

    Raises:
      DataError: ``path`` is not a SQLite database (or cannot be opened as one).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = pathlib.Path(path)
        self._lock = threading.Lock()
        self._db = storage.open_sqlite(
            self.path,
            """CREATE TABLE IF NOT EXISTS translations (
                    key TEXT PRIMARY KEY, status TEXT, translation TEXT, reason TEXT,
                    attempts INTEGER, backend TEXT, model TEXT, prompt_version TEXT,
                    source_lang TEXT, target_lang TEXT, source TEXT)""",
            "translation cache",
        )

    def get(self, key: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM translations WHERE key = ?", (key,)
            ).fetchone()
        return Entry(*row) if row else None

    def put(self, entry: Entry, **inputs: str) -> None:
        """Inserts or replaces, and commits at once (nothing translated is lost on a crash).

        Args:
          entry: the result.
          **inputs: ``backend``, ``model``, ``prompt_version``, ``source_lang``,
            ``target_lang`` and ``source`` (the masked text), kept for inspection.
        """
        if entry.status not in STATUSES:
            raise ValueError(f"unknown translation status {entry.status!r}")
        names = ("backend", "model", "prompt_version", "source_lang", "target_lang", "source")
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.key,
                    entry.status,
                    entry.translation,
                    entry.reason,
                    entry.attempts,
                    *(inputs.get(n, "") for n in names),
                ),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
