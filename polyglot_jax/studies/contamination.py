"""Evaluation prompts that also occur in the training data, counted per language.

A prompt is contaminated when its normalised text (NFKC, case-folded, runs of non-word
characters as one space) equals a normalised training message, or when it shares a word
n-gram (:data:`NGRAM` words, as in the GPT-3 and Llama 2 contamination studies) with one.
:func:`study_check` runs before a study trains: it reads each run's training mixture and the
prompts ``infer`` answers, and writes ``<root>/contamination.json``; :func:`markdown` is the
report's section.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import seqio

from polyglot_jax import gin_utils, storage
from polyglot_jax.data import chat_tasks
from polyglot_jax.errors import DataError
from polyglot_jax.inference import infer
from polyglot_jax.inference.config import InferConfig
from polyglot_jax.studies.grid import Condition
from polyglot_jax.studies.plan import Planner
from polyglot_jax.training import provenance
from polyglot_jax.training.config import DataConfig, configured

log = logging.getLogger(__name__)

NGRAM = 13
FILE = "contamination.json"
SHOWN = 5  # contaminated prompt ids listed per language in the report
_NON_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """NFKC, case-folded, with every run of non-word characters as one space."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _grams(words: Sequence[str], n: int) -> Iterator[str]:
    for i in range(len(words) - n + 1):
        yield " ".join(words[i : i + n])


class Index:
    """The evaluation prompts by normalised text and by word n-gram; training texts are
    streamed past it (:meth:`scan`), so memory follows the prompts, not the training data.

    Args:
      prompts: ``{lang: [(id, text), ...]}``.
      n: the n-gram length in words.
    """

    def __init__(self, prompts: Mapping[str, Sequence[tuple[str, str]]], n: int = NGRAM) -> None:
        self.n, self.prompts = n, {lang: list(items) for lang, items in prompts.items()}
        self.exact: dict[str, list[tuple[str, str]]] = {}
        self.grams: dict[str, list[tuple[str, str]]] = {}
        self.found: dict[tuple[str, str], str] = {}
        for lang, items in self.prompts.items():
            for item_id, text in items:
                norm = normalize(text)
                if norm:
                    self.exact.setdefault(norm, []).append((lang, item_id))
                for gram in set(_grams(norm.split(), n)):
                    self.grams.setdefault(gram, []).append((lang, item_id))

    def scan(self, text: str) -> None:
        """Marks the prompts that one training text contains."""
        norm = normalize(text)
        for key in self.exact.get(norm, ()):
            self.found[key] = "exact"
        for gram in _grams(norm.split(), self.n):
            for key in self.grams.get(gram, ()):
                self.found.setdefault(key, f"{self.n}-gram")

    def result(self) -> dict[str, Any]:
        """``{"ngram": n, "languages": {lang: {"prompts", "contaminated", "items"}}}``."""
        languages = {}
        for lang, items in sorted(self.prompts.items()):
            hits = [(i, self.found.get((lang, i))) for i, _ in items]
            found = [{"id": i, "how": how} for i, how in hits if how]
            languages[lang] = {"prompts": len(items), "contaminated": len(found), "items": found}
        return {"ngram": self.n, "languages": languages}


def check(
    training_texts: Iterable[str],
    prompts: Mapping[str, Sequence[tuple[str, str]]],
    n: int = NGRAM,
) -> dict[str, Any]:
    """Contaminated prompts per language (see :meth:`Index.result`).

    Args:
      training_texts: every message of the training examples.
      prompts: ``{lang: [(id, text), ...]}``.
      n: the n-gram length in words.
    """
    index = Index(prompts, n)
    for text in training_texts:
        index.scan(text)
    return index.result()


def markdown(result: Mapping[str, Any] | None) -> str:
    """The report's contamination section (a note when no check was made)."""
    lines = ["## Contamination", ""]
    if not result:
        return "\n".join([*lines, f"No {FILE}: the check did not run.", ""])
    lines += [
        f"Evaluation prompts whose normalised text, or a {result['ngram']}-word n-gram, occurs "
        "in a training example of any run.",
        "",
        "| lang | prompts | contaminated | share | examples |",
        "|---|---:|---:|---:|---|",
    ]
    for lang, entry in result["languages"].items():
        share = entry["contaminated"] / entry["prompts"] if entry["prompts"] else 0.0
        shown = ", ".join(f"{x['id']} ({x['how']})" for x in entry["items"][:SHOWN])
        lines.append(
            f"| {lang} | {entry['prompts']} | {entry['contaminated']} | {share:.1%} | {shown} |"
        )
    return "\n".join([*lines, ""])


def read(root: str | os.PathLike) -> dict[str, Any] | None:
    """``<root>/contamination.json``, or None when the check has not run."""
    path = storage.as_path(root) / FILE
    return storage.read_json_object(path, DataError) if path.exists() else None


# --- a study's training data and evaluation prompts -------------------------------------------


def _records(name: str, split: str) -> list[dict]:
    if name not in seqio.TaskRegistry.names() and name not in seqio.MixtureRegistry.names():
        importlib.import_module("tasks")
    out = []
    for task_name in provenance.task_names(name):
        task = seqio.TaskRegistry.get(task_name)
        if split not in task.splits:
            continue
        records = getattr(task.source, "records", None)
        out += records(split) if records else chat_tasks.task_records(task, split)
    return out


@contextlib.contextmanager
def _gin(argv: Sequence[str]) -> Iterator[None]:
    """A stage's gin config (``argv`` after ``-m module``), this process's left as it was."""
    with gin_utils.isolated_config():
        gin_utils.configure(gin_utils.parse_args(argv[3:]), finalize=False)
        yield


def training_texts(planner: Planner, condition: Condition) -> tuple[str, list[str]]:
    """The training mixture of ``condition`` and every message text of its examples."""
    with _gin(planner.train_argv(condition)):
        name = configured(DataConfig).mixture_or_task_name
        records = _records(name, "train")
    return name, [m["content"] for r in records for m in r["messages"]]


def eval_prompts(planner: Planner, condition: Condition) -> dict[str, list[tuple[str, str]]]:
    """``{lang: [(id, prompt)]}`` that ``infer`` answers for ``condition``."""
    with _gin(planner.infer_argv(condition)):
        return prompts_of(configured(InferConfig))


def prompts_of(config: InferConfig) -> dict[str, list[tuple[str, str]]]:
    """``{lang: [(id, prompt)]}``: the user turn of each conversation ``infer`` answers (the
    prompt files when ``PROMPT_FILES`` names them, else the tasks' split)."""
    out: dict[str, list[tuple[str, str]]] = {}
    if config.prompt_files:
        sets = infer.prompt_sets(config.mixture_or_task_name, config.split, config.prompt_files)
        records = [r for _, rs in sets for r in rs]
    else:
        records = _records(config.mixture_or_task_name, config.split)
    for record in records:
        lang = record["lang"]
        if config.languages and lang not in config.languages:
            continue
        users = [m["content"] for m in record["messages"] if m["role"] == "user"]
        if users:
            out.setdefault(lang, []).append((str(record["id"]), users[-1]))
    return out


def study_check(planner: Planner, conditions: Sequence[Condition]) -> dict[str, Any]:
    """Checks every run's training mixture against the study's evaluation prompts.

    Writes ``<root>/contamination.json`` and logs the count per language; returns the result.
    """
    prompts: dict[str, dict[str, str]] = {}
    for condition in conditions:
        for lang, items in eval_prompts(planner, condition).items():
            prompts.setdefault(lang, {}).update(items)
    index = Index({lang: list(items.items()) for lang, items in prompts.items()})
    mixtures = set()
    for condition in conditions:
        name, texts = training_texts(planner, condition)
        if name not in mixtures:
            mixtures.add(name)
            for text in texts:
                index.scan(text)
    result = {**index.result(), "mixtures": sorted(mixtures)}
    storage.write_json(planner.root / FILE, result)
    for lang, entry in result["languages"].items():
        if entry["contaminated"]:
            log.warning(
                "contamination: %d of %d %s prompts occur in the training data",
                entry["contaminated"],
                entry["prompts"],
                lang,
            )
    return result
