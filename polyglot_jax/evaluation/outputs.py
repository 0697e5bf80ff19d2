"""Reading ``infer`` outputs: JSONL files of ``{"id", "lang", "response", ...}`` records."""

from __future__ import annotations

import os
from collections.abc import Iterable

from etils import epath

from polyglot_jax import languages, storage
from polyglot_jax.data import sources
from polyglot_jax.errors import DataError, MissingFileError

REQUIRED_FIELDS = ("id", "lang", "response")
# Field types that later stages rely on; ``id`` may be a number in hand-made files.
_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str, int),
    "lang": (str,),
    "response": (str,),
    "prompt": (str,),
    "reference": (str,),
    "sample": (int,),
}
_NULLABLE = frozenset({"reference"})  # infer writes null for a prompt without a held-out answer


def output_files(paths: Iterable[str | os.PathLike]) -> list[epath.Path]:
    """Expands directories to the ``*.jsonl`` files in them, in sorted order."""
    paths = [storage.as_path(p) for p in paths]
    out = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.jsonl") if p.is_file()))
        elif path.exists():
            out.append(path)
        else:
            raise MissingFileError(f"inference output {path} does not exist")
    if not out:
        raise MissingFileError(f"no inference outputs (*.jsonl) in {[str(p) for p in paths]}")
    return out


def read_outputs(path: str | os.PathLike) -> list[dict]:
    """Inference records of one file.

    Raises:
      DataError: a line that is not UTF-8 or JSON, a record without ``id``, ``lang`` or
        ``response`` or with a field of the wrong type, or a language code the registry does
        not know; the message names ``file:line``.
    """
    records = []
    for where, record in sources.iter_json_lines(path):
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        missing = [k for k in REQUIRED_FIELDS if k not in record]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
        for key, types in _TYPES.items():
            value = record.get(key)
            if value is None and key in _NULLABLE:
                continue
            if key in record and (isinstance(value, bool) or not isinstance(value, types)):
                expected = " or ".join(t.__name__ for t in types)
                raise DataError(f"{where}: field {key!r} should be {expected}, got {value!r}")
        try:
            languages.get(record["lang"])
        except languages.UnknownLanguageError:
            raise DataError(
                f"{where}: unknown language code {record['lang']!r} in field 'lang' "
                f"(expected an ISO 639-1 code such as 'en')"
            ) from None
        records.append(record)
    return records


def read_all(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """The records of every inference file in ``paths`` (files or folders of ``*.jsonl``).

    Raises:
      MissingFileError: a path does not exist, or no file was found.
      DataError: a bad record (see :func:`read_outputs`), or no record in any file.
    """
    files = output_files(paths)
    records = [r for path in files for r in read_outputs(path)]
    if not records:
        raise DataError(f"no inference records in {', '.join(map(str, files))} (empty files)")
    return records
