"""SQLite store of judgments, keyed by everything that determines them.

The key hashes (protocol, judge, prompt, responses, judge prompt text), so a re-run finds every
stored judgment and sends no request for it, and an interrupted run resumes where it stopped.
Judgments that parsed (``ok``) or did not (``invalid``, raw text kept) are final; ``failed``
ones (the request never succeeded) are tried again on the next run. No credentials are stored.

The file is a :class:`sqlite_cache.Cache` of :data:`JUDGMENTS` (WAL, safe across threads), and
one judge process uses it at a time: :func:`exclusive` holds an ``flock`` on ``<db>.lock`` for
the run, so a second process on the same cache stops at once instead of sending every request
again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from polyglot_jax.clients import sqlite_cache

STATUSES = ("ok", "invalid", "failed")
JUDGMENTS = sqlite_cache.Table(
    "judgments",
    tuple(
        (name, "TEXT")
        for name in ("protocol", "judge", "item_id", "status", "raw", "parsed", "reason")
    ),
    what="judgment cache",
    owner="judge",
    json_columns=frozenset({"parsed"}),
)


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


# Holds ``<db>.lock`` for a block, one judge process per cache at a time (BusyError otherwise).
exclusive = JUDGMENTS.lock


class JudgmentStore(sqlite_cache.Store):
    """A thread-safe SQLite table of :class:`Judgment` rows; closes when used with ``with``.

    Raises:
      DataError: ``path`` is not a SQLite database (or cannot be opened as one).
    """

    table = JUDGMENTS

    def get(self, key: str) -> Judgment | None:
        record = self.cache.get(key)
        return None if record is None else _judgment(key, record)

    def done(self, key: str) -> bool:
        """Stored with a final status (``ok`` or ``invalid``)."""
        judgment = self.get(key)
        return judgment is not None and judgment.status != "failed"

    def put(self, judgment: Judgment) -> None:
        """Inserts or replaces, and commits at once (nothing judged is lost on a crash)."""
        if judgment.status not in STATUSES:
            raise ValueError(f"unknown judgment status {judgment.status!r}")
        record = dataclasses.asdict(judgment)
        self.cache.put(record.pop("key"), record)

    def all(self, protocol: str | None = None) -> list[Judgment]:
        where = {} if protocol is None else {"protocol": protocol}
        return [_judgment(key, record) for key, record in self.cache.items(**where)]

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        """Judgments per status (of ``keys`` when given)."""
        wanted = None if keys is None else set(keys)
        out = dict.fromkeys(STATUSES, 0)
        for j in self.all():
            if wanted is None or j.key in wanted:
                out[j.status] += 1
        return out


def _judgment(key: str, record: dict[str, Any]) -> Judgment:
    return Judgment(
        key=key, **{**record, "raw": record["raw"] or "", "reason": record["reason"] or ""}
    )
