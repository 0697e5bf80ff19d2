"""What a translation may change: masking of protected spans and the checks on every answer.

Fenced code blocks, inline code, URLs and ``{placeholders}`` are replaced by numbered tokens
(``⟦0⟧``, ``⟦1⟧``, ...) before a text is sent, and put back afterwards; text that already
looks like a token is masked too, so restoring never confuses the two. An answer is accepted
only when every token comes back exactly once, its prose is within a length ratio of the
source's, and its language is the target language.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

from polyglot_jax import languages

TOKEN = re.compile(r"⟦(\d+)⟧")
_PROTECTED = re.compile(
    "|".join(
        [
            TOKEN.pattern,  # a token-like text in the source, so it survives as itself
            r"(?P<fence>```|~~~)[^\n]*\n.*?(?P=fence)",  # fenced code block
            r"`[^`\n]+`",  # inline code
            r"(?:https?|ftp)://[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]",  # URL, no trailing punctuation
            r"\{\{?[A-Za-z0-9_.\-]{1,64}\}\}?",  # {placeholder}, {{placeholder}}, {0}
        ]
    ),
    re.DOTALL,
)
# Shorter prose is not checked for language or length: lingua and ratios are noise there.
MIN_CHECKED_CHARS = 20

Detector = Callable[[Sequence[str]], list[str | None]]


@dataclasses.dataclass(frozen=True)
class Masked:
    """A text with its protected spans replaced by tokens.

    Attributes:
      text: what is sent to the translator.
      spans: the original spans, token ``⟦i⟧`` standing for ``spans[i]``.
    """

    text: str
    spans: tuple[str, ...]

    @property
    def prose(self) -> str:
        """The text without its tokens: what is actually translated."""
        return prose(self.text)


def prose(text: str) -> str:
    """``text`` without tokens, whitespace collapsed."""
    return " ".join(TOKEN.sub(" ", text).split())


def mask(text: str) -> Masked:
    """Replaces code, URLs and placeholders in ``text`` by numbered tokens."""
    spans: list[str] = []

    def token(match: re.Match) -> str:
        spans.append(match.group(0))
        return f"⟦{len(spans) - 1}⟧"

    return Masked(_PROTECTED.sub(token, text), tuple(spans))


class CheckError(ValueError):
    """A translation that must not be written; the message is a countable reason."""


def unmask(translated: str, masked: Masked) -> str:
    """Puts the original spans back in a translation of ``masked.text``.

    Raises:
      CheckError: a token is missing, repeated or unknown.
    """
    found = [int(m.group(1)) for m in TOKEN.finditer(translated)]
    if sorted(found) != list(range(len(masked.spans))):
        missing = sorted(set(range(len(masked.spans))) - set(found))
        if missing:
            raise CheckError(f"protected span lost ({len(missing)} of {len(masked.spans)})")
        raise CheckError("protected span repeated or invented")
    return TOKEN.sub(lambda m: masked.spans[int(m.group(1))], translated)


@dataclasses.dataclass(frozen=True)
class Checks:
    """The acceptance rules for one answer.

    Attributes:
      detect: language identification (``evaluation.langid.detect``), or None to skip it.
      max_length_ratio: the translated prose may be at most this many times longer, or shorter,
        than the source prose.
    """

    detect: Detector | None
    max_length_ratio: float = 3.0

    def apply(self, translated: str, masked: Masked, target: str) -> str:
        """The restored translation of ``masked`` into ``target``.

        Raises:
          CheckError: tokens lost, a length ratio out of bounds or the wrong language.
        """
        restored = unmask(translated, masked)
        source, answer = masked.prose, prose(translated)
        if not answer and source:
            raise CheckError("empty translation")
        if len(source) >= MIN_CHECKED_CHARS:
            ratio = len(answer) / len(source)
            if not 1 / self.max_length_ratio <= ratio <= self.max_length_ratio:
                raise CheckError(f"length ratio out of bounds (over {self.max_length_ratio:g}x)")
        if (
            self.detect is not None
            and len(answer) >= MIN_CHECKED_CHARS
            and languages.get(target).lingua
        ):
            detected = self.detect([answer])[0]
            if detected is not None and detected != target:
                raise CheckError(f"wrong language ({detected})")
        return restored


def needs_translation(masked: Masked) -> bool:
    """False for a text that is all code, URLs, placeholders, digits or punctuation."""
    return any(c.isalpha() for c in masked.prose)
