"""SQLite store of judgments, keyed by everything that determines them.

The key hashes (protocol, judge, prompt, responses, judge prompt text), so a re-run finds every
stored judgment and sends no request for it, and an interrupted run resumes where it stopped.
Judgments that parsed (``ok``) or did not (``invalid``, raw text kept) are final; ``failed``
ones (the request never succeeded) are tried again on the next run. No credentials are stored.

One judge process uses a store at a time: :func:`exclusive` holds an ``flock`` on
``<db>.lock`` for the run, so a second process on the same cache stops at once instead of
sending every request again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import threading
from collections.abc import Iterable, Sequence

from polyglot_jax import storage

STATUSES = ("ok", "invalid", "failed")


@dataclasses.dataclass(frozen=True)
class Judgment:
    """One stored judgment.

    Attributes:
      key: hash of the judgment's inputs.
      protocol: judge protocol name (``pairwise``, ``single``, ...).
      judge: judge identity (``openai:gpt-4o``, ``local:/ckpt``); never a credential.
      item_id: the evaluated item (``<run>/<lang>/<id>``, with the order for pairwise).
      status: ``ok``, ``invalid`` (output did not parse) or ``failed`` (no output).
      raw: the judge's raw output (or the last error for ``failed``).
      parsed: the parsed verdict/scores (JSON), or None.
      reason: why it is invalid or failed.
    """

    key: str
    protocol: str
    judge: str
    item_id: str
    status: str
    raw: str
    parsed: dict | None
    reason: str = ""


def judgment_key(protocol: str, judge: str, parts: Sequence[str]) -> str:
    """Stable hash of a judgment's inputs."""
    payload = json.dumps([protocol, judge, *parts], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def exclusive(db: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
    """Holds ``<db>.lock`` for the block: one judge process per cache at a time.

    Raises:
      BusyError: another process holds it (the message names the cache and that process).
    """
    busy = f"{db} is in use by another judge process (pid {{pid}}); wait for it or use another --db"
    return storage.exclusive(f"{os.fspath(db)}.lock", busy)


class JudgmentStore:
    """A thread-safe SQLite table of :class:`Judgment` rows.

    Raises:
      DataError: ``path`` is not a SQLite database (or cannot be opened as one).
    """

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self._lock = threading.Lock()
        self._db = storage.open_sqlite(
            self.path,
            """CREATE TABLE IF NOT EXISTS judgments (
                    key TEXT PRIMARY KEY, protocol TEXT, judge TEXT, item_id TEXT,
                    status TEXT, raw TEXT, parsed TEXT, reason TEXT)""",
            "judgment cache",
        )

    def get(self, key: str) -> Judgment | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key, protocol, judge, item_id, status, raw, parsed, reason "
                "FROM judgments WHERE key = ?",
                (key,),
            ).fetchone()
        return _row(row) if row else None

    def done(self, key: str) -> bool:
        """Stored with a final status (``ok`` or ``invalid``)."""
        judgment = self.get(key)
        return judgment is not None and judgment.status != "failed"

    def put(self, judgment: Judgment) -> None:
        """Inserts or replaces, and commits at once (nothing judged is lost on a crash)."""
        if judgment.status not in STATUSES:
            raise ValueError(f"unknown judgment status {judgment.status!r}")
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    judgment.key,
                    judgment.protocol,
                    judgment.judge,
                    judgment.item_id,
                    judgment.status,
                    judgment.raw,
                    None if judgment.parsed is None else json.dumps(judgment.parsed),
                    judgment.reason,
                ),
            )
            self._db.commit()

    def all(self, protocol: str | None = None) -> list[Judgment]:
        query = "SELECT key, protocol, judge, item_id, status, raw, parsed, reason FROM judgments"
        with self._lock:
            if protocol is None:
                rows = self._db.execute(query).fetchall()
            else:
                rows = self._db.execute(query + " WHERE protocol = ?", (protocol,)).fetchall()
        return [_row(r) for r in rows]

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        """Judgments per status (of ``keys`` when given)."""
        wanted = None if keys is None else set(keys)
        out = dict.fromkeys(STATUSES, 0)
        for j in self.all():
            if wanted is None or j.key in wanted:
                out[j.status] += 1
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _row(row: tuple) -> Judgment:
    key, protocol, judge, item_id, status, raw, parsed, reason = row
    return Judgment(
        key,
        protocol,
        judge,
        item_id,
        status,
        raw or "",
        None if parsed is None else json.loads(parsed),
        reason or "",
    )
