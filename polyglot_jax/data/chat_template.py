"""A checkpoint's own chat template (``chat_template`` in ``tokenizer_config.json``).

Rendering follows ``transformers.apply_chat_template``: a sandboxed Jinja environment with
``trim_blocks`` and ``lstrip_blocks``, ``raise_exception``, the tokenizer's special tokens
(``bos_token``, ``eos_token``, ...) as variables and ``add_generation_prompt``. The rendered text
is tokenized whole, special tokens matched as in ``transformers``, so the ids equal
``apply_chat_template(..., tokenize=True)``.

The loss mask comes from the text: each assistant turn's target runs from the end of the
generation prompt (the conversation before it rendered with ``add_generation_prompt=True``) to
the end of the first special token after its content (the end-of-turn token, e.g. ``</s>`` or
``<|im_end|>``), or to the end of its turn when the template closes turns with plain text.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from polyglot_jax.errors import ConfigError, DataError


class _Generation(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}`` (marks assistant text in some templates):
    rendered as its content."""

    tags = {"generation"}  # noqa: RUF012 (jinja's class attribute protocol)

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller: Any) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: Any = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@functools.lru_cache(maxsize=16)
def _compile(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        raise ConfigError(f"the tokenizer's chat_template does not parse: {e}") from e


def render_text(
    source: str,
    messages: Sequence[Mapping[str, str]],
    variables: Mapping[str, str],
    add_generation_prompt: bool = False,
) -> str:
    """The conversation rendered by the Jinja template ``source``.

    Args:
      source: the template (``chat_template`` of ``tokenizer_config.json``).
      messages: ``[{"role", "content"}, ...]``.
      variables: the tokenizer's special tokens by name (``bos_token``, ``eos_token``, ...).
      add_generation_prompt: end with the header of an assistant turn.

    Raises:
      DataError: the template refused the conversation (``raise_exception``, e.g. roles that
        do not alternate).
    """
    try:
        return _compile(source).render(
            messages=[dict(m) for m in messages],
            add_generation_prompt=add_generation_prompt,
            **variables,
        )
    except jinja2.exceptions.TemplateError as e:
        raise DataError(f"the tokenizer's chat_template rejects the conversation: {e}") from e


def _first_special(text: str, special: Sequence[str]) -> tuple[int, int] | None:
    found = [(text.find(t), -len(t)) for t in special if t and t in text]
    if not found:
        return None
    at, minus_length = min(found)
    return at, at - minus_length


def _assistant_span(
    source: str,
    variables: Mapping[str, str],
    special: Sequence[str],
    messages: Sequence[Mapping[str, str]],
    text: str,
    i: int,
) -> tuple[int, int]:
    """Characters of ``text`` the model generates for assistant message ``i``."""
    prompt_end = 0
    if i:
        prompt = render_text(source, messages[:i], variables, add_generation_prompt=True)
        prompt_end = len(prompt) if text.startswith(prompt) else 0
    content = messages[i]["content"]
    at = text.find(content, prompt_end) if content else -1
    if at < 0 and content.strip():
        content = content.strip()
        at = text.find(content, prompt_end)
    if at < 0:
        raise DataError(
            f"the tokenizer's chat_template does not write assistant message {i} as it is; "
            f"its tokens cannot be marked for the loss ({messages[i]['content'][:40]!r})"
        )
    end = at + len(content)
    turn = render_text(source, messages[: i + 1], variables)
    turn_end = len(turn) if text.startswith(turn) and len(turn) >= end else len(text)
    closing = _first_special(text[end:turn_end], special)
    return prompt_end or at, (end + closing[1]) if closing else turn_end


def render_segments(
    source: str,
    variables: Mapping[str, str],
    special: Sequence[str],
    messages: Sequence[Mapping[str, str]],
    loss_on: str,
    add_generation_prompt: bool = False,
) -> list[tuple[str, bool]]:
    """The rendered conversation as ``(text, is_target)`` segments (see the module docstring).

    Args:
      source: the Jinja template.
      variables: the tokenizer's special tokens by name.
      special: texts of the tokenizer's special tokens (the end-of-turn token is one).
      messages: the conversation.
      loss_on: ``"last_assistant"``, ``"all_assistant"`` or ``"all"``.
      add_generation_prompt: render a prompt for generation (no targets).
    """
    text = render_text(source, messages, variables, add_generation_prompt)
    if add_generation_prompt or loss_on == "all":
        return [(text, loss_on == "all" and not add_generation_prompt)] if text else []
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if loss_on == "last_assistant":
        turns = turns[-1:]
    segments, at = [], 0
    for i in turns:
        start, end = _assistant_span(source, variables, special, messages, text, i)
        start = max(start, at)
        segments += [(text[at:start], False), (text[start:end], True)]
        at = max(at, end)
    segments.append((text[at:], False))
    return [(t, target) for t, target in segments if t]


def encode_segments(
    vocabulary: Any, segments: Sequence[tuple[str, bool]]
) -> tuple[list[int], list[bool]]:
    """Tokenizes the joined segments whole; a token is a target when its characters overlap a
    target segment (a token of no characters: when its position lies in one).

    Args:
      vocabulary: a vocabulary with ``encode_with_offsets`` (:mod:`vocab`'s).
      segments: ``(text, is_target)`` in order.

    Returns:
      ids ``[tokens]`` and their target flags ``[tokens]``.
    """
    if not hasattr(vocabulary, "encode_with_offsets"):
        raise ConfigError(
            "chat template 'tokenizer' needs a Hugging Face tokenizer (vocab.load_vocabulary)"
        )
    spans, at = [], 0
    for text, target in segments:
        if target:
            spans.append((at, at + len(text)))
        at += len(text)
    ids, offsets = vocabulary.encode_with_offsets("".join(t for t, _ in segments))

    def is_target(start: int, end: int) -> bool:
        if start == end:
            return any(a <= start < z for a, z in spans)
        return any(start < z and end > a for a, z in spans)

    return list(ids), [is_target(s, e) for s, e in offsets]
