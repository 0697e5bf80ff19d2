"""Surface metrics of answers: length, repetition, and answers cut at the length limit.

The zero-shot transfer study (Chirkova and Nikoulina, 2024, "Zero-shot cross-lingual transfer in
instruction tuning of large language models") checks surface metrics of the responses before
any judge (its evaluation section, "surface metrics"; ``../shared/papers/zero_shot_2402.14778.md``
names them without definitions): how long the answers are, whether they degenerate into
repetition, and how many run into the generation limit. Here, per answer:

- ``surface_tokens``: generated tokens (``num_tokens`` of the ``infer`` record);
- ``surface_chars``: characters of the response;
- ``surface_rep4``: the share of repeated word 4-grams, ``1 - unique / total`` (``seq-rep-4`` of
  Welleck et al., 2020, "Neural text generation with unlikelihood training"); None for answers
  of fewer than four words;
- ``surface_cut``: 1 when the answer stopped at the token limit (``finish_reason`` ``length``).

Words are runs of characters between white space, except in scripts written without spaces
(Han, kana, Thai), where every character is a word, so that 4-grams mean something in every
language. The report averages these per (run, language), like the judges' per-answer scores.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from polyglot_jax import storage
from polyglot_jax.evaluation import outputs

REPORT_METRICS: dict[str, tuple[str, float]] = {  # row key: (report title, scale)
    "surface_tokens": ("Answer length (tokens)", 1.0),
    "surface_chars": ("Answer length (characters)", 1.0),
    "surface_rep4": ("Repeated 4-grams (%)", 100.0),
    "surface_cut": ("Answers cut at the length limit (%)", 100.0),
}
REPETITION_N = 4

_UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_UNSPACED}]|[^\s{_UNSPACED}]+")


def words(text: str) -> list[str]:
    """White-space words; every character of Han, kana and Thai text is a word of its own."""
    return _WORD.findall(text)


def repetition_rate(text: str, n: int = REPETITION_N) -> float | None:
    """Share of the word n-grams of ``text`` that repeat an earlier one (None: under n words)."""
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else None


def answer_metrics(record: dict) -> dict[str, float | None]:
    """The surface metrics of one ``infer`` record (None where the record cannot tell)."""
    response = record["response"]
    reason = record.get("finish_reason")
    tokens = record.get("num_tokens")
    return {
        "surface_tokens": float(tokens) if isinstance(tokens, int) else None,
        "surface_chars": float(len(response)),
        "surface_rep4": repetition_rate(response),
        "surface_cut": None if reason is None else float(reason == "length"),
    }


def run_name(path: str | os.PathLike) -> str:
    """The run of an ``infer`` folder or file: the folder that holds it (``<run>/infer``), as
    the judge stage names runs."""
    path = storage.as_path(path)
    folder = path if path.is_dir() else path.parent
    return folder.parent.name


def surface_rows(paths: Iterable[str | os.PathLike], run: str | None = None) -> list[dict]:
    """One row ``{"run", "lang", "id", <metric>...}`` per answer of the ``infer`` outputs.

    Args:
      paths: ``infer`` folders (every ``*.jsonl`` in them) or files.
      run: run name of every row (default: :func:`run_name` of each path).

    Raises:
      MissingFileError, DataError: as :func:`polyglot_jax.evaluation.outputs.read_all`.
    """
    rows = []
    for path in paths:
        name = run or run_name(path)
        for record in outputs.read_all([path]):
            rows.append(
                {"run": name, "lang": record["lang"], "id": record["id"], **answer_metrics(record)}
            )
    return rows
