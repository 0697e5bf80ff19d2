"""MGSM as lm-evaluation-harness's ``mgsm_native_cot_<lang>`` tasks: prompt, stops, scoring.

Following ``lm_eval/tasks/mgsm/native_cot/`` (its ``cot_yaml``, the per-language YAML files and
``utils.py``'s word table):

- The prompt of a test question is ``"<Question> " + question + "\\n<Answer>"`` in the language's
  words; each few-shot exemplar (the train split: its ``question`` already starts with the
  question word, its ``answer`` with the answer word) is ``question + "\\n<Answer>" + " " +
  answer[len(<Answer>) + 1:] + "\\n\\n"`` before it (target delimiter ``" "``, few-shot
  delimiter ``"\\n\\n"``). Exemplars are drawn as the harness's default sampler draws them:
  one ``random.Random(1234)`` (its default few-shot seed) samples :data:`SHOTS` train records
  for each test question in file order.
- Greedy generation until the language's question word, ``</s>`` or ``<|im_end|>`` (and the
  end of sequence), at most 256 new tokens (the harness's ``max_gen_toks``); the text is cut
  at the first stop string and not stripped.
- Two answer extractions, each scored by exact match after lower-casing and deleting
  ``string.punctuation`` from prediction and target: ``strict-match`` (the language's "The
  answer is N" pattern, first match) and ``flexible-extract`` (the last number-like span).
  A response with no match is ``[invalid]``. The target is ``str(answer_number)``.

The harness's YAML sets no ``num_fewshot``; :data:`SHOTS` = 8 is
``lm_eval --tasks mgsm_native_cot_<lang> --num_fewshot 8``, the setting of the MGSM paper.
"""

from __future__ import annotations

import dataclasses
import pathlib
import random
import re
import string
from collections.abc import Sequence

import numpy as np

from polyglot_jax import languages
from polyglot_jax.data.sources import iter_table_rows
from polyglot_jax.errors import ConfigError, DataError, MissingFileError

SHOTS = 8
FEWSHOT_SEED = 1234  # lm_eval.defaults.DEFAULT_OTHER_SEED
MAX_NEW_TOKENS = 256  # the harness's default max_gen_toks
FALLBACK = "[invalid]"
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")

# lang: (question word, answer word, strict answer pattern), from the harness's utils.py.
WORDS: dict[str, tuple[str, str, str]] = {
    "bn": ("প্রশ্ন:", "ধাপে ধাপে উত্তর:", r"The answer is (\-?[0-9\.\,]+)"),
    "de": ("Frage:", "Schritt-für-Schritt-Antwort:", r"Die Antwort lautet (\-?[0-9\.\,]+)"),
    "en": ("Question:", "Step-by-Step Answer:", r"The answer is (\-?[0-9\.\,]+)"),
    "es": ("Pregunta:", "Respuesta paso a paso:", r"La respuesta es (\-?[0-9\.\,]+)"),
    "fr": ("Question :", "Réponse étape par étape :", r"La réponse est (\-?[0-9\.\,]+)"),
    "ja": ("問題：", "ステップごとの答え:", r"答えは(\-?[0-9\.\,]+)です。"),
    "ru": ("Задача:", "Пошаговоерешение:", r"Ответ — (\-?[0-9\.\,]+)"),
    "sw": ("Swali:", "Jibu la Hatua kwa Hatua:", r"Jibu ni (\-?[0-9\.\,]+)"),
    "te": ("ప్రశ్న:", "దశలవారీగా సమాధానం:", r"సమాధానం (\-?[0-9\.\,]+)"),
    "th": ("โจทย์:", "คำตอบทีละขั้นตอน:", r"คำตอบคือ (\-?[0-9\.\,]+)"),
    "zh": ("问题：", "逐步解答:", r"答案是 (\-?[0-9\.\,]+)。"),
}


def stop_strings(lang: str) -> list[str]:
    """The task's ``until``: the question word, ``</s>`` and ``<|im_end|>``."""
    return [WORDS[lang][0], "</s>", "<|im_end|>"]


def doc_to_text(row: dict, lang: str) -> str:
    """The harness's ``doc_to_text``: a train record's question already has its question word."""
    question_word, answer_word, _ = WORDS[lang]
    if row.get("answer") is not None:
        return f"{row['question']}\n{answer_word}"
    return f"{question_word} {row['question']}\n{answer_word}"


def doc_to_target(row: dict, lang: str) -> str:
    """The harness's ``doc_to_target``: the worked answer after the answer word, else the
    number."""
    if row.get("answer") is not None:
        return row["answer"][len(WORDS[lang][1]) + 1 :]
    return str(row["answer_number"])


def _records(path: pathlib.Path, need_answer: bool) -> list[tuple[str, dict]]:
    records = []
    for where, row in iter_table_rows(path):
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise DataError(f"{where}: not an MGSM record (needs a string 'question')")
        number = row.get("answer_number")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise DataError(f"{where}: answer_number {number!r} is not a number")
        if need_answer and not isinstance(row.get("answer"), str):
            raise DataError(f"{where}: a few-shot exemplar needs its worked 'answer'")
        records.append((where, row))
    if not records:
        raise DataError(f"{path}: no MGSM records")
    return records


def read_mgsm(path: str | pathlib.Path, lang: str, shots: int = SHOTS) -> list[dict]:
    """MGSM ``mgsm/<lang>/test.jsonl`` (juletxara/mgsm: ``question``, ``answer``,
    ``answer_number``) as answer items, exemplars from ``train.jsonl`` beside it.

    Items also carry their ``stop`` strings and ``max_new_tokens`` (:mod:`scoring`).

    Raises:
      ConfigError: a language the task has no words for.
      MissingFileError: the test or train file is missing.
      DataError: a malformed record, named ``file:line``.
    """
    languages.get(lang)
    if lang not in WORDS:
        raise ConfigError(f"mgsm: no prompt words for {lang!r} (have {', '.join(WORDS)})")
    path = pathlib.Path(path)
    train = path.parent / "train.jsonl"
    if shots and not train.is_file():
        raise MissingFileError(f"{train} does not exist (MGSM's few-shot exemplars)")
    exemplars = [row for _, row in _records(train, True)] if shots else []
    if len(exemplars) < shots:
        raise DataError(f"{train}: {len(exemplars)} exemplars, fewer than {shots}")
    rnd = random.Random(FEWSHOT_SEED)
    items = []
    for i, (_, row) in enumerate(_records(path, False)):
        context = "".join(
            f"{doc_to_text(shot, lang)} {doc_to_target(shot, lang)}\n\n"
            for shot in (rnd.sample(exemplars, shots) if shots else [])
        )
        items.append(
            {
                "id": f"mgsm-{lang}-{i}",
                "lang": lang,
                "prompt": context + doc_to_text(row, lang),
                "answers": [str(row["answer_number"])],
                "stop": stop_strings(lang),
                "max_new_tokens": MAX_NEW_TOKENS,
            }
        )
    return items


def extract(response: str, pattern: re.Pattern, group: int) -> str:
    """The harness's ``regex`` filter: match ``group`` of ``findall`` (a tuple gives its first
    non-empty element), stripped, or :data:`FALLBACK`."""
    found = pattern.findall(response)
    if not found:
        return FALLBACK
    match = found[group]
    if isinstance(match, tuple):
        match = next((m for m in match if m), FALLBACK)
    return match.strip()


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def exact_match(prediction: str, target: str) -> float:
    """The harness's ``exact_match`` with ``ignore_case`` and ``ignore_punctuation``."""
    return float(
        prediction.lower().translate(_NO_PUNCTUATION) == target.lower().translate(_NO_PUNCTUATION)
    )


@dataclasses.dataclass(frozen=True)
class MgsmExactMatch:
    """Exact match (0-100) after the strict and the flexible extraction; one item's row values
    are ``mgsm_strict`` and ``mgsm_flexible`` (0 or 1)."""

    lang: str

    def per_item(self, target: Sequence[str], prediction: str) -> dict[str, float]:
        """The row metrics of one item."""
        strict = extract(prediction, re.compile(WORDS[self.lang][2]), 0)
        flexible = extract(prediction, FLEXIBLE, -1)
        return {
            "mgsm_strict": exact_match(strict, target[0]),
            "mgsm_flexible": exact_match(flexible, target[0]),
        }

    def __call__(self, targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict:
        rows = [self.per_item(t, p) for t, p in zip(targets, predictions, strict=True)]
        return {
            f"exact_match_{kind}": 100.0 * float(np.mean([r[f"mgsm_{kind}"] for r in rows]))
            if rows
            else float("nan")
            for kind in ("strict", "flexible")
        }
