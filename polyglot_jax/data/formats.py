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

Every reader validates records (:func:`sources.validate_example`): a bad record raises
:class:`sources.DataError` naming file and line (or row), or is skipped and counted with
``skip_bad``. Records without an id get a content hash.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Callable, Iterator

from polyglot_jax import languages
from polyglot_jax.data import sources
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


def _json_line_records(
    path: str | pathlib.Path,
    lang: str | None,
    skip_bad: bool,
    skipped: SkipCounter | None,
    convert: Callable[[dict], dict | None],
) -> Iterator[dict]:
    """Validated records from JSONL rows; ``convert`` returns None for a row of the wrong shape."""

    def items() -> Iterator[tuple[str, object]]:
        for where, row in sources.iter_json_lines(path, skip_bad, skipped):
            if not isinstance(row, dict):
                yield where, row  # rejected by validation: not a JSON object
                continue
            record = convert(row)
            yield where, record if record is not None else {"messages": None, "lang": lang}

    yield from sources.validated(_without_none_ids(items()), lang, skip_bad, skipped)


def read_guanaco(
    path: str | pathlib.Path,
    lang: str | None = None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """OpenAssistant-Guanaco ``{"text": ...}`` lines, multi-turn."""

    def convert(row: dict) -> dict | None:
        text = row.get("text")
        if not isinstance(text, str):
            return None
        return {"id": row.get("id"), "lang": row.get("lang", lang), "messages": parse_turns(text)}

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
    try:
        rows = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of records")

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

    yield from sources.validated(_without_none_ids(items()), lang, skip_bad, skipped)


def read_lima(
    path: str | pathlib.Path,
    lang: str | None = "en",
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """LIMA ``{"conversations": [...]}`` lines: turns alternate user, assistant."""

    def convert(row: dict) -> dict | None:
        turns = row.get("conversations")
        if not isinstance(turns, list):
            return None
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

    def convert(row: dict) -> dict:
        user = _instruction(row.get("instruction"), row.get("context"))
        return {"lang": lang, "messages": _user_assistant(user, row.get("response"))}

    yield from _json_line_records(path, lang, skip_bad, skipped, convert)


def _best_path(node: dict, children: Callable[[dict], list[dict]]) -> list[dict]:
    path = [node]
    while True:
        replies = [r for r in children(path[-1]) if not r.get("deleted", False)]
        if not replies:
            return path
        ranked = sorted(replies, key=lambda r: (r.get("rank") is None, r.get("rank") or 0))
        path.append(ranked[0])


def read_oasst1(
    path: str | pathlib.Path,
    lang: str | None = None,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> Iterator[dict]:
    """OASST1 messages or message trees; each tree's top-ranked path is one conversation.

    Flat message lines (``message_id``, ``parent_id``, ``role`` prompter/assistant, ``text``,
    ``lang``, ``rank``) are assembled into trees; tree lines (``{"prompt": {..., "replies"}}``)
    are walked directly. Conversations are kept when their first message is in ``lang`` (all
    languages when ``lang`` is None). The conversation id is the root message id.
    """
    roles = {"prompter": "user", "assistant": "assistant"}
    rows = list(sources.iter_json_lines(path, skip_bad, skipped))
    trees = [(w, r["prompt"]) for w, r in rows if isinstance(r, dict) and "prompt" in r]
    if trees:
        walk = [(w, _best_path(root, lambda n: n.get("replies") or [])) for w, root in trees]
    else:
        by_parent: dict[str | None, list[dict]] = {}
        where_of = {}
        for where, row in rows:
            if isinstance(row, dict) and "message_id" in row:
                by_parent.setdefault(row.get("parent_id"), []).append(row)
                where_of[row["message_id"]] = where
        roots = by_parent.get(None, [])
        walk = [
            (where_of[r["message_id"]], _best_path(r, lambda n: by_parent.get(n["message_id"], [])))
            for r in roots
        ]

    def items() -> Iterator[tuple[str, object]]:
        for where, messages in walk:
            root = messages[0]
            if lang is not None and root.get("lang") != lang:
                continue
            record_lang = root.get("lang", lang)
            yield (
                where,
                {
                    "id": root.get("message_id") or root.get("message_tree_id"),
                    "lang": record_lang,
                    "messages": [
                        {"role": roles.get(m.get("role"), m.get("role")), "content": m.get("text")}
                        for m in messages
                    ],
                },
            )

    yield from sources.validated(_without_none_ids(items()), None, skip_bad, skipped)


def _table_rows(path: pathlib.Path) -> Iterator[tuple[str, object]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist()):
            yield f"{path}[row {i}]", row
    else:
        yield from sources.iter_json_lines(path)


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

    def items() -> Iterator[tuple[str, object]]:
        for where, row in _table_rows(path):
            if not isinstance(row, dict):
                yield where, row
                continue
            if "inputs" in row:
                user, answer = row.get("inputs"), row.get("targets")
            else:
                user, answer = (
                    _instruction(row.get("instruction"), row.get("input")),
                    row.get("output"),
                )
            raw = row.get(lang_column)
            code = resolve_language(raw) if raw is not None else file_lang
            if raw is not None and code is None:
                yield where, {"lang": f"{raw}", "messages": _user_assistant(user, answer)}
                continue
            if lang is not None and code != lang:
                continue
            yield (
                where,
                {"id": row.get("id"), "lang": code, "messages": _user_assistant(user, answer)},
            )

    yield from sources.validated(_without_none_ids(items()), None, skip_bad, skipped)


def _without_none_ids(items: Iterator[tuple[str, object]]) -> Iterator[tuple[str, object]]:
    for where, record in items:
        if isinstance(record, dict) and record.get("id") is None:
            record = {k: v for k, v in record.items() if k != "id"}
        yield where, record


READERS: dict[str, Reader] = {
    "jsonl": sources.read_jsonl,
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
