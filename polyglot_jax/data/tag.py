"""Splits a mixed-language chat dataset into one JSONL file per identified language.

What the identifier reads (``text``):

- ``whole``: every turn, user and assistant, joined by spaces, with newlines and any
  ``### Human:`` / ``### Assistant:`` markers replaced by a space and no truncation. This is how
  the Polyglots release tagged Guanaco (``open_lid.py``@75cab60:50-73 ``preprocess``,
  ``assign_guanaco_langs.py``@7b52163:42), so an answer in another language than its prompt
  weighs in. The release's pattern ``(### Human:| ### Assistant:)`` removes an assistant marker
  only after a space, and Guanaco writes ``question?### Assistant:``, so most of the release's
  texts kept that marker; it is one English-looking token in a whole conversation.
- ``first_user`` (``data tag``'s default): the first :data:`MAX_CHARS` characters of the first
  user turn, the language a prompt was asked in. A conversation with no user turn has no text.

Two identifiers, each giving its top-1 (argmax) language and that language's score:

- ``lingua`` (default): every language lingua knows; the score is lingua's confidence value.
- ``fasttext:MODEL.bin``: a fastText classifier such as OpenLID (the release's
  ``lid201-model.bin``) or GlotLID, whose labels are Flores-200 style (``__label__spa_Latn``);
  the score is the model's probability. A label the registry does not know (GlotLID's
  ``zxx_Zxxx``, say) counts as undetermined.

A conversation whose score is below the threshold (the release kept confidence >= 0.8,
``data_prep/prepare_guanaco_data.py``@5a4d628:52), that the identifier cannot decide on, or that
has no text to identify is *undetermined* and goes to ``<name>.und.jsonl`` (no text is counted
apart too; it is not an error, so one odd record does not stop a large file). The input's own
language labels are ignored. Output, all written atomically::

  <output_dir>/<name>.<lang>.jsonl   {id, lang, messages} lines, lang set to the code found
  <output_dir>/<name>.und.jsonl      the undetermined conversations (lang "und")
  <output_dir>/tag_summary.json      counts per language and undetermined, files, settings
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Protocol

from etils import epath
from tqdm import tqdm

from polyglot_jax import languages, storage
from polyglot_jax.data import formats, sources
from polyglot_jax.errors import ConfigError, MissingFileError

UNDETERMINED = "und"
SUMMARY = "tag_summary.json"
MAX_CHARS = 1000  # of the first user turn; enough for either identifier, and keeps lingua fast
TEXTS = ("whole", "first_user")  # what the identifier reads; see the module docstring
GUANACO_TEXT, GUANACO_THRESHOLD = "whole", 0.8  # the Polyglots release's tagging of Guanaco
_MARKERS = re.compile(r"### (?:Human|Assistant):")
BATCH = 256
# Readers that take the file's language as an argument; any valid code stands in for it here.
_PLACEHOLDER = "en"


class Identifier(Protocol):
    """Identifies the language of texts: ``(code or None, score in [0, 1])`` per text.

    :func:`polyglot_jax.evaluation.langid.make_identifier` builds the lingua and fastText ones.
    """

    spec: str

    def identify(self, texts: Sequence[str]) -> list[tuple[str | None, float]]: ...


def read_conversations(path: str | os.PathLike, fmt: str = "jsonl") -> Iterator[dict]:
    """``{id, lang, messages}`` records of ``path`` in format ``fmt``, language not needed.

    Raises:
      MissingFileError: ``path`` does not exist.
      ConfigError: an unknown format.
      DataError: a record the format's reader rejects (naming file and line).
    """
    reader = formats.get_reader(fmt)
    if not as_path(path).exists():
        raise MissingFileError(f"input {path} does not exist")
    if fmt == "jsonl":
        # Our own format requires 'lang'; here it is what we are about to find out.
        def items() -> Iterator[tuple[str, object]]:
            for where, record in sources.iter_json_lines(path):
                if isinstance(record, dict):
                    record = {**record, "lang": _PLACEHOLDER}
                yield where, record

        return sources.validated(items(), None)
    if fmt in ("oasst1", "table"):
        columns = sources.table_columns(path) if fmt == "table" else None
        lang = _PLACEHOLDER if columns is not None and "language" not in columns else None
        return reader(path, lang)
    return reader(path, _PLACEHOLDER)


def first_user_turn(record: dict) -> str | None:
    """The first :data:`MAX_CHARS` characters of the first user message, or None."""
    for message in record["messages"]:
        if message["role"] == "user":
            return message["content"][:MAX_CHARS]
    return None


def whole_text(record: dict) -> str | None:
    """Every turn of ``record`` on one line, Guanaco's turn markers removed; None when empty.

    The release's preprocessing of a Guanaco text (newlines and markers become spaces,
    stripped), applied to its turns: ``### Human: Hola### Assistant: Hi`` reads ``Hola Hi``.
    """
    text = " ".join(message["content"] for message in record["messages"])
    text = _MARKERS.sub(" ", text.replace("\n", " ")).strip()
    return text or None


def text_of(record: dict, text: str) -> str | None:
    """What the identifier reads of ``record`` in mode ``text`` (one of :data:`TEXTS`)."""
    return whole_text(record) if text == "whole" else first_user_turn(record)


def check_text(text: str) -> None:
    """Raises :class:`ConfigError` unless ``text`` is one of :data:`TEXTS`."""
    if text not in TEXTS:
        raise ConfigError(f"--text must be one of {', '.join(TEXTS)}, got {text!r}")


def _batches(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Writers:
    """One temporary JSONL file per language, renamed into place by :meth:`commit`."""

    def __init__(self, output_dir: epath.Path, name: str) -> None:
        self.output_dir, self.name = output_dir, name
        self._files: dict[str, IO[str]] = {}

    def final(self, lang: str) -> epath.Path:
        return self.output_dir / f"{self.name}.{lang}.jsonl"

    def _tmp(self, lang: str) -> epath.Path:
        return self.output_dir / f".{self.name}.{lang}.jsonl.tmp-{os.getpid()}"

    def write(self, lang: str, record: dict) -> None:
        if lang not in self._files:
            self._files[lang] = self._tmp(lang).open("w", encoding="utf-8")
        line = {"id": record["id"], "lang": lang, "messages": record["messages"]}
        self._files[lang].write(json.dumps(line, ensure_ascii=False) + "\n")

    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def commit(self) -> dict[str, str]:
        self.close()
        for lang in self._files:
            self._tmp(lang).replace(self.final(lang))
        return {lang: self.final(lang).name for lang in sorted(self._files)}

    def abort(self) -> None:
        self.close()
        for lang in self._files:
            self._tmp(lang).unlink(missing_ok=True)


def check_threshold(threshold: float) -> None:
    """Raises :class:`ConfigError` unless ``threshold`` is in (0, 1]."""
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--threshold must be in (0, 1], got {threshold}")


def tag(
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    identifier: Identifier,
    threshold: float = 0.5,
    fmt: str = "jsonl",
    name: str | None = None,
    progress: bool = True,
    text: str = "first_user",
) -> dict:
    """Splits ``input_path`` into ``<output_dir>/<name>.<lang>.jsonl`` files by language.

    Args:
      input_path: the mixed-language dataset.
      output_dir: where the per-language files and ``tag_summary.json`` go (created).
      identifier: e.g. from :func:`polyglot_jax.evaluation.langid.make_identifier`.
      threshold: in (0, 1]; a conversation scored below it is undetermined.
      fmt: the input's format (a :data:`formats.READERS` name).
      name: file name prefix (default: the input's name up to its first dot).
      progress: show a tqdm progress bar on stderr.
      text: what the identifier reads, ``whole`` or ``first_user`` (see the module docstring).

    Returns:
      The summary written to ``tag_summary.json``: ``counts`` per language (most first),
      ``undetermined`` (including ``no_text``), ``total``, ``files`` and the settings
      (``identifier``, its ``description`` when it has one, ``text``, ``threshold``).

    Raises:
      ConfigError: a threshold outside (0, 1], an unknown text mode or format.
      MissingFileError: a missing input.
      DataError: a record the reader rejects.
    """
    check_threshold(threshold)
    check_text(text)
    source = as_path(input_path)
    name = name or source.name.split(".")[0]
    records = read_conversations(source, fmt)
    out = as_path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    no_text = 0
    writers = _Writers(out, name)
    bar = tqdm(desc=f"tagging {source.name}", unit=" conv", disable=not progress or None)
    try:
        for batch in _batches(records, BATCH):
            texts = [text_of(r, text) for r in batch]
            asked = [t for t in texts if t is not None]
            found = iter(identifier.identify(asked) if asked else [])
            for record, read in zip(batch, texts, strict=True):
                code, score = next(found) if read is not None else (None, 0.0)
                no_text += read is None
                lang = code if code is not None and score >= threshold else UNDETERMINED
                counts[lang] = counts.get(lang, 0) + 1
                writers.write(lang, record)
            bar.update(len(batch))
        files = writers.commit()
    except BaseException:
        writers.abort()
        raise
    finally:
        bar.close()
    summary = {
        "input": os.fspath(source),
        "format": fmt,
        "identifier": identifier.spec,
        "description": getattr(identifier, "description", identifier.spec),
        "text": text,
        "threshold": threshold,
        "total": sum(counts.values()),
        "counts": dict(sorted(_known(counts).items(), key=lambda kv: (-kv[1], kv[0]))),
        "undetermined": counts.get(UNDETERMINED, 0),
        "no_text": no_text,
        "files": files,
    }
    _remove_stale(out, summary)
    storage.write_atomic(out / SUMMARY, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def as_path(path: str | os.PathLike) -> epath.Path:
    """``path`` as an epath, so that ``gs://`` paths work like local ones."""
    return path if isinstance(path, epath.Path) else epath.Path(os.fspath(path))


def _known(counts: dict[str, int]) -> dict[str, int]:
    return {lang: n for lang, n in counts.items() if lang != UNDETERMINED}


def _remove_stale(out: epath.Path, summary: dict) -> None:
    """Deletes the files a previous run listed in its summary that this run did not write."""
    previous = out / SUMMARY
    if not previous.exists():
        return
    try:
        old_files = json.loads(previous.read_text())["files"].values()
    except (ValueError, KeyError, TypeError, AttributeError):
        return  # not a summary of ours: leave the folder alone
    for old in set(old_files) - set(summary["files"].values()):
        if isinstance(old, str) and "/" not in old and old.endswith(".jsonl"):
            (out / old).unlink(missing_ok=True)


def format_table(summary: dict) -> str:
    """The counts of a summary as an aligned text table with shares and a total."""
    total = summary["total"]
    rows = [(lang, languages.get(lang).name, n) for lang, n in summary["counts"].items()] + [
        (UNDETERMINED, "undetermined", summary["undetermined"])
    ]
    width = max(len(name) for _, name, _ in rows)
    lines = [f"{'lang':<5} {'language':<{width}} {'conversations':>13} {'share':>7}"]
    for lang, name, n in rows:
        share = 100.0 * n / total if total else 0.0
        lines.append(f"{lang:<5} {name:<{width}} {n:>13} {share:>6.1f}%")
    lines.append(f"{'':<5} {'total':<{width}} {total:>13} {100.0 if total else 0.0:>6.1f}%")
    return "\n".join(lines)
