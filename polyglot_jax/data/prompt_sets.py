"""Released evaluation prompt files, line by line, to ``{"id", "prompt"}`` rows.

The two AlpacaEval releases below are parallel by line: line ``i`` holds the same prompt in
every language and has no id of its own, so the id is the 0-based line number after a prefix
naming the set (``alpaca_eval/0``). Each parser reads one line of its release and returns the
prompt or raises ``ValueError``; :func:`prompt_rows` turns the problem into a
:class:`DataError` naming the file and line. :data:`PROVENANCE` says, per prompt set that
``data fetch`` knows, how its non-English prompts were translated and under which license.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Literal

from polyglot_jax.errors import DataError

LineParser = Callable[[str, str], str]  # (line, lang) -> prompt


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where a prompt set's non-English text comes from.

    Attributes:
      translation: ``human`` (translated by people), ``machine`` (automatically translated,
        corrections said in ``note``) or ``unknown``.
      license: the release's license as its authors state it (``unknown`` when not found).
      note: what else a reader of the numbers should know, in a few words.
    """

    translation: Literal["human", "machine", "unknown"]
    license: str
    note: str = ""


# Keyed by the ``data fetch`` source name (data/fetch_sources.py).
PROVENANCE: dict[str, Provenance] = {
    # Better Alpaca's 50 OASST test prompts (../shared/data/README.md: human-translated).
    "oasst_test": Provenance("human", "CC BY-NC 4.0", "50 Open-Assistant prompts"),
    "alpaca_eval_polyglots": Provenance(
        "machine",
        "unknown",
        "translated with GPT; no license file in the release (AlpacaEval: CC BY-NC 4.0)",
    ),
    "alpaca_eval_zero_shot": Provenance(
        "machine",
        "CC BY-NC 4.0",
        "Google Translate, corrected by native or fluent speakers",
    ),
    # The Aya dataset's test split (EVAL_DATASET = "aya", EVAL_SPLIT = "test"): prompts and
    # answers written by fluent speakers on the Aya annotation platform, not translated; the
    # answers become each row's ``reference``. Apache-2.0 (the dataset card).
    "aya": Provenance("human", "Apache-2.0", "written (not translated) by fluent speakers"),
}


def strip_quotes(text: str) -> str:
    """``text`` without one pair of surrounding double quotes, when it has them."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def polyglots_instruction(line: str, lang: str) -> str:
    """A line of Polyglots' ``alpaca_eval_instructions_<lang>.json``: ``{"instruction": ...}``.

    Most translated instructions are wrapped in literal double quotes, an artifact of the GPT
    translation; the release's ``inference.py`` (``prepare_inputs_for_generation``) meant to
    strip one surrounding pair ("strip leading and trailing quotes ... if present") but renders
    the unstripped text. One pair is stripped here, from the translations only: the English
    file is AlpacaEval's own text.
    """
    record = json.loads(line)
    instruction = record.get("instruction") if isinstance(record, dict) else None
    if not isinstance(instruction, str):
        raise ValueError('expected {"instruction": "<text>"}')
    return instruction if lang == "en" else strip_quotes(instruction)


def zero_shot_prompt(line: str, lang: str) -> str:
    """A line of the zero-shot study's ``alpacaeval_test_subset.<lang>.jsonl``: a JSON list
    holding one user message, ``[{"role": "user", "content": ...}]``."""
    del lang  # the same format in every language
    messages = json.loads(line)
    message = messages[0] if isinstance(messages, list) and len(messages) == 1 else None
    if not (
        isinstance(message, dict)
        and message.get("role") == "user"
        and isinstance(message.get("content"), str)
    ):
        raise ValueError('expected [{"role": "user", "content": "<text>"}]')
    return message["content"]


def prompt_rows(
    lines: Sequence[str], where: str, lang: str, parse: LineParser, id_prefix: str
) -> list[dict]:
    """``{"id": "<id_prefix>/<line - 1>", "prompt"}`` for every line of a released file.

    Args:
      lines: the file's lines, blank ones included (their numbers are the ids).
      where: the file, for error messages.
      lang: the file's language.
      parse: the release's line parser.
      id_prefix: the ids' prefix, the same in every language.

    Raises:
      DataError: ``where:line: problem`` for a blank line, malformed JSON, a line not in the
        release's format or an empty prompt; ``where: no prompts`` for an empty file.
    """
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            if not line.strip():
                raise ValueError("blank line (the line numbers are the prompts' ids)")
            prompt = parse(line, lang)
            if not prompt.strip():
                raise ValueError("empty prompt")
        except json.JSONDecodeError as e:
            raise DataError(
                f"{where}:{number}: malformed JSON ({e.msg}, column {e.colno})"
            ) from None
        except ValueError as e:
            raise DataError(f"{where}:{number}: {e}") from None
        rows.append({"id": f"{id_prefix}/{number - 1}", "prompt": prompt})
    if not rows:
        raise DataError(f"{where}: no prompts")
    return rows
