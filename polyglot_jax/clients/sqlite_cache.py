"""One SQLite cache of answers that cost a request: keyed records of JSON values, with a lock.

The judgment store (``evaluation.judges.store``) and the translation cache
(:mod:`translate_cache`) are both a :class:`Cache` over a :class:`Table` of their own. A cache
file holds the table: ``key TEXT PRIMARY KEY`` and a column per field of the records it keeps,
so the file reads with any SQLite client and files written before this module read as they are
(same tables, same columns). A record is a JSON object: text, numbers and null are stored as
they are, and the fields a table names in ``json_columns`` (objects, lists) as JSON text.

Safe with several threads and several processes:

- threads share one connection under a lock; every :meth:`Cache.put` commits at once, so
  nothing is lost when the process dies;
- the journal is WAL (readers in other processes never block the writer; ``synchronous=NORMAL``
  keeps every committed row through a crash of the process without an fsync a row) with a busy
  timeout, so a second writer waits instead of failing;
- :meth:`Table.lock` holds an ``flock`` on ``<db>.lock`` for a whole run: a second process on
  the same cache stops at once (naming the first) instead of sending every request again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import sqlite3
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from polyglot_jax import storage
from polyglot_jax.errors import DataError

BUSY_TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True)
class Table:
    """The one table of a cache file, and who uses it.

    Attributes:
      name: the SQL table's name.
      columns: ``(name, SQL type)`` of every field, after ``key``.
      what: what the file holds, for messages (``"judgment cache"``).
      owner: the command that uses it, for the busy message (``"judge"``).
      json_columns: fields stored as JSON text.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    what: str
    owner: str
    json_columns: frozenset[str] = frozenset()

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def lock(self, db: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
        """Holds ``<db>.lock`` for the block: one process per cache at a time.

        Raises:
          BusyError: another process holds it (the message names the cache and that process).
        """
        busy = (
            f"{db} is in use by another {self.owner} process (pid {{pid}}); wait for it or use "
            "another --db"
        )
        return storage.exclusive(f"{os.fspath(db)}.lock", busy)


class Cache:
    """Keyed records in a local SQLite file, shared by threads (see the module's notes).

    Args:
      path: the database file; it and its folder are created if missing.
      table: the table it holds (created if missing).

    Raises:
      DataError: ``path`` is not a SQLite database, cannot be opened as one, or holds the
        table without one of its columns.
    """

    def __init__(self, path: str | os.PathLike, table: Table) -> None:
        self.path, self.table = pathlib.Path(path), table
        self._lock = threading.Lock()
        self._db = _connect(self.path, table)

    def get(self, key: str) -> dict[str, Any] | None:
        """The record stored under ``key``, or None."""
        names = ", ".join(self.table.fields)
        with self._lock:
            row = self._db.execute(
                f"SELECT {names} FROM {self.table.name} WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else self._record(row)

    def put(self, key: str, record: Mapping[str, Any]) -> None:
        """Stores ``record`` under ``key`` (replacing what was there) and commits at once.

        Raises:
          ValueError: a field the table lacks, or an object or list in a field not stored as
            JSON.
        """
        unknown = set(record) - set(self.table.fields)
        if unknown:
            raise ValueError(f"{self.table.name} has no field {sorted(unknown)[0]!r}")
        values = [self._value(name, record.get(name)) for name in self.table.fields]
        names = ", ".join(("key", *self.table.fields))
        marks = ", ".join("?" * (len(values) + 1))
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO {self.table.name} ({names}) VALUES ({marks})",
                (key, *values),
            )
            self._db.commit()

    def items(self, **where: Any) -> list[tuple[str, dict[str, Any]]]:
        """``(key, record)`` of every stored record whose fields equal ``where``'s, oldest first."""
        unknown = set(where) - set(self.table.fields)
        if unknown:
            raise ValueError(f"{self.table.name} has no field {sorted(unknown)[0]!r}")
        query = f"SELECT key, {', '.join(self.table.fields)} FROM {self.table.name}"
        if where:
            query += " WHERE " + " AND ".join(f"{name} = ?" for name in where)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY rowid", tuple(where.values())).fetchall()
        return [(row[0], self._record(row[1:])) for row in rows]

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute(f"SELECT COUNT(*) FROM {self.table.name}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _value(self, name: str, value: Any) -> Any:
        if name in self.table.json_columns:
            return None if value is None else json.dumps(value)
        if isinstance(value, dict | list | tuple):
            raise ValueError(f"{self.table.name}.{name} is not stored as JSON: {value!r}")
        return value

    def _record(self, row: tuple) -> dict[str, Any]:
        return _record(self.table, row)


def _record(table: Table, row: tuple) -> dict[str, Any]:
    """A stored row's record, JSON columns decoded."""
    return {
        name: json.loads(value) if name in table.json_columns and value is not None else value
        for name, value in zip(table.fields, row, strict=True)
    }


def read_finished(path: str | os.PathLike, table: Table) -> list[tuple[str, dict[str, Any]]]:
    """Every ``(key, record)`` of ``table`` in a cache file, read without writing to its folder.

    For reports over finished caches: a file whose writers have all closed (no ``-wal`` file
    beside it) is opened immutable, so no WAL, shared-memory or lock file is made; otherwise
    read-only. A file without the table has no rows.

    Raises:
      DataError: the file is not a SQLite database.
    """
    path = pathlib.Path(path).resolve()
    flags = "mode=ro" if path.with_name(path.name + "-wal").exists() else "mode=ro&immutable=1"
    names = ", ".join(("key", *table.fields))
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?{flags}", uri=True)) as db:
            have = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if table.name not in have:
                return []
            rows = db.execute(f"SELECT {names} FROM {table.name} ORDER BY rowid").fetchall()
    except sqlite3.DatabaseError as e:
        raise DataError(f"{path}: not a usable {table.what} ({e})") from None
    return [(row[0], _record(table, row[1:])) for row in rows]


def _connect(path: pathlib.Path, table: Table) -> sqlite3.Connection:
    """The database in WAL mode with ``table`` created and checked.

    Raises:
      DataError: see :class:`Cache`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(f"{name} {kind}" for name, kind in table.columns)
    db = None
    try:
        db = sqlite3.connect(os.fspath(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"CREATE TABLE IF NOT EXISTS {table.name} (key TEXT PRIMARY KEY, {columns})")
        db.commit()
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table.name})")}
        missing = [name for name in ("key", *table.fields) if name not in have]
        if missing:
            raise sqlite3.DatabaseError(f"table {table.name} has no column {missing[0]}")
    except sqlite3.DatabaseError as e:
        if db is not None:
            db.close()
        raise DataError(f"{path}: not a usable {table.what} ({e})") from None
    return db


class Store:
    """Base of a typed store kept in one :class:`Cache` of the subclass's :attr:`table`.

    A subclass turns its records into its own type; this base opens the cache, counts and
    closes it, and closes it at the end of a ``with`` block.

    Args:
      path: the database file.

    Raises:
      DataError: see :class:`Cache`.
    """

    table: ClassVar[Table]

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = pathlib.Path(path)
        self.cache = Cache(self.path, self.table)

    def __len__(self) -> int:
        return len(self.cache)

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
