"""How every stage reads and writes files: one path type, atomic writes and exclusive locks.

Paths are ``etils.epath.Path``, so ``gs://bucket/run`` works like a local folder (a
``pathlib.Path`` would turn it into ``./gs:/bucket/run``). A file that others read is written to a
temporary file beside it and renamed over it, so a killed or failing write leaves the old file
as it was. A folder or cache that one process owns at a time is held with an ``flock``, which
the system releases however the process ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pathlib
from collections.abc import Iterator
from typing import Any

from etils import epath

from polyglot_jax.errors import BusyError, UserError

log = logging.getLogger(__name__)


def as_path(path: str | os.PathLike) -> epath.Path:
    """``path`` as an epath (``gs://bucket/x`` stays a bucket path, never ``./gs:/bucket/x``)."""
    return path if isinstance(path, epath.Path) else epath.Path(os.fspath(path))


def is_local(path: str | os.PathLike) -> bool:
    """Whether ``path`` is on this machine's file system (not ``gs://`` or another URI)."""
    return "://" not in os.fspath(path)


def local_file_for(folder: str | os.PathLike, name: str, kind: str) -> pathlib.Path:
    """A local file that belongs to ``folder``: ``folder/name``, or for a bucket a cache file.

    SQLite databases and locks need a local file system: for a ``gs://`` folder the file is
    ``$POLYGLOT_JAX_CACHE/<kind>/<hash of folder>-<name>`` (default ``~/.cache/polyglot_jax``),
    and the log says where. The file's folder is created.
    """
    if is_local(folder):
        path = pathlib.Path(folder) / name
    else:
        digest = hashlib.sha256(os.fspath(folder).encode()).hexdigest()[:16]
        root = pathlib.Path(os.environ.get("POLYGLOT_JAX_CACHE", "~/.cache/polyglot_jax"))
        path = root.expanduser() / kind / f"{digest}-{name}"
        log.info("%s of %s: local file %s", kind, os.fspath(folder), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Writes ``data`` (text as UTF-8) to a temporary file beside ``path``, renamed over it."""
    path = as_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    tmp.replace(path)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Atomic, indented JSON (UTF-8, not ASCII-escaped)."""
    write_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def read_json_object(
    path: str | os.PathLike, error: type[UserError], advice: str = ""
) -> dict[str, Any]:
    """The JSON object in ``path`` (a settings or config file a user or a cut write can break).

    Raises:
      error: the file is not JSON (``advice`` appended) or not a JSON object; the message names
        the file.
    """
    try:
        value = json.loads(as_path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{path}: not JSON ({e}){advice}") from None
    if not isinstance(value, dict):
        raise error(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


@contextlib.contextmanager
def exclusive(lock_file: str | os.PathLike, busy: str) -> Iterator[None]:
    """Holds an exclusive ``flock`` on the local ``lock_file`` (which records our pid).

    Args:
      lock_file: the lock file; created with its folder if missing, never deleted (so no
        process ever locks a deleted inode).
      busy: the error message when another process holds it; ``{pid}`` is replaced by that
        process's id.

    Raises:
      BusyError: another process holds the lock.
    """
    lock_file = os.fspath(lock_file)
    os.makedirs(os.path.dirname(lock_file) or ".", exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise BusyError(busy.replace("{pid}", holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
