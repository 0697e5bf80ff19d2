"""Metric functions of the structured benchmarks: choice accuracy (raw and length-normalised,
as lm-evaluation-harness's ``acc`` / ``acc_norm`` / ``acc_bytes``) and SQuAD EM / F1.

Metrics follow SeqIO's protocol (``(targets, scores)`` or ``(targets, predictions)`` → dict of
numbers) and also score one item (:meth:`per_item`), for the rows the report aggregates.

SQuAD answers are compared after one of two normalisations:

- ``squad`` (default): the official SQuAD v1.1 evaluation, which XQuAD reports with: lower
  case; delete the ASCII characters of Python's ``string.punctuation``; replace the English
  articles ``\\b(a|an|the)\\b`` by a space; split on whitespace. Scores are comparable with
  published XQuAD numbers.
- ``mlqa``: MLQA's language-aware evaluation: lower case; delete every Unicode punctuation
  character (category ``P*``) and ``string.punctuation``; remove the articles of en, es, de
  and vi, and every ``ال`` in Arabic (MLQA's pattern); split on whitespace, except Chinese
  (and Japanese), where each CJK ideograph (and kana) and punctuation mark is one token (MLQA's
  mixed segmentation). Other languages get whitespace tokens and no article removal.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import string
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

NORMALIZATIONS = ("squad", "mlqa")

_ASCII_PUNCTUATION = frozenset(string.punctuation)
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")

_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "ar": re.compile(r"\sال^|ال"),  # MLQA's pattern: every ال, not only a prefix
}
_MLQA_CHARACTER_TOKENS = {
    "zh": re.compile(r"[\u4e00-\u9fa5]"),
    "ja": re.compile(r"[\u4e00-\u9fa5\u3040-\u30ff]"),
}


def squad_normalize(text: str) -> str:
    """The official SQuAD v1.1 ``normalize_answer``."""
    text = "".join(c for c in text.lower() if c not in _ASCII_PUNCTUATION)
    return " ".join(_SQUAD_ARTICLES.sub(" ", text).split())


def _mlqa_punctuation(char: str) -> bool:
    """In MLQA's ``PUNCT``: Unicode category ``P*`` or ``string.punctuation`` (``$+<=>^`|~``)."""
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def _mixed_segmentation(text: str, characters: re.Pattern) -> list[str]:
    tokens, word = [], ""
    for char in text:
        if characters.search(char) or _mlqa_punctuation(char):
            tokens += word.split()
            tokens.append(char)
            word = ""
        else:
            word += char
    return tokens + word.split()


def mlqa_normalize(text: str, lang: str) -> str:
    """MLQA's ``normalize_answer`` for ``lang`` (see the module docstring)."""
    text = "".join(c for c in text.lower() if not _mlqa_punctuation(c))
    if lang in _MLQA_ARTICLES:
        text = _MLQA_ARTICLES[lang].sub(" ", text)
    if lang in _MLQA_CHARACTER_TOKENS:
        tokens = _mixed_segmentation(text, _MLQA_CHARACTER_TOKENS[lang])
    else:
        tokens = text.split()
    return " ".join(t for t in tokens if t.strip())


def squad_tokens(text: str, lang: str, normalization: str = "squad") -> list[str]:
    """Normalised answer tokens under ``normalization`` (``squad`` or ``mlqa``)."""
    if normalization == "squad":
        return squad_normalize(text).split()
    if normalization == "mlqa":
        return mlqa_normalize(text, lang).split()
    raise ValueError(f"unknown SQuAD normalization {normalization!r}; use one of {NORMALIZATIONS}")


def squad_scores(
    prediction: str, answers: Sequence[str], lang: str, normalization: str = "squad"
) -> tuple[float, float]:
    """``(exact match, F1)`` of one prediction, each the best over the gold answers.

    Exact match compares the normalised strings; F1 is the token-bag F1 of the official
    scripts (0 when nothing is shared).
    """
    predicted = squad_tokens(prediction, lang, normalization)
    best_em, best_f1 = 0.0, 0.0
    for answer in answers:
        gold = squad_tokens(answer, lang, normalization)
        best_em = max(best_em, float(predicted == gold))
        common = sum((collections.Counter(predicted) & collections.Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best_f1 = max(best_f1, 2 * precision * recall / (precision + recall))
    return best_em, best_f1


@dataclasses.dataclass(frozen=True)
class ChoiceTarget:
    """The target of a choice item: the gold choice and the choices' texts (for the
    length-normalised accuracies)."""

    label: int
    choices: tuple[str, ...]

    def __int__(self) -> int:
        return self.label


# lm-evaluation-harness's normalisations of a choice's summed log-likelihood: ``acc_norm``
# divides by the choice's length in characters (``len(choice)``), ``acc_bytes`` by its UTF-8
# bytes (``lm_eval/api/task.py``, ``process_results`` of ``multiple_choice``).
CHOICE_NORMALIZATIONS: dict[str, tuple[str, Any]] = {
    "none": ("accuracy", None),
    "chars": ("accuracy_norm", len),
    "bytes": ("accuracy_bytes", lambda text: len(text.encode("utf-8"))),
}


def _prediction(target: int | ChoiceTarget, scores: Sequence[float], normalization: str) -> int:
    _, length = CHOICE_NORMALIZATIONS[normalization]
    if length is None:
        return int(np.argmax(scores))
    if not isinstance(target, ChoiceTarget):
        raise TypeError(f"{normalization} normalisation needs a ChoiceTarget, got {target!r}")
    lengths = np.array([float(length(c)) for c in target.choices])
    return int(np.argmax(np.asarray(scores, np.float64) / lengths))


def choice_accuracy(
    targets: Sequence[int | ChoiceTarget],
    scores: Sequence[Sequence[float]],
    normalization: str = "none",
) -> dict:
    """SeqIO score metric: share of items whose best-scored choice is the gold one (0-100).

    ``normalization`` ``chars`` / ``bytes`` first divides each choice's log-likelihood by its
    length in characters / UTF-8 bytes (the harness's ``acc_norm`` / ``acc_bytes``).
    """
    name, _ = CHOICE_NORMALIZATIONS[normalization]
    correct = [
        _prediction(t, s, normalization) == int(t) for t, s in zip(targets, scores, strict=True)
    ]
    return {name: 100.0 * float(np.mean(correct)) if correct else float("nan")}


@dataclasses.dataclass(frozen=True)
class ChoiceAccuracy:
    """Choice accuracy; one item's row value is ``<key>`` (1.0 when the best choice is gold).

    Attributes:
      key: the row key.
      normalization: ``none``, ``chars`` (harness ``acc_norm``) or ``bytes`` (``acc_bytes``).
    """

    key: str
    normalization: str = "none"

    def __post_init__(self) -> None:
        if self.normalization not in CHOICE_NORMALIZATIONS:
            raise ValueError(f"unknown choice normalization {self.normalization!r}")

    def __call__(
        self, targets: Sequence[int | ChoiceTarget], scores: Sequence[Sequence[float]]
    ) -> dict:
        return choice_accuracy(targets, scores, self.normalization)

    def per_item(self, target: int | ChoiceTarget, scores: Sequence[float]) -> dict[str, float]:
        """The row metric of one item."""
        return {self.key: float(_prediction(target, scores, self.normalization) == int(target))}


@dataclasses.dataclass(frozen=True)
class SquadMetric:
    """Mean SQuAD exact match and F1 (0-100); one item's row values are ``<prefix>_em/_f1``."""

    prefix: str
    lang: str
    normalization: str = "squad"

    def __post_init__(self) -> None:
        squad_tokens("", self.lang, self.normalization)  # rejects an unknown normalization

    def __call__(self, targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict:
        pairs = [
            squad_scores(p, t, self.lang, self.normalization)
            for t, p in zip(targets, predictions, strict=True)
        ]
        em, f1 = np.mean(pairs, axis=0) if pairs else (float("nan"), float("nan"))
        return {"exact_match": 100.0 * float(em), "f1": 100.0 * float(f1)}

    def per_item(self, target: Sequence[str], prediction: str) -> dict[str, float]:
        """The row metrics of one item (0 or 1 for EM, 0..1 for F1)."""
        em, f1 = squad_scores(prediction, target, self.lang, self.normalization)
        return {f"{self.prefix}_em": em, f"{self.prefix}_f1": f1}
