"""Reading ``infer`` outputs: JSONL files of ``{"id", "lang", "response", ...}`` records."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable

from polyglot_jax.errors import DataError, MissingFileError

REQUIRED_FIELDS = ("id", "lang", "response")


def output_files(paths: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
    """Expands directories to the ``*.jsonl`` files in them, in sorted order."""
    out = []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            out.extend(sorted(path.glob("*.jsonl")))
        elif path.exists():
            out.append(path)
        else:
            raise MissingFileError(f"inference output {path} does not exist")
    if not out:
        raise MissingFileError(f"no inference outputs (*.jsonl) in {[str(p) for p in paths]}")
    return out


def read_outputs(path: pathlib.Path) -> list[dict]:
    """Inference records of one file; a bad line is a :class:`DataError` naming file:line."""
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{number}: malformed JSON ({e.msg})") from None
            missing = [
                k for k in REQUIRED_FIELDS if not isinstance(record, dict) or k not in record
            ]
            if missing:
                raise DataError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
            records.append(record)
    return records
