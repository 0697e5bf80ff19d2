"""The JSONL files that inference writes: resume, atomic rewrites, host parts and a folder lock.

An output file only grows by appended lines. When a run resumes, every line that decodes as a
record is kept wherever it is in the file; lines that do not (a line cut by a killed run, bytes
damaged on disk) are counted in a warning and dropped by rewriting the file to a temporary file
beside it that is then renamed over it, so an interrupted or failing rewrite leaves the original
file as it was. One process at a time writes to an output folder: :func:`locked` holds an
exclusive ``flock`` on a lock file in it for the whole run.

``decoding.json`` records the settings the folder's answers were decoded with; a run that would
append answers decoded with other settings is refused (:func:`check_settings`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from etils import epath

from polyglot_jax import storage
from polyglot_jax.errors import ConfigError, DataError, MissingFileError, RunDirError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
SETTINGS_NAME = "decoding.json"


@dataclasses.dataclass
class Scan:
    """What an output file holds.

    Attributes:
      lines: the lines that decode as records, in file order, without their newline.
      keys: ``(id, sample)`` of those records.
      corrupt: 1-based numbers of the lines that do not decode as records.
      cut: the last line has no newline (a write was interrupted).
    """

    lines: list[str] = dataclasses.field(default_factory=list)
    keys: set[tuple[str, int]] = dataclasses.field(default_factory=set)
    corrupt: list[int] = dataclasses.field(default_factory=list)
    cut: bool = False

    @property
    def clean(self) -> bool:
        """Nothing to drop and nothing to finish: new lines can be appended as is."""
        return not self.corrupt and not self.cut


def _record(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "id" in record else None


def scan(path: epath.Path) -> Scan:
    """Reads every line of ``path`` (absent: empty) and sorts records from damaged lines.

    Raises:
      DataError: a record whose ``id`` or ``sample`` has the wrong type (not damage: a file
        written by something else), named by file and line.
    """
    out = Scan()
    if not path.exists():
        return out
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            out.cut = not raw.endswith(b"\n")
            if not raw.strip():
                continue
            record = _record(raw)
            if record is None:
                out.corrupt.append(number)
                continue
            key = record["id"], record.get("sample", 0)
            if not isinstance(key[0], str | int) or not isinstance(key[1], int):
                raise DataError(
                    f"{path}:{number}: 'id' must be a string and 'sample' an integer, got "
                    f"{type(key[0]).__name__} and {type(key[1]).__name__}; fix or remove the line"
                )
            out.lines.append(raw.rstrip(b"\r\n").decode("utf-8"))
            out.keys.add((str(key[0]), key[1]))
    return out


def resume(path: str | os.PathLike) -> set[tuple[str, int]]:
    """Prepares ``path`` for appending and returns the ``(id, sample)`` it already holds.

    A file with damaged lines or a cut last line is rewritten atomically with every valid
    line, in order; the damaged lines are counted in a warning. The caller holds the folder's
    lock (:func:`locked`), so temporary files of ``path`` are left by a killed process.
    """
    path = storage.as_path(path)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed rewrite
        stale.unlink()
    found = scan(path)
    if found.clean:
        return found.keys
    if found.corrupt:
        shown = ", ".join(map(str, found.corrupt[:10])) + (
            ", ..." if len(found.corrupt) > 10 else ""
        )
        log.warning(
            "%s: dropped %d corrupt lines (line %s); kept %d valid records",
            path,
            len(found.corrupt),
            shown,
            len(found.lines),
        )
    write_lines_atomic(path, found.lines)
    return found.keys


def write_lines_atomic(path: str | os.PathLike, lines: Iterable[str]) -> None:
    """Writes ``lines`` (newline-terminated) to a temporary file beside ``path``, then renames.

    If writing fails (a full disk, a killed process), ``path`` is left as it was and the
    temporary file is removed when the process is still alive to do so.
    """
    path = storage.as_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
            if storage.is_local(tmp):
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def part_name(name: str, index: int, count: int) -> str:
    """File name of host ``index`` of ``count``'s share of output ``name``."""
    return f"{name}.part-{index:05d}-of-{count:05d}.jsonl"


def merge_parts(out_dir: str | os.PathLike, name: str, count: int) -> epath.Path:
    """Interleaves the hosts' ``part`` files of ``name`` back into prompt order.

    Host ``i`` answered prompts ``i, i + count, ...``, so taking one prompt's lines from each
    part in turn restores the order of the single-host file. The merged file is written
    atomically; damaged lines of a part are counted in a warning and left out.

    Raises:
      MissingFileError: a part is missing.
    """
    out_dir = storage.as_path(out_dir)
    groups: list[list[list[str]]] = []
    for index in range(count):
        path = out_dir / part_name(name, index, count)
        if not path.exists():
            raise MissingFileError(f"{path}: missing, host {index} has not finished {name}")
        found = scan(path)
        if found.corrupt:
            log.warning("%s: left out %d corrupt lines", path, len(found.corrupt))
        by_id: dict[str, list[str]] = {}
        for line in found.lines:
            by_id.setdefault(json.loads(line)["id"], []).append(line)
        groups.append(list(by_id.values()))
    merged = (
        line
        for row in itertools.zip_longest(*groups, fillvalue=[])
        for group in row
        for line in group
    )
    target = out_dir / f"{name}.jsonl"
    write_lines_atomic(target, merged)
    return target


@contextlib.contextmanager
def locked(out_dir: str | os.PathLike, lock_name: str = LOCK_NAME) -> Iterator[None]:
    """Holds an exclusive lock on ``out_dir`` (a ``lock_name`` file holding our pid).

    The lock is an ``flock``: the system releases it when the process ends, however it ends,
    so a lock file left by a dead process never blocks. A folder that is not local (``gs://``)
    cannot be locked this way; it is used unlocked and the log says so.

    Raises:
      BusyError: another process holds the lock (the message names its pid).
    """
    out_dir = storage.as_path(out_dir)
    if not storage.is_local(out_dir):
        log.info("%s is not a local folder: not locked against other infer processes", out_dir)
        yield
        return
    busy = (
        f"{out_dir} is in use by another infer process (pid {{pid}}); wait for it or pass "
        f"another INFER_OUTPUT_DIR"
    )
    with storage.exclusive(out_dir / lock_name, busy):
        yield


def read_settings(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``decoding.json`` of an output folder (None when there is none).

    Raises:
      RunDirError: the file is not a JSON object.
    """
    path = storage.as_path(out_dir) / SETTINGS_NAME
    if not path.exists():
        return None
    return storage.read_json_object(path, RunDirError, "; remove it with the answers beside it")


def check_settings(
    out_dir: str | os.PathLike, settings: dict[str, Any], compared: Iterable[str]
) -> dict[str, Any] | None:
    """Refuses to add answers decoded with ``settings`` to a folder decoded with other ones.

    Only the ``compared`` keys that both the folder's ``decoding.json`` and ``settings`` hold
    are compared, and only when the folder already holds answers (``*.jsonl``).

    Returns:
      The settings the folder's answers were decoded with (None: no answers yet).

    Raises:
      ConfigError: a compared setting differs; the message names each one and the folder.
      RunDirError: ``decoding.json`` cannot be read.
    """
    out_dir = storage.as_path(out_dir)
    old = read_settings(out_dir)
    if old is None or not out_dir.exists() or not any(out_dir.glob("*.jsonl")):
        return None
    differ = [
        f"{key} {old[key]!r} (now {settings[key]!r})"
        for key in compared
        if key in old and key in settings and old[key] != settings[key]
    ]
    if differ:
        raise ConfigError(
            f"{out_dir} holds answers decoded with other settings: {'; '.join(differ)}; use "
            f"the original settings or another INFER_OUTPUT_DIR"
        )
    return old
