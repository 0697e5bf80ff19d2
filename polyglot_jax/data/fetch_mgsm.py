"""``data fetch mgsm``: MGSM's test questions and its eight exemplars per language.

The release (Shi et al. 2022, google-research/url-nlp) keeps the 250 test questions of each
language in ``mgsm_<lang>.tsv`` (question, tab, the answer's number; no header), as the
juletxara/mgsm dataset lm-evaluation-harness reads ships them, and the chain-of-thought
exemplars in ``mgsm/exemplars.py``: a Python module whose ``MGSM_EXEMPLARS`` maps each language
to eight ``{"q", "a"}`` pairs, with ``EXEMPLAR_NUMBER_ANSWERS`` and
``EXEMPLAR_EQUATION_SOLUTIONS`` beside it. The module is parsed, never run: its three
assignments are read as literals. The files are written in juletxara/mgsm's record layout
(``question``, ``answer``, ``answer_number``, ``equation_solution``):
``mgsm/<lang>/test.jsonl`` and ``mgsm/<lang>/train.jsonl`` (:mod:`~polyglot_jax.evaluation
.benchmarks.mgsm` reads them).
"""

from __future__ import annotations

import ast
from typing import Any

from polyglot_jax.data.fetch_io import Fetcher, Files, jsonl
from polyglot_jax.data.fetch_sources import source
from polyglot_jax.errors import DataError

EXEMPLAR_NAMES = ("MGSM_EXEMPLARS", "EXEMPLAR_NUMBER_ANSWERS", "EXEMPLAR_EQUATION_SOLUTIONS")


def exemplar_tables(text: str, where: str) -> dict[str, Any]:
    """The literal values of :data:`EXEMPLAR_NAMES` in the text of ``exemplars.py``.

    Raises:
      DataError: the text is not Python, or a name is missing or not a literal.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise DataError(f"{where}:{e.lineno}: not Python ({e.msg})") from None
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name = getattr(node.targets[0], "id", None)
            if name in EXEMPLAR_NAMES:
                try:
                    found[name] = ast.literal_eval(node.value)
                except ValueError:
                    raise DataError(f"{where}:{node.lineno}: {name} is not a literal") from None
    missing = [name for name in EXEMPLAR_NAMES if name not in found]
    if missing:
        raise DataError(f"{where}: no {', '.join(missing)}")
    return found


def train_records(tables: dict[str, Any], lang: str, where: str) -> list[dict]:
    """The eight exemplars of ``lang`` as juletxara/mgsm's ``train`` records, in order.

    Raises:
      DataError: the language has no exemplars, or they do not match the answer tables.
    """
    pairs = tables["MGSM_EXEMPLARS"].get(lang)
    numbers, solutions = tables["EXEMPLAR_NUMBER_ANSWERS"], tables["EXEMPLAR_EQUATION_SOLUTIONS"]
    if not isinstance(pairs, dict) or not len(pairs) == len(numbers) == len(solutions):
        raise DataError(f"{where}: no {len(numbers)} exemplars for {lang!r}")
    keys = sorted(pairs, key=int)
    return [
        {
            "question": pairs[k]["q"],
            "answer": pairs[k]["a"],
            "answer_number": n,
            "equation_solution": e,
        }
        for k, n, e in zip(keys, numbers, solutions, strict=True)
    ]


def test_records(lines: list[str], where: str) -> list[dict]:
    """``question<TAB>number`` lines as juletxara/mgsm's ``test`` records (blank lines skipped).

    Raises:
      DataError: a line without one tab or whose number is not an integer (``file:line``).
    """
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        answer = parts[-1].strip().replace(",", "")
        if len(parts) != 2 or not answer.lstrip("-").isdigit():
            raise DataError(f"{where}:{number}: expected 'question<TAB>integer answer'")
        records.append(
            {"question": parts[0], "answer": None, "answer_number": int(answer),
             "equation_solution": None}
        )  # fmt: skip
    if not records:
        raise DataError(f"{where}: no questions")
    return records


def mgsm(f: Fetcher, langs: list[str]) -> None:
    """MGSM in the layout of the registry: ``mgsm/<lang>/{test,train}.jsonl``."""
    for lang in langs:
        outputs = [f"mgsm/{lang}/test.jsonl", f"mgsm/{lang}/train.jsonl"]

        def produce(lang: str = lang) -> Files:
            exemplars = source("mgsm", "train")
            text = "\n".join(row["text"] for row in f.load(exemplars))
            tables = exemplar_tables(text, exemplars.label())
            tests = source("mgsm", "test")
            lines = [row["text"] for row in f.load(tests, lang=lang)]
            return {
                f"mgsm/{lang}/test.jsonl": jsonl(test_records(lines, tests.label(lang=lang))),
                f"mgsm/{lang}/train.jsonl": jsonl(train_records(tables, lang, exemplars.label())),
            }

        f.job(f"mgsm/{lang}", outputs, produce)
