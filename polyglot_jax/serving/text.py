"""Tokens to text for responses: incremental deltas for streaming, and log-prob pieces.

A streamed answer must reassemble to the non-streamed one. :class:`TextStream` decodes the
whole continuation at each token and sends only text that can no longer change: it holds back
an incomplete UTF-8 character (``U+FFFD`` at the end) and any tail that could still become a stop
string, and stops sending at a stop string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from polyglot_jax.runtime import decoding


def answer_text(vocabulary: Any, tokens: Sequence[int], stop_strings: Sequence[str]) -> str:
    """The text of a continuation, cut before its first stop string."""
    return decoding.cut_at_stop_strings(vocabulary.decode(list(tokens)), stop_strings)[0]


def _pending_stop(text: str, stop_strings: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that begins some stop string."""
    longest = 0
    for stop in stop_strings:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


class TextStream:
    """The text of one streamed continuation, sent in deltas that never need taking back."""

    def __init__(self, vocabulary: Any, stop_strings: Sequence[str]) -> None:
        self.vocabulary, self.stop_strings = vocabulary, tuple(stop_strings)
        self.tokens: list[int] = []
        self.sent = ""

    def push(self, token: int) -> str:
        """Adds a token; returns the new text that is safe to send (possibly empty)."""
        self.tokens.append(token)
        text = self.vocabulary.decode(self.tokens)
        cut, stopped = decoding.cut_at_stop_strings(text, self.stop_strings)
        if not stopped:
            cut = text[: len(text) - _pending_stop(text, self.stop_strings)].rstrip("\ufffd")
        return self._send(cut)

    def finish(self, final: str) -> str:
        """The rest of ``final`` (the whole answer) not yet sent."""
        return self._send(final)

    def _send(self, text: str) -> str:
        if not text.startswith(self.sent) or len(text) == len(self.sent):
            return ""
        delta, self.sent = text[len(self.sent) :], text
        return delta


def token_pieces(vocabulary: Any, tokens: Sequence[int], context: Sequence[int] = ()) -> list[str]:
    """Each token's share of the decoded text, so the pieces join to ``decode(tokens)``.

    ``context`` are ids decoded before ``tokens`` (e.g. a BOS) that are not shown.
    """
    pieces, before = [], vocabulary.decode(list(context))
    for end in range(1, len(tokens) + 1):
        text = vocabulary.decode([*context, *tokens[:end]])
        pieces.append(text[len(before) :] if text.startswith(before) else text)
        before = text
    return pieces
