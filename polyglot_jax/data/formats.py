"""Readers for the instruction datasets researchers download, all yielding ``{id, lang, messages}``.

- ``jsonl``: our own ``{id, lang, messages}`` lines.
- ``guanaco``: ``{"text": "### Human: ... ### Assistant: ..."}`` lines (OpenAssistant-Guanaco),
  also the ``<S1> ... <S2> ...`` turn markers of translated Guanaco files.
- ``alpaca``: a JSON list of ``{instruction, input, output}``, including the machine-translated
  ``alpaca_data_cleaned.<lang>.json`` files (language from the file name).
- ``lima``: ``{"conversations": [user, assistant, ...]}`` lines.
- ``dolly``: ``{instruction, context, response}`` lines (Dolly-15k).
- ``oasst1``: OASST1 messages (flat, with ``parent_id`` and ``rank``) or message trees; the
  top-ranked path of each tree becomes one conversation.
- ``table``: JSONL or Parquet rows with instruction/input/output or inputs/targets columns and a
  language column (Bactrian-X, Aya).

Every reader validates records (:func:`sources.validate_example`; a conversation needs a user
turn): a bad record raises :class:`sources.DataError` naming file and line (or row), or is
skipped and counted with ``skip_bad``. Records without an id get a content hash.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable, Iterator

from polyglot_jax import languages
from polyglot_jax.data import sources
from polyglot_jax.data.oasst import read_oasst1
from polyglot_jax.data.sources import DataError, SkipCounter
from polyglot_jax.errors import ConfigError

Reader = Callable[..., Iterator[dict]]

_TURN_MARKERS = {
    "### Human:": "user",
    "### Assistant:": "assistant",
    "<S1>": "user",
    "<S2>": "assistant",
}
_TURN_RE = re.compile("(" + "|".join(re.escape(m) for m in _TURN_MARKERS) + ")")


def parse_turns(text: str) -> list[dict]:
    """Splits ``### Human: ... ### Assistant: ...`` (or ``<S1>``/``<S2>``) text into messages."""
    parts = _TURN_RE.split(text)
    messages = []
    for marker, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": _TURN_MARKERS[marker], "content": content.strip()})
    return messages


def _lang_from_name(path: pathlib.Path, lang: str | None) -> str | None:
    """``alpaca_data_cleaned.de.json`` → ``de`` when no language was given."""
    if lang is not None:
        return lang
    for part in reversed(path.name.split(".")[1:-1]):
        if part in languages.LANGUAGES:
            return part
    return None


def _user_assistant(user: object, assistant: object) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def _instruction(instruction: object, extra: object) -> object:
    if isinstance(instruction, str) and isinstance(extra, str) and extra.strip():
        return f"{instruction}\n\n{extra}"
    return instruction


def _validated(
    items: Iterator[tuple[str, object]],
    lang: str | None,
    skip_bad: bool,
    skipped: SkipCounter | None,
) -> Iterator[dict]:
    """Validated conversations, each with a user turn; bad ones raise or are skipped."""
    named = sources.without_none_ids(items)
    yield from sources.validated(named, lang, skip_bad, skipped, require_user=True)


def read_jsonl(
    path: str | pathlib.Path,
    lang: str | None = None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """Our own ``{id, lang, messages}`` lines (:func:`sources.read_jsonl`), with a user turn."""
    lines = sources.iter_json_lines(path, skip_bad, skipped)
    yield from sources.validated(lines, lang, skip_bad, skipped, require_user=True)


def _json_line_records(
    path: str | pathlib.Path,
    lang: str | None,
    skip_bad: bool,
    skipped: SkipCounter | None,
    convert: Callable[[dict], dict | str],
) -> Iterator[dict]:
    """Validated records from JSONL rows; ``convert`` returns the problem of a bad row."""

    def items() -> Iterator[tuple[str, object]]:
        for where, row in sources.iter_json_lines(path, skip_bad, skipped):
            if not isinstance(row, dict):
                yield where, row  # rejected by validation: not a JSON object
                continue
            record = convert(row)
            if isinstance(record, str):
                sources.skip_or_raise(DataError(f"{where}: {record}"), skip_bad, skipped)
                continue
            yield where, record

    yield from _validated(items(), lang, skip_bad, skipped)


def read_guanaco(
    path: str | pathlib.Path,
    lang: str | None = None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """OpenAssistant-Guanaco ``{"text": ...}`` lines, multi-turn."""

    def convert(row: dict) -> dict | str:
        text = row.get("text")
        if not isinstance(text, str):
            return "field 'text' must be a string"
        messages = parse_turns(text)
        if not messages:
            return "no '### Human:' / '### Assistant:' (or '<S1>' / '<S2>') turns in 'text'"
        return {"id": row.get("id"), "lang": row.get("lang", lang), "messages": messages}

    yield from _json_line_records(path, lang, skip_bad, skipped, convert)


def read_alpaca(
    path: str | pathlib.Path,
    lang: str | None = None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """An Alpaca JSON list; the language comes from ``lang`` or the file name."""
    path = pathlib.Path(path)
    lang = _lang_from_name(path, lang)
    rows = sources.read_json_file(path)
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of records, got {type(rows).__name__}")

    def items() -> Iterator[tuple[str, object]]:
        for i, row in enumerate(rows):
            where = f"{path}[{i}]"
            if not isinstance(row, dict):
                yield where, row
                continue
            user = _instruction(row.get("instruction"), row.get("input"))
            yield (
                where,
                {
                    "id": row.get("id"),
                    "lang": lang,
                    "messages": _user_assistant(user, row.get("output")),
                },
            )

    yield from _validated(items(), lang, skip_bad, skipped)


def read_lima(
    path: str | pathlib.Path,
    lang: str | None = "en",
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """LIMA ``{"conversations": [...]}`` lines: turns alternate user, assistant."""

    def convert(row: dict) -> dict | str:
        turns = row.get("conversations")
        if not isinstance(turns, list) or not turns:
            return "field 'conversations' must be a non-empty list"
        roles = ("user", "assistant")
        return {
            "lang": lang,
            "messages": [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)],
        }

    yield from _json_line_records(path, lang, skip_bad, skipped, convert)


def read_dolly(
    path: str | pathlib.Path,
    lang: str | None = "en",
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """Dolly-15k ``{instruction, context, response}`` lines."""

    def convert(row: dict) -> dict | str:
        user = _instruction(row.get("instruction"), row.get("context"))
        return {"lang": lang, "messages": _user_assistant(user, row.get("response"))}

    yield from _json_line_records(path, lang, skip_bad, skipped, convert)


def resolve_language(value: object) -> str | None:
    """A registry code from a code (``"ar"``), an ISO 639-3 code in the registry's table or an
    English name (``"Arabic"``); None when unknown."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text in languages.LANGUAGES:
        return text
    by_name = {lang.name.lower(): code for code, lang in languages.LANGUAGES.items()}
    return languages.ISO639_3.get(text.lower()) or by_name.get(text.lower())


def read_table(
    path: str | pathlib.Path,
    lang: str | None = None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
    lang_column: str = "language",
) -> Iterator[dict]:
    """JSONL or Parquet rows: ``instruction``/``input``/``output`` or ``inputs``/``targets``.

    The language comes from ``lang_column`` (a code, an ISO 639-3 code or an English name) or,
    when the rows have none, from ``lang`` or the file name (``bactrian.fr.jsonl``).
    """
    path = pathlib.Path(path)
    file_lang = _lang_from_name(path, lang)

    columns = sources.table_columns(path)
    if columns is not None and lang_column not in columns and file_lang is None:
        raise DataError(
            f"{path}: no {lang_column!r} column and no language for the file (pass the "
            f"language, the column name, or name the file <name>.<lang>.parquet)"
        )

    def items() -> Iterator[tuple[str, object]]:
        for where, row in sources.iter_table_rows(path, skip_bad, skipped):
            if not isinstance(row, dict) or not ({"inputs", "instruction"} & set(row)):
                problem = "needs 'inputs'/'targets' or 'instruction'/'output' fields"
                if not isinstance(row, dict):
                    problem = f"expected a JSON object, got {type(row).__name__}"
                sources.skip_or_raise(DataError(f"{where}: {problem}"), skip_bad, skipped)
                continue
            if "inputs" in row:
                user, answer = row.get("inputs"), row.get("targets")
            else:
                user = _instruction(row.get("instruction"), row.get("input"))
                answer = row.get("output")
            raw = row.get(lang_column)
            code = resolve_language(raw) if raw is not None else file_lang
            if raw is None and code is None:
                problem = f"no {lang_column!r} field and no language for the file"
                sources.skip_or_raise(DataError(f"{where}: {problem}"), skip_bad, skipped)
                continue
            if raw is not None and code is None:
                yield where, {"lang": f"{raw}", "messages": _user_assistant(user, answer)}
                continue
            if lang is not None and code != lang:
                continue
            yield (
                where,
                {"id": row.get("id"), "lang": code, "messages": _user_assistant(user, answer)},
            )

    yield from _validated(items(), None, skip_bad, skipped)


READERS: dict[str, Reader] = {
    "jsonl": read_jsonl,
    "guanaco": read_guanaco,
    "alpaca": read_alpaca,
    "lima": read_lima,
    "dolly": read_dolly,
    "oasst1": read_oasst1,
    "table": read_table,
}


def get_reader(name: str) -> Reader:
    """A reader by name; unknown names list the known ones."""
    if name not in READERS:
        raise ConfigError(f"unknown dataset format {name!r}; known: {', '.join(sorted(READERS))}")
    return READERS[name]
