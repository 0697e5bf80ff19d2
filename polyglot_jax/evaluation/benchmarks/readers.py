"""XCOPA, XNLI, X-CSQA and XQuAD items in the lm-evaluation-harness prompt formats.

Readers turn the official files into items:

- choice items (XCOPA, XNLI, X-CSQA): ``{"id", "lang", "context", "choices", "label"}``,
  scored by the log-likelihood of ``" " + choice`` after ``context`` (lm-evaluation-harness's
  target delimiter);
- answer items (XQuAD): ``{"id", "lang", "prompt", "answers"}``, answered by generation.

XCOPA: ``premise`` without its final period, then the language's "because" / "therefore"
connector; choices start lower case. XNLI: ``"<premise>, <right>?"`` and choices
``"<Yes|Also|No>, <hypothesis>"`` in the language. X-CSQA: the question stem, choices the
answer texts (no per-language words). Files: XCOPA ``{val,test}.<lang>.jsonl``;
XNLI 1.0 ``xnli.{dev,test}.tsv`` (all languages in one file) or the Hugging Face ``xnli``
layout (``premise``, ``hypothesis``, ``label`` 0/1/2 as JSONL or Parquet); XQuAD / SQuAD v1.1
JSON.
"""

from __future__ import annotations

import csv
import pathlib
from collections.abc import Iterator
from typing import Any

from polyglot_jax import languages
from polyglot_jax.data.sources import (
    SkipCounter,
    iter_json_lines,
    iter_table_rows,
    read_json_file,
    skip_or_raise,
    table_columns,
)
from polyglot_jax.errors import ConfigError, DataError, MissingFileError

ChoiceItem = dict  # {"id", "lang", "context", "choices", "label"}
AnswerItem = dict  # {"id", "lang", "prompt", "answers"}

XCOPA_CONNECTORS: dict[str, tuple[str, str]] = {  # lang: (cause, effect)
    "et": ("sest", "seetõttu"),
    "ht": ("poukisa", "donk sa"),
    "id": ("karena", "maka"),
    "it": ("perché", "quindi"),
    "qu": ("imataq", "chaymi"),
    "sw": ("kwa sababu", "kwa hiyo"),
    "ta": ("காரணமாக", "எனவே"),
    "th": ("เพราะ", "ดังนั้น"),
    "tr": ("çünkü", "bu yüzden"),
    "vi": ("bởi vì", "vì vậy"),
    "zh": ("因为", "所以"),
    "en": ("because", "therefore"),
}

XNLI_WORDS: dict[str, tuple[str, str, str, str]] = {  # lang: (question, yes, also, no)
    "ar": ("صحيح", "نعم", "لذا", "رقم"),
    "bg": ("правилно", "да", "така", "не"),
    "de": ("richtig", "Ja", "Auch", "Nein"),
    "el": ("σωστός", "Ναί", "Έτσι", "όχι"),
    "en": ("right", "Yes", "Also", "No"),
    "es": ("correcto", "Sí", "Asi que", "No"),
    "fr": ("correct", "Oui", "Aussi", "Non"),
    "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
    "ru": ("правильно", "Да", "Так", "Нет"),
    "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
    "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"),
    "tr": ("doğru", "Evet", "Böylece", "Hayır"),
    "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"),
    "vi": ("đúng", "Vâng", "Vì vậy", "Không"),
    "zh": ("正确", "是的", "所以", "不是的"),
}

XNLI_LABELS = ("entailment", "neutral", "contradiction")  # label ids 0, 1, 2


def _supported(lang: str, table: dict, task: str) -> None:
    languages.get(lang)
    if lang not in table:
        raise ConfigError(f"{task}: no prompt words for {lang!r} (have {', '.join(sorted(table))})")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def xcopa_item(record: dict, lang: str, where: str) -> ChoiceItem:
    """One XCOPA record as a choice item."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    try:
        cause, effect = XCOPA_CONNECTORS[lang]
        connector = {"cause": cause, "effect": effect}[record["question"]]
        premise, label = record["premise"].strip(), int(record["label"])
        choices = [_lower_first(record["choice1"]), _lower_first(record["choice2"])]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{where}: not an XCOPA record (bad or missing field {e})") from e
    if label not in (0, 1):
        raise DataError(f"{where}: label {label} is not 0 or 1")
    return {
        "id": f"xcopa-{lang}-{record.get('idx', where)}",
        "lang": lang,
        "context": f"{premise[:-1]} {connector}",
        "choices": choices,
        "label": label,
    }


def read_xcopa(
    path: str | pathlib.Path,
    lang: str,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> list[ChoiceItem]:
    """XCOPA ``{val,test}.<lang>.jsonl`` as choice items."""
    _supported(lang, XCOPA_CONNECTORS, "xcopa")
    items = []
    for where, record in iter_json_lines(path, skip_bad=skip_bad, skipped=skipped):
        try:
            items.append(xcopa_item(record, lang, where))
        except DataError as e:
            skip_or_raise(e, skip_bad, skipped)
    if not items:
        raise DataError(f"{path}: no usable XCOPA records")
    return items


def xnli_item(premise: str, hypothesis: str, label: int, lang: str, item_id: str) -> ChoiceItem:
    """One premise/hypothesis pair as a choice item (label 0 entailment, 1 neutral, 2 no)."""
    question, *answers = XNLI_WORDS[lang]
    return {
        "id": item_id,
        "lang": lang,
        "context": f"{premise}, {question}?",
        "choices": [f"{answer}, {hypothesis}" for answer in answers],
        "label": label,
    }


def read_xnli_tsv(path: str | pathlib.Path, lang: str) -> list[ChoiceItem]:
    """The ``lang`` rows of an official XNLI 1.0 ``xnli.{dev,test}.tsv``."""
    _supported(lang, XNLI_WORDS, "xnli")
    path = pathlib.Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist")
    items, line = [], 1
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            need = {"language", "gold_label", "sentence1", "sentence2", "pairID"}
            if not need <= set(reader.fieldnames or ()):
                columns = ", ".join(sorted(need))
                raise DataError(f"{path}: not an XNLI TSV (needs columns {columns})")
            for line, row in enumerate(reader, start=2):
                if row["language"] != lang:
                    continue
                if row["gold_label"] not in XNLI_LABELS:
                    raise DataError(f"{path}:{line}: unknown gold_label {row['gold_label']!r}")
                if row["sentence1"] is None or row["sentence2"] is None:
                    raise DataError(f"{path}:{line}: missing sentence1 or sentence2")
                label, item_id = XNLI_LABELS.index(row["gold_label"]), f"xnli-{row['pairID']}"
                items.append(xnli_item(row["sentence1"], row["sentence2"], label, lang, item_id))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: invalid UTF-8 after line {line} ({e.reason})") from None
    except csv.Error as e:
        raise DataError(f"{path}:{line + 1}: not a TSV row ({e})") from None
    if not items:
        raise DataError(f"{path}: no rows in language {lang!r}")
    return items


def read_xnli_hf(path: str | pathlib.Path, lang: str) -> list[ChoiceItem]:
    """A Hugging Face ``xnli`` split of one language (JSONL or Parquet export)."""
    _supported(lang, XNLI_WORDS, "xnli")
    path = pathlib.Path(path)
    if path.suffix not in (".parquet", ".jsonl"):
        raise DataError(f"{path}: expected .parquet or .jsonl")
    need = {"premise", "hypothesis", "label"}
    missing = need - set(table_columns(path) or need)
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(sorted(missing))}")
    items = []
    for i, (where, row) in enumerate(iter_table_rows(path)):
        if not isinstance(row, dict) or not need <= set(row):
            raise DataError(f"{where}: needs the fields {', '.join(sorted(need))}")
        if row["label"] not in (0, 1, 2) or isinstance(row["label"], bool):
            raise DataError(f"{where}: label {row['label']!r} is not 0, 1 or 2")
        if not isinstance(row["premise"], str) or not isinstance(row["hypothesis"], str):
            raise DataError(f"{where}: premise and hypothesis must be strings")
        items.append(
            xnli_item(row["premise"], row["hypothesis"], row["label"], lang, f"xnli-{lang}-{i}")
        )
    if not items:
        raise DataError(f"{path}: no rows")
    return items


def read_xnli(path: str | pathlib.Path, lang: str) -> list[ChoiceItem]:
    """XNLI items from an official TSV or a Hugging Face JSONL / Parquet split."""
    if pathlib.Path(path).suffix == ".tsv":
        return read_xnli_tsv(path, lang)
    return read_xnli_hf(path, lang)


# X-CSQA (Lin et al., 2021, "Common Sense Beyond English"): the 16 languages of the X-CSR
# release, with the folder of each (Japanese is ``jap`` there; ISO 639-3 ``jap`` is Jaruára).
XCSQA_FOLDERS: dict[str, str] = {
    **{lang: lang for lang in ("ar", "de", "en", "es", "fr", "hi", "it", "nl", "pl", "pt")},
    **{lang: lang for lang in ("ru", "sw", "ur", "vi", "zh")},
    "ja": "jap",
}


def xcsqa_item(record: object, lang: str, where: str) -> ChoiceItem:
    """One X-CSQA record as a choice item, as lm-evaluation-harness's ``xcsqa_<lang>`` tasks
    (``lm_eval/tasks/xcsr.py``) prompt it: the context is the question stem, each choice
    ``" " + text`` (the harness's target delimiter, added when scored)."""
    try:
        question = record["question"]
        stem, choices = question["stem"], question["choices"]
        labels = [c["label"] for c in choices]
        texts = [c["text"] for c in choices]
    except (KeyError, TypeError, IndexError) as e:
        raise DataError(f"{where}: not an X-CSQA record (bad or missing field {e})") from None
    if not isinstance(stem, str) or not all(isinstance(t, str) for t in [*labels, *texts]):
        raise DataError(f"{where}: question stem, choice labels and texts must be strings")
    if len(texts) < 2 or len(set(labels)) != len(labels):
        raise DataError(f"{where}: needs at least two choices with distinct labels, got {labels}")
    key = record.get("answerKey")
    if key is None or key == "":  # the Hugging Face conversion keeps an empty key
        raise DataError(
            f"{where}: no answerKey (the official X-CSQA test split hides its labels; "
            f"score the dev split with --split=validation)"
        )
    if not isinstance(key, str) or key.strip() not in labels:
        raise DataError(f"{where}: answerKey {key!r} is not one of the labels {labels}")
    return {
        "id": f"xcsqa-{lang}-{record.get('id', where)}",
        "lang": lang,
        "context": stem,
        "choices": texts,
        "label": labels.index(key.strip()),
    }


def read_xcsqa(
    path: str | pathlib.Path,
    lang: str,
    skip_bad: bool = False,
    skipped: SkipCounter | None = None,
) -> list[ChoiceItem]:
    """X-CSQA ``X-CSQA/<lang>/{dev,test}.jsonl`` (``{"id", "question": {"stem", "choices":
    [{"label", "text"}]}, "answerKey"}`` per line) as choice items."""
    _supported(lang, XCSQA_FOLDERS, "xcsqa")
    items = []
    for where, record in iter_json_lines(path, skip_bad=skip_bad, skipped=skipped):
        try:
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
            items.append(xcsqa_item(record, lang, where))
        except DataError as e:
            skip_or_raise(e, skip_bad, skipped)
    if not items:
        raise DataError(f"{path}: no usable X-CSQA records")
    return items


def xquad_prompt(context: str, question: str) -> str:
    """The generation prompt of one XQuAD question."""
    return f"Context: {context}\n\nQuestion: {question}\n\nAnswer:"


def read_xquad(path: str | pathlib.Path, lang: str) -> list[AnswerItem]:
    """XQuAD (SQuAD v1.1 JSON layout) as answer items.

    Raises:
      DataError: naming the file and the record (``data[i].paragraphs[j].qas[k]``) that is
        not SQuAD-shaped.
    """
    languages.get(lang)
    path = pathlib.Path(path)
    document = read_json_file(path)
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise DataError(f"{path}: not SQuAD JSON (needs an object with a 'data' list)")
    items = list(_squad_items(data, lang, path))
    if not items:
        raise DataError(f"{path}: no questions")
    return items


def _field(record: object, key: str, kind: type, where: str) -> Any:
    value = record.get(key) if isinstance(record, dict) else None
    if not isinstance(value, kind):
        raise DataError(f"{where}: field {key!r} must be a {kind.__name__}")
    return value


def _squad_items(data: list, lang: str, path: pathlib.Path) -> Iterator[AnswerItem]:
    for i, article in enumerate(data):
        for j, paragraph in enumerate(_field(article, "paragraphs", list, f"{path}: data[{i}]")):
            where = f"{path}: data[{i}].paragraphs[{j}]"
            context = _field(paragraph, "context", str, where)
            for k, qa in enumerate(_field(paragraph, "qas", list, where)):
                at = f"{where}.qas[{k}]"
                qa_id = _field(qa, "id", str, at)
                question = _field(qa, "question", str, at)
                golds = _field(qa, "answers", list, at)
                answers = [
                    _field(a, "text", str, f"{at}.answers[{n}]") for n, a in enumerate(golds)
                ]
                if not answers:
                    raise DataError(f"{at}: question {qa_id!r} has no answers")
                yield {
                    "id": qa_id,
                    "lang": lang,
                    "prompt": xquad_prompt(context, question),
                    "answers": answers,
                }
