"""Machine translation of chat data into parallel files, one per target language.

:func:`translate_file` reads ``{id, lang, messages}`` examples (any reader of
``data.formats``), masks code, URLs and placeholders in every message it translates
(:mod:`translate_text`), sends each distinct message once per target language, checks every
answer (protected spans intact, length ratio, language), asks once more when a check fails, and
writes ``<output_dir>/<name>.<lang>.jsonl`` with the source's ids, roles and turns and ``lang``
set to the target. An example with a message that was rejected is left out and counted, never
written half translated.

Every answer is stored in a SQLite cache (:mod:`translate_cache`) as it arrives, so a re-run,
or a run restarted after a crash, sends no request for a finished message.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import pathlib
from collections.abc import Callable, Sequence

from etils import epath
from tqdm import tqdm

from polyglot_jax import languages, storage
from polyglot_jax.clients import usage
from polyglot_jax.data import formats
from polyglot_jax.data.translate_backends import Completion, Request, Translator
from polyglot_jax.data.translate_cache import Entry, TranslationCache, cache_key, exclusive
from polyglot_jax.data.translate_text import CheckError, Checks, Masked, mask
from polyglot_jax.data.translate_text import needs_translation as _needs_translation
from polyglot_jax.errors import ConfigError, DataError, JobFailedError

log = logging.getLogger(__name__)

ROLES = {"all": ("system", "user", "assistant"), "user": ("user",), "assistant": ("assistant",)}


@dataclasses.dataclass
class LanguageStats:
    """Counts of one target language; message counts are of distinct messages.

    Attributes:
      examples: source examples.
      written: examples written (every translated message accepted).
      dropped: examples left out because a message was rejected.
      translated: messages translated and accepted in this run.
      cached: accepted messages found in the cache.
      retried: messages asked again after a failed check.
      rejected: messages with no accepted translation (failed checks twice, or no answer).
      characters: characters sent to the backend in this run (masked source texts, retries
        included).
    """

    examples: int = 0
    written: int = 0
    dropped: int = 0
    translated: int = 0
    cached: int = 0
    retried: int = 0
    rejected: int = 0
    characters: int = 0


@dataclasses.dataclass
class Result:
    """What a run did: output files, per-language counts, rejection reasons, requests sent."""

    paths: dict[str, epath.Path]
    stats: dict[str, LanguageStats]
    reasons: collections.Counter
    requests: int


@dataclasses.dataclass(frozen=True)
class _Job:
    key: str
    request: Request
    masked: Masked


def read_examples(path: str | os.PathLike, fmt: str = "jsonl") -> list[dict]:
    """The examples of ``path`` read with the ``fmt`` reader; ids must be unique.

    Raises:
      ConfigError: an unknown format.
      DataError: a bad record, a repeated id or no examples at all.
      MissingFileError: ``path`` does not exist.
    """
    examples = list(formats.get_reader(fmt)(path))
    if not examples:
        raise DataError(f"{path}: no examples")
    seen: set[str] = set()
    for example in examples:
        if example["id"] in seen:
            raise DataError(f"{path}: id {example['id']!r} appears more than once")
        seen.add(example["id"])
    return examples


def default_name(path: str | os.PathLike) -> str:
    """``train`` for ``train.jsonl`` or ``train.en.jsonl``: the output files' stem."""
    parts = pathlib.PurePath(os.fspath(path)).name.split(".")
    if len(parts) > 1:
        parts = parts[:-1]
    if len(parts) > 1 and parts[-1] in languages.LANGUAGES:
        parts = parts[:-1]
    return ".".join(parts)


def default_db(output_dir: str | os.PathLike) -> pathlib.Path:
    """``<output_dir>/translations.sqlite``; for a bucket, a local file named after it.

    SQLite needs a local file: translations for a ``gs://`` folder are cached in
    ``$POLYGLOT_JAX_CACHE/translations/`` (default ``~/.cache/polyglot_jax``).
    """
    return storage.local_file_for(output_dir, "translations.sqlite", "translations")


def translate_file(
    input_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    targets: Sequence[str],
    translator: Translator | Callable[[], Translator],
    checks: Checks,
    name: str | None = None,
    fmt: str = "jsonl",
    only: str = "all",
    db: str | os.PathLike | None = None,
    retry_rejected: bool = False,
    progress: bool = True,
) -> Result:
    """Translates every example of ``input_path`` into each of ``targets``.

    Args:
      input_path: the examples (a file ``fmt``'s reader accepts).
      output_dir: where ``<name>.<lang>.jsonl`` go.
      targets: target language codes.
      translator: the backend, or a function that makes it once the inputs are read and the
        cache is locked and open (so bad inputs and a busy or broken cache are reported before a
        model loads).
      checks: the acceptance rules for answers.
      name: output files' stem (default: the input's, without a language suffix).
      fmt: the reader (``jsonl``, ``alpaca``, ``oasst1``, ...).
      only: ``all``, or ``user`` / ``assistant`` to translate those turns only (the others are
        copied unchanged).
      db: the SQLite cache (default ``<output_dir>/translations.sqlite``).
      retry_rejected: ask again for messages the cache holds as rejected.
      progress: show a progress bar.

    Raises:
      BusyError: another process is using the cache.
      ConfigError: an unknown target language or ``only`` value.
      DataError, MissingFileError: bad input.
      JobFailedError: not one example could be written (the message counts each reason).
    """
    if only not in ROLES:
        raise ConfigError(f"--only {only!r}: expected one of {', '.join(ROLES)}")
    try:
        targets = languages.validate(targets)
    except languages.UnknownLanguageError as e:
        raise ConfigError(f"--languages: {e}") from None
    examples = read_examples(input_path, fmt)
    name = name or default_name(input_path)
    out = storage.as_path(output_dir)
    db = pathlib.Path(db) if db else default_db(out)
    with exclusive(db), TranslationCache(db) as cache:
        if callable(translator):
            translator = translator()
        return _run(
            examples, out, name, targets, translator, checks, only, cache, retry_rejected, progress
        )


def _run(
    examples: list[dict],
    out: epath.Path,
    name: str,
    targets: Sequence[str],
    translator: Translator,
    checks: Checks,
    only: str,
    cache: TranslationCache,
    retry_rejected: bool,
    progress: bool,
) -> Result:
    stats = {t: LanguageStats(examples=len(examples)) for t in targets}
    plan: dict[str, list[list[str | None]]] = {}  # target -> example -> message -> key
    jobs: dict[str, _Job] = {}
    for target in targets:
        plan[target] = []
        for example in examples:
            keys: list[str | None] = []
            for message in example["messages"]:
                masked = mask(message["content"])
                if (
                    example["lang"] == target
                    or message["role"] not in ROLES[only]
                    or not _needs_translation(masked)
                ):
                    keys.append(None)
                    continue
                key = cache_key(
                    translator.kind,
                    translator.model,
                    translator.prompt_version,
                    example["lang"],
                    masked.text,
                    target,
                )
                jobs.setdefault(
                    key, _Job(key, Request(masked.text, example["lang"], target), masked)
                )
                keys.append(key)
            plan[target].append(keys)

    entries: dict[str, Entry] = {}
    for key in jobs:
        entry = cache.get(key)
        if entry is None or entry.status == "failed":
            continue
        if entry.status == "rejected" and retry_rejected:
            continue
        entries[key] = entry
        if entry.status == "ok":
            stats[jobs[key].request.target].cached += 1
    todo = [jobs[k] for k in jobs if k not in entries]
    log.info(
        "%d distinct messages for %d languages: %d cached, %d to translate with %s:%s",
        len(jobs),
        len(targets),
        len(entries),
        len(todo),
        translator.kind,
        translator.model,
    )
    requests = 0
    bar = tqdm(total=len(todo), desc="translate", unit="msg", disable=not progress)
    again: list[_Job] = []
    tokens = usage.UsageStore(cache.path)  # the usage table of the same cache file
    for retry, batch in ((False, todo), (True, again)):
        if retry:
            bar.total += len(batch)
            bar.refresh()
        for index, completion in translator.iter_translate([j.request for j in batch], retry):
            job = batch[index]
            requests += completion.attempts
            stats[job.request.target].characters += len(job.request.text)
            entry = _check(job, completion, checks, retry)
            key = f"{job.key}#{int(retry)}"  # a retried message: both attempts' tokens
            usage.record(tokens, key, completion, "translate", name, job.request.target)
            if entry is None:  # failed a check on the first attempt: ask once more
                again.append(job)
                stats[job.request.target].retried += 1
            else:
                cache.put(entry, **_inputs(translator, job))
                entries[job.key] = entry
                if entry.status == "ok":
                    stats[job.request.target].translated += 1
            bar.update(1)
    bar.close()
    tokens.close()

    reasons: collections.Counter = collections.Counter()
    for job in jobs.values():
        entry = entries[job.key]
        if entry.status != "ok":
            stats[job.request.target].rejected += 1
            reasons[entry.reason] += 1
    texts: dict[str, str] = {}
    for target in targets:
        lines = []
        for example, keys in zip(examples, plan[target], strict=True):
            if any(k is not None and entries[k].status != "ok" for k in keys):
                stats[target].dropped += 1
                continue
            messages = [
                m if k is None else {**m, "content": entries[k].translation}
                for m, k in zip(example["messages"], keys, strict=True)
            ]
            record = {"id": example["id"], "lang": target, "messages": messages}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            stats[target].written += 1
        texts[target] = "".join(lines)
    if not any(s.written for s in stats.values()):
        shown = ", ".join(f"{reason} x{n}" for reason, n in reasons.most_common())
        raise JobFailedError(
            f"no example could be translated: {sum(reasons.values())} messages rejected "
            f"({shown or 'no reason'})"
        )
    paths = {}
    for target, text in texts.items():
        paths[target] = out / f"{name}.{target}.jsonl"
        storage.write_atomic(paths[target], text)
    return Result(paths, stats, reasons, requests)


def _check(job: _Job, completion: Completion, checks: Checks, retry: bool) -> Entry | None:
    """The cache entry for an answer, or None when a first answer failed its checks."""
    attempts = 2 if retry else 1
    if completion.text is None:
        return Entry(job.key, "failed", "", completion.error or "no answer", attempts)
    try:
        translation = checks.apply(completion.text, job.masked, job.request.target)
    except CheckError as e:
        if not retry:
            return None
        return Entry(job.key, "rejected", completion.text, str(e), attempts)
    return Entry(job.key, "ok", translation, "", attempts)


def _inputs(translator: Translator, job: _Job) -> dict[str, str]:
    return {
        "backend": translator.kind,
        "model": translator.model,
        "prompt_version": translator.prompt_version,
        "source_lang": job.request.source,
        "target_lang": job.request.target,
        "source": job.request.text,
    }


def format_table(result: Result) -> str:
    """The per-language counts as a Markdown table, with a total row."""
    fields = [f.name for f in dataclasses.fields(LanguageStats)]
    rows = ["| lang | " + " | ".join(fields) + " |", "|---" * (len(fields) + 1) + "|"]
    total = LanguageStats()
    for lang, stats in result.stats.items():
        rows.append(f"| {lang} | " + " | ".join(str(getattr(stats, f)) for f in fields) + " |")
        for f in fields:
            setattr(total, f, getattr(total, f) + getattr(stats, f))
    rows.append("| all | " + " | ".join(str(getattr(total, f)) for f in fields) + " |")
    return "\n".join(rows)
