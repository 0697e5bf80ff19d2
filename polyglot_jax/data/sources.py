"""Readers that turn dataset files into chat examples ``{id, lang, messages}``.

Every reader yields plain dicts with a stable ``id`` (a content hash when the file has none),
a registry language code and a list of ``{"role", "content"}`` messages. Bad records raise
:class:`DataError` naming the file and line, or are skipped and counted when ``skip_bad`` is set.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from etils import epath

from polyglot_jax import languages
from polyglot_jax.errors import DataError, MissingFileError

ROLES = ("system", "user", "assistant")


@dataclasses.dataclass
class SkipCounter:
    """Counts records skipped per reason, for runs that set ``skip_bad``."""

    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def add(self, reason: str) -> None:
        self.counts[reason] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def content_id(messages: list[dict]) -> str:
    """A stable id from the messages' roles and contents."""
    digest = hashlib.sha256(
        json.dumps(messages, ensure_ascii=False, sort_keys=True).encode("utf-8")
    ).hexdigest()
    return f"sha-{digest[:16]}"


def validate_example(
    record: object, where: str, lang: str | None = None, require_user: bool = False
) -> dict:
    """Checks one decoded record and returns it normalised to ``{id, lang, messages}``.

    Args:
      record: the decoded JSON value.
      where: ``file:line`` used in error messages.
      lang: the expected language; the record's own ``lang`` must match when both are set.
      require_user: the conversation must have a user turn (a training or prompt record).

    Raises:
      DataError: with ``where`` and the problem in one line.
    """
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: field 'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise DataError(f"{where}: messages[{i}] must be an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise DataError(f"{where}: messages[{i}].role {role!r} is not one of {ROLES}")
        if not isinstance(content, str):
            raise DataError(f"{where}: messages[{i}].content must be a string")
        if not content.strip():
            raise DataError(f"{where}: messages[{i}].content is empty")
    if require_user and not any(m["role"] == "user" for m in messages):
        roles = ", ".join(m["role"] for m in messages)
        raise DataError(f"{where}: the conversation has no user turn (roles: {roles})")
    record_lang = record.get("lang", lang)
    if record_lang is None:
        raise DataError(f"{where}: field 'lang' is missing")
    try:
        record_lang = languages.get(record_lang).code  # "spa_Latn", "ES", "es-MX" -> "es"
        lang = None if lang is None else languages.get(lang).code
    except languages.UnknownLanguageError as e:
        raise DataError(f"{where}: {e}") from None
    if lang is not None and record_lang != lang:
        raise DataError(f"{where}: record language {record_lang!r} but file is {lang!r}")
    record_id = record.get("id")
    if record_id is None:
        record_id = content_id(messages)
    elif not isinstance(record_id, str | int):
        raise DataError(f"{where}: field 'id' must be a string or integer")
    return {"id": str(record_id), "lang": record_lang, "messages": messages}


MAX_LINE_BYTES = 16 * 1024 * 1024
"""Default bound on one JSONL line; a longer line is a bad record, never read whole."""

_DRAIN_CHUNK = 64 * 1024


def _drain_line(f: BinaryIO, start: int) -> int:
    """Reads the rest of a line in chunks (none kept); the line's size without its newline."""
    size = start
    while True:
        chunk = f.readline(_DRAIN_CHUNK)
        size += len(chunk)
        if not chunk:
            return size
        if chunk.endswith(b"\n"):
            return size - 1


def iter_json_lines(
    path: str | pathlib.Path,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
    max_line_bytes: int | None = None,
) -> Iterator[tuple[str, object]]:
    """Yields ``("file:line", decoded value)`` for each non-blank line of a JSONL file.

    The file is streamed in binary: at most ``max_line_bytes`` of a line are held in memory, so
    an over-long line costs no more than the limit.

    Args:
      path: the JSONL file.
      skip_bad: skip bad lines and count them in ``skipped`` instead of raising.
      skipped: counter for skipped lines.
      max_line_bytes: longest accepted line (default :data:`MAX_LINE_BYTES`).

    Raises:
      MissingFileError: ``path`` does not exist.
      DataError: invalid UTF-8, malformed JSON or a line over the limit, naming ``file:line``
        (unless ``skip_bad``).
    """
    path = epath.Path(os.fspath(path))  # local or gs://
    limit = MAX_LINE_BYTES if max_line_bytes is None else max_line_bytes
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise MissingFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a JSONL file") from None
    with f:
        line_number = 0
        while True:
            raw = f.readline(limit + 1)
            if not raw:
                return
            line_number += 1
            where = f"{path}:{line_number}"
            try:
                if len(raw) > limit and not (len(raw) == limit + 1 and raw.endswith(b"\n")):
                    size, raw = _drain_line(f, len(raw)), b""
                    raise DataError(
                        f"{where}: line too long ({size} bytes; the limit is {limit} bytes)"
                    )
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{where}: invalid UTF-8 ({e.reason})") from None
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as e:
                    raise DataError(f"{where}: malformed JSON ({e.msg})") from None
            except DataError as e:
                skip_or_raise(e, skip_bad, skipped)
                continue
            yield where, value


def read_json_file(path: str | pathlib.Path) -> object:
    """The decoded value of a whole JSON document (an Alpaca list, a SQuAD file).

    Raises:
      MissingFileError: ``path`` does not exist.
      DataError: naming ``path`` for invalid UTF-8, malformed or empty JSON.
    """
    path = epath.Path(os.fspath(path))  # local or gs://
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a JSON file") from None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: invalid UTF-8 at byte {e.start} ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None


def _parquet(path: pathlib.Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        raise MissingFileError(f"{path} does not exist")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: not a Parquet file ({reason})") from None


def table_columns(path: str | pathlib.Path) -> list[str] | None:
    """The column names of a Parquet file (None for JSONL, whose rows may differ)."""
    path = pathlib.Path(path)
    return _parquet(path).schema_arrow.names if path.suffix == ".parquet" else None


def iter_table_rows(
    path: str | pathlib.Path, skip_bad: bool = False, skipped: SkipCounter | None = None
) -> Iterator[tuple[str, object]]:
    """Yields ``(where, row)`` from a Parquet file (``file[row i]``, streamed in record batches)
    or a JSONL file (``file:line``, as :func:`iter_json_lines`)."""
    path = pathlib.Path(path)
    if path.suffix != ".parquet":
        yield from iter_json_lines(path, skip_bad, skipped)
        return
    i = 0
    for batch in _parquet(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield f"{path}[row {i}]", row
            i += 1


def skip_or_raise(error: DataError, skip_bad: bool, skipped: SkipCounter | None) -> None:
    """Raises ``error``, or (``skip_bad``) counts it under its reason in ``skipped``."""
    if not skip_bad:
        raise error
    if skipped is not None:
        skipped.add(str(error).split(": ", 1)[1].split(" (")[0])


def validated(
    items: Iterator[tuple[str, object]],
    lang: str | None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
    require_user: bool = False,
) -> Iterator[dict]:
    """Validates ``(where, record)`` pairs, skipping and counting bad ones when asked."""
    for where, record in items:
        try:
            yield validate_example(record, where, lang, require_user)
        except DataError as e:
            skip_or_raise(e, skip_bad, skipped)


def read_jsonl(
    path: str | pathlib.Path,
    lang: str | None = None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
    max_line_bytes: int | None = None,
) -> Iterator[dict]:
    """Yields validated chat examples from a JSONL file of ``{id, lang, messages}`` lines.

    Args:
      path: file with one JSON object per line (blank lines are ignored).
      lang: the language every record must have (or gets, when the record has none).
      skip_bad: skip bad lines and count them in ``skipped`` instead of raising.
      skipped: counter for skipped lines.
      max_line_bytes: longest accepted line (default :data:`MAX_LINE_BYTES`).

    Raises:
      DataError: naming ``path:line`` for invalid UTF-8, malformed JSON, a line over the limit
        or a bad record.
    """
    lines = iter_json_lines(path, skip_bad, skipped, max_line_bytes)
    yield from validated(lines, lang, skip_bad, skipped)


def read_prompts_jsonl(
    path: str | pathlib.Path,
    lang: str,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """Yields prompt-only examples from ``{"id", "prompt"}`` lines (OASST test prompts).

    Each prompt becomes a one-message conversation with no reference answer. Bad lines raise
    :class:`DataError` naming ``path:line``, or are skipped and counted with ``skip_bad``.
    """
    languages.get(lang)

    def records() -> Iterator[tuple[str, object]]:
        for where, record in iter_json_lines(path, skip_bad, skipped):
            prompt = record.get("prompt") if isinstance(record, dict) else None
            if not isinstance(prompt, str):
                problem = "field 'prompt' must be a string"
                if not isinstance(record, dict):
                    problem = f"expected a JSON object, got {type(record).__name__}"
                skip_or_raise(DataError(f"{where}: {problem}"), skip_bad, skipped)
                continue
            out = {"lang": lang, "messages": [{"role": "user", "content": prompt}]}
            if "id" in record:
                out["id"] = record["id"]
            yield where, out

    yield from validated(records(), lang, skip_bad, skipped)


def without_none_ids(items: Iterator[tuple[str, object]]) -> Iterator[tuple[str, object]]:
    """Drops a None ``id`` so that the record gets a content-hash id."""
    for where, record in items:
        if isinstance(record, dict) and record.get("id") is None:
            record = {k: v for k, v in record.items() if k != "id"}
        yield where, record
