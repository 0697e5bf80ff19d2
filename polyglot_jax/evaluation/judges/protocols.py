"""LLM-judge protocols: pairwise side-by-side, single-answer scales, multi-facet, language gate.

A protocol turns an item (question, response, optionally a baseline response) into judge
requests, parses each judge output, and combines the parsed outputs into a score:

- ``pairwise``: both orders are asked; a win counts only when both orders agree, otherwise it
  is a tie; score win 1 / tie 0.5 / loss 0 for the model against the baseline.
- ``single``: helpfulness 1-6 as JSON ``{"reasoning", "score"}``.
- ``mtbench``: MT-bench style ``Rating: [[n]]``, 1-10.
- ``facets``: language, fluency, helpfulness, accuracy, logical coherence, harmlessness, 1-3.

With ``language_gate`` a score is multiplied by 1 if the response's language is the question's,
else 0: the verdict of language agreement (``langid.agreement``, where every language the
identifier knows is a candidate, so a neighbouring language is no match). Prompts are files in
``evaluation/prompts``; question and responses sit between per-item markers, verdict tokens
inside them are defused (``[[``, closing markers, and the ``{"`` that opens a JSON object), and
a verdict is read only from the end of the judge's output (its last line, or the JSON object it
ends with), so a response cannot smuggle in a verdict, even when the judge quotes it. Outputs
that do not parse are stored as ``invalid`` with their raw text.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pathlib
import re
from collections.abc import Sequence

from polyglot_jax.clients.backends import Messages
from polyglot_jax.errors import ConfigError, MissingFileError

PROMPTS = pathlib.Path(__file__).parent / "prompts"
_FIELD = re.compile(r"\{(nonce|question|response|response_a|response_b)\}")
FACETS = ("language", "fluency", "helpfulness", "accuracy", "logical_coherence", "harmlessness")


class ParseError(ValueError):
    """A judge output that does not follow the protocol's answer format."""


@dataclasses.dataclass(frozen=True)
class Item:
    """One thing to judge.

    Attributes:
      item_id: unique id (``<run>/<lang>/<id>``).
      lang: the question's language.
      question: the user prompt.
      response: the judged model's response.
      baseline: the baseline's response (pairwise only).
    """

    item_id: str
    lang: str
    question: str
    response: str
    baseline: str | None = None


_JSON_OPEN = re.compile(r"\{(?=\s*\")")


def defuse(text: str) -> str:
    """Breaks verdict-like tokens and markers inside judged text.

    ``[[x]]`` verdicts and closing markers get a space; a ``{`` that opens a JSON object (followed
    by a quoted key) becomes a full-width brace, so no JSON object in judged text parses.
    """
    text = text.replace("[[", "[ [").replace("]]", "] ]").replace("</", "< /")
    return _JSON_OPEN.sub("\uff5b", text)


def _nonce(item_id: str) -> str:
    return hashlib.sha256(item_id.encode()).hexdigest()[:8]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ParseError("empty judge output")
    return lines[-1]


def _final_json_object(text: str) -> dict:
    """The JSON object that the judge output ends with (a closing code fence may follow).

    Only the end counts: objects earlier in the output (e.g. the judge quoting a response) are
    never read. Candidates are tried from the last ``{`` backwards, so the outermost object
    that ends exactly at the end of the output wins.
    """
    body = text.rstrip()
    while body.endswith("```"):
        body = body[:-3].rstrip()
    if not body.endswith("}"):
        raise ParseError("judge output does not end with a JSON object")
    decoder = json.JSONDecoder()
    start = body.rfind("{")
    while start >= 0:
        try:
            value, end = decoder.raw_decode(body, start)
        except json.JSONDecodeError:
            value, end = None, -1
        if end == len(body) and isinstance(value, dict):
            return value
        start = body.rfind("{", 0, start)
    raise ParseError("the JSON object at the end of the judge output does not parse")


def _int_in(value: object, low: int, high: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ParseError(f"{name} is not an integer: {value!r}")
    if not low <= int(value) <= high:
        raise ParseError(f"{name} {value} is outside {low}-{high}")
    return int(value)


def read_template(path: pathlib.Path) -> tuple[str, dict[str, str]]:
    """A prompt file's text without its leading ``#`` comment lines, and their ``key: value``
    settings (``# scale: 1-3`` narrows a single-answer scale, ``# system: ...`` is the system
    message sent before the prompt)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    settings = {}
    while lines and lines[0].startswith("#"):
        key, sep, value = lines.pop(0).lstrip("#").partition(":")
        if sep:
            settings[key.strip()] = value.strip()
    return "\n".join(lines), settings


class JudgeProtocol:
    """Base: one request per item, the prompt file ``prompts/<name>.txt`` (or ``prompt_path``)."""

    name = ""
    pairwise = False
    prompt_path: pathlib.Path | None = None

    def template(self) -> str:
        return read_template(self.prompt_path or PROMPTS / f"{self.name}.txt")[0]

    def messages(self, content: str) -> Messages:
        """The request: the prompt file's ``# system:`` message, if any, then ``content``."""
        system = read_template(self.prompt_path or PROMPTS / f"{self.name}.txt")[1].get("system")
        user = [{"role": "user", "content": content}]
        return [{"role": "system", "content": system}, *user] if system else user

    def prompt(self, item: Item, swapped: bool = False) -> str:
        template = self.template()
        fields = {"nonce": _nonce(item.item_id), "question": defuse(item.question)}
        if self.pairwise:
            a, b = (item.baseline, item.response) if swapped else (item.response, item.baseline)
            fields.update(response_a=defuse(a or ""), response_b=defuse(b or ""))
        else:
            fields["response"] = defuse(item.response)
        return _FIELD.sub(lambda m: fields[m.group(1)], template)

    def requests(self, item: Item) -> list[tuple[str, Messages]]:
        """``(order, messages)`` per request; ``order`` tells the requests of an item apart."""
        return [("", self.messages(self.prompt(item)))]

    def parse(self, text: str) -> dict:
        raise NotImplementedError

    def score(self, parsed: Sequence[dict]) -> dict[str, float]:
        raise NotImplementedError


class Pairwise(JudgeProtocol):
    name = "pairwise"
    pairwise = True

    def requests(self, item: Item) -> list[tuple[str, Messages]]:
        if item.baseline is None:
            raise ValueError(f"pairwise judging of {item.item_id} needs a baseline response")
        return [
            (order, self.messages(self.prompt(item, swapped=order == "BA")))
            for order in ("AB", "BA")
        ]

    def parse(self, text: str) -> dict:
        match = re.fullmatch(r"Verdict:\s*\[\[([ABC])\]\]", _last_line(text))
        if not match:
            raise ParseError("last line is not 'Verdict: [[A]]', '[[B]]' or '[[C]]'")
        return {"verdict": match.group(1)}

    def score(self, parsed: Sequence[dict]) -> dict[str, float]:
        first, second = (p["verdict"] for p in parsed)  # model is A first, then B
        if (first, second) == ("A", "B"):
            return {"score": 1.0}
        if (first, second) == ("B", "A"):
            return {"score": 0.0}
        return {"score": 0.5}


class Single(JudgeProtocol):
    name = "single"
    scale = (1, 6)

    def parse(self, text: str) -> dict:
        value = _final_json_object(text)
        if "score" not in value:
            raise ParseError("JSON has no 'score'")
        return {
            "score": _int_in(value["score"], *self.scale, "score"),
            "reasoning": str(value.get("reasoning", "")),
        }

    def score(self, parsed: Sequence[dict]) -> dict[str, float]:
        return {"score": float(parsed[0]["score"])}


class MTBench(JudgeProtocol):
    name = "mtbench"

    def parse(self, text: str) -> dict:
        match = re.fullmatch(r"Rating:\s*\[\[(\d+)\]\]", _last_line(text))
        if not match:
            raise ParseError("last line is not 'Rating: [[n]]'")
        return {"score": _int_in(int(match.group(1)), 1, 10, "rating")}

    def score(self, parsed: Sequence[dict]) -> dict[str, float]:
        return {"score": float(parsed[0]["score"])}


class Facets(JudgeProtocol):
    name = "facets"

    def parse(self, text: str) -> dict:
        # Keys as the judge writes them: "Logical coherence", "logical_coherence", "Language".
        value = {"_".join(str(k).lower().split()): v for k, v in _final_json_object(text).items()}
        missing = [f for f in FACETS if f not in value]
        if missing:
            raise ParseError(f"JSON lacks {', '.join(missing)}")
        return {f: _int_in(value[f], 1, 3, f) for f in FACETS}

    def score(self, parsed: Sequence[dict]) -> dict[str, float]:
        facets = {f: float(parsed[0][f]) for f in FACETS}
        return {**facets, "score": sum(facets.values()) / len(facets)}


PROTOCOLS: dict[str, JudgeProtocol] = {
    p.name: p for p in (Pairwise(), Single(), MTBench(), Facets())
}


def get_protocol(name: str, prompt_file: str | None = None) -> JudgeProtocol:
    """The protocol ``name``, asking with ``prompt_file`` instead of ``prompts/<name>.txt``.

    ``prompt_file`` is a path or the name of a shipped prompt (``polyglots_helpfulness``). It
    must hold the protocol's fields (``{question}`` and ``{response}``, or ``{response_a}`` and
    ``{response_b}`` for pairwise) and ask for the protocol's answer format; a leading
    ``# scale: LOW-HIGH`` line sets the range a single-answer score must be in.

    Raises:
      ConfigError: an unknown protocol, a prompt without the protocol's fields, a bad scale.
      MissingFileError: ``prompt_file`` is neither a file nor a shipped prompt.
    """
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown judge protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}")
    if prompt_file is None:
        return PROTOCOLS[name]
    path = pathlib.Path(prompt_file)
    if not path.is_file():
        shipped = PROMPTS / (prompt_file if prompt_file.endswith(".txt") else f"{prompt_file}.txt")
        if "/" in prompt_file or not shipped.is_file():
            known = ", ".join(sorted(p.stem for p in PROMPTS.glob("*.txt")))
            raise MissingFileError(
                f"--prompt_file {prompt_file}: no such file or shipped prompt (shipped: {known})"
            )
        path = shipped
    protocol = copy.copy(PROTOCOLS[name])
    protocol.prompt_path = path
    template, settings = read_template(path)
    fields = {"question", *(("response_a", "response_b") if protocol.pairwise else ("response",))}
    missing = sorted(f for f in fields if "{" + f + "}" not in template)
    if missing:
        shown = ", ".join("{" + f + "}" for f in missing)
        raise ConfigError(f"--prompt_file {path}: a {name} prompt needs {shown}")
    if "scale" in settings:
        low, _, high = settings["scale"].partition("-")
        if not isinstance(protocol, Single) or not (low.isdigit() and high.isdigit()):
            raise ConfigError(f"--prompt_file {path}: 'scale: LOW-HIGH' is for single prompts")
        protocol.scale = (int(low), int(high))
    return protocol
