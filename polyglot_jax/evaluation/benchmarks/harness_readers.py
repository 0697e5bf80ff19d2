"""XStoryCloze, PAWS-X, XWinograd and Belebele items as lm-evaluation-harness prompts them.

Each reader takes a file in its dataset's released layout (JSON lines, or the Hugging Face
Parquet export) and returns choice items (:mod:`readers`), following the task's YAML and
``utils.py`` in ``lm_eval/tasks/<task>/``:

- XStoryCloze (``xstorycloze_<lang>``): the four input sentences joined by spaces; the two
  endings as choices; label ``answer_right_ending - 1``.
- PAWS-X (``paws_<lang>``): an empty context and ``target_delimiter: ""``; each choice is the
  whole text ``sentence1 + ", <right>? <No|Yes>, " + sentence2`` after the task's
  ``process_docs`` (detokenized, one final ``.``/``,``/``;`` of sentence1 removed, sentence2
  lower-cased first). Scored after the model's prefix token (:mod:`scoring`).
- XWinograd (``xwinograd_<lang>``): "multiple input": each choice is a context (the sentence
  up to the blank, with that option filled in) and every choice shares one ``continuation``
  (the rest of the sentence, stripped).
- Belebele (``belebele_<variant>``): ``P: passage\\nQ: question\\nA: ...\\nD: ...\\nAnswer:``
  with choices ``A``-``D``; label ``correct_answer_num - 1``.
"""

from __future__ import annotations

import itertools
import pathlib
import re
from collections.abc import Callable, Iterator

from polyglot_jax import languages
from polyglot_jax.data.fetch_sources import BELEBELE_VARIANTS
from polyglot_jax.data.sources import iter_table_rows
from polyglot_jax.errors import ConfigError, DataError

ChoiceItem = dict  # {"id", "lang", "context" | "continuation", "choices", "label", ...}

XSTORYCLOZE_LANGUAGES = ("ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh")

# lang: (question word, no, yes), as the harness's paws_<lang>.yaml choices write them.
PAWSX_WORDS: dict[str, tuple[str, str, str]] = {
    "de": ("richtig", "Nein", "Ja"),
    "en": ("right", "No", "Yes"),
    "es": ("verdad", "No", "Sí"),
    "fr": ("n'est-ce pas", "Non", "Oui"),
    "ja": ("ですね", "いいえ", "はい"),
    "ko": ("맞죠", "아니요", "예"),
    "zh": ("对吧", "不是", "是"),
}

# lang: the dataset's subset (Japanese is ``jp`` in Muennighoff/xwinograd).
XWINOGRAD_SUBSETS: dict[str, str] = {
    **{lang: lang for lang in ("en", "fr", "pt", "ru", "zh")},
    "ja": "jp",
}


def _check_language(lang: str, table: object, task: str) -> None:
    languages.get(lang)
    if lang not in table:  # type: ignore[operator]
        raise ConfigError(f"{task}: no data or prompt for {lang!r} (have {', '.join(table)})")


def _text(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {value!r}")
    return value


def _rows(path: str | pathlib.Path, what: str) -> Iterator[tuple[str, dict]]:
    for where, row in iter_table_rows(path):
        if not isinstance(row, dict):
            raise DataError(f"{where}: not a {what} record (expected a JSON object)")
        yield where, row


def _read(
    path: str | pathlib.Path, what: str, item: Callable[[dict, str], ChoiceItem | None]
) -> list[ChoiceItem]:
    items = [x for where, row in _rows(path, what) if (x := item(row, where)) is not None]
    if not items:
        raise DataError(f"{path}: no {what} records")
    return items


def read_xstorycloze(path: str | pathlib.Path, lang: str) -> list[ChoiceItem]:
    """XStoryCloze (juletxara/xstory_cloze: ``story_id``, ``input_sentence_1..4``,
    ``sentence_quiz1/2``, ``answer_right_ending`` 1 or 2) as choice items."""
    _check_language(lang, XSTORYCLOZE_LANGUAGES, "xstorycloze")

    def item(row: dict, where: str) -> ChoiceItem:
        sentences = [_text(row, f"input_sentence_{i}", where) for i in range(1, 5)]
        endings = [_text(row, f"sentence_quiz{i}", where) for i in (1, 2)]
        answer = row.get("answer_right_ending")
        if answer not in (1, 2) or isinstance(answer, bool):
            raise DataError(f"{where}: answer_right_ending {answer!r} is not 1 or 2")
        return {
            "id": f"xstorycloze-{lang}-{row.get('story_id', where)}",
            "lang": lang,
            "context": " ".join(sentences),
            "choices": endings,
            "label": answer - 1,
        }

    return _read(path, "XStoryCloze", item)


def _detokenize(text: str) -> str:
    """The harness's ``general_detokenize`` (``paws-x/utils.py``)."""
    for before, after in ((" n't", "n't"), (" )", ")"), ("( ", "("), ('" ', '"'), (' "', '"')):
        text = text.replace(before, after)
    return re.sub(r" (['.,])", r"\1", text)


def read_pawsx(path: str | pathlib.Path, lang: str) -> list[ChoiceItem]:
    """PAWS-X (``id``, ``sentence1``, ``sentence2``, ``label`` 0/1) as choice items with an
    empty context; rows with an empty sentence are dropped, as the harness filters them."""
    _check_language(lang, PAWSX_WORDS, "paws-x")
    question, no, yes = PAWSX_WORDS[lang]

    def item(row: dict, where: str) -> ChoiceItem | None:
        if row.get("sentence1") in (None, "") or row.get("sentence2") in (None, ""):
            return None
        first = _detokenize(_text(row, "sentence1", where)).strip()
        second = _detokenize(_text(row, "sentence2", where)).strip()
        if first.endswith((".", ",", ";")):
            first = first[:-1]
        second = second[:1].lower() + second[1:]
        label = row.get("label")
        if label not in (0, 1) or isinstance(label, bool):
            raise DataError(f"{where}: label {label!r} is not 0 or 1")
        return {
            "id": f"paws-{lang}-{row.get('id', where)}",
            "lang": lang,
            "context": "",
            "delimiter": "",
            "choices": [f"{first}, {question}? {word}, {second}" for word in (no, yes)],
            "label": label,
        }

    return _read(path, "PAWS-X", item)


def read_xwinograd(path: str | pathlib.Path, lang: str) -> list[ChoiceItem]:
    """XWinograd (``sentence`` with one ``_`` blank, ``option1``, ``option2``, ``answer`` "1"
    or "2") as multiple-input items: ``choices`` are the contexts, ``continuation`` shared."""
    _check_language(lang, XWINOGRAD_SUBSETS, "xwinograd")
    numbers = itertools.count()

    def item(row: dict, where: str) -> ChoiceItem:
        sentence = _text(row, "sentence", where)
        options = [_text(row, "option1", where), _text(row, "option2", where)]
        if "_" not in sentence:
            raise DataError(f"{where}: sentence has no '_' blank")
        answer = str(row.get("answer"))  # a string in the Hub's features
        if answer not in ("1", "2"):
            raise DataError(f"{where}: answer {answer!r} is not '1' or '2'")
        blank = sentence.index("_")
        return {
            "id": f"xwinograd-{lang}-{next(numbers)}",
            "lang": lang,
            "choices": [sentence[:blank] + option for option in options],
            "continuation": sentence[blank + 1 :].strip(),
            "label": int(answer) - 1,
        }

    return _read(path, "XWinograd", item)


def belebele_prompt(row: dict, where: str) -> str:
    """The harness's Belebele prompt (``_default_template_yaml``)."""
    fields = ["flores_passage", "question", *(f"mc_answer{i}" for i in range(1, 5))]
    passage, question, *answers = (_text(row, key, where) for key in fields)
    options = "".join(f"\n{letter}: {a}" for letter, a in zip("ABCD", answers, strict=True))
    return f"P: {passage}\nQ: {question.strip()}{options}\nAnswer:"


def read_belebele(path: str | pathlib.Path, lang: str) -> list[ChoiceItem]:
    """Belebele (``data/<variant>.jsonl`` of facebook/belebele) as choice items."""
    _check_language(lang, BELEBELE_VARIANTS, "belebele")

    def item(row: dict, where: str) -> ChoiceItem:
        answer = str(row.get("correct_answer_num"))
        if answer not in ("1", "2", "3", "4"):
            raise DataError(f"{where}: correct_answer_num {answer!r} is not 1, 2, 3 or 4")
        number = row.get("question_number", where)
        return {
            "id": f"belebele-{lang}-{row.get('link', '')}-{number}",
            "lang": lang,
            "context": belebele_prompt(row, where),
            "choices": ["A", "B", "C", "D"],
            "label": int(answer) - 1,
        }

    return _read(path, "Belebele", item)
