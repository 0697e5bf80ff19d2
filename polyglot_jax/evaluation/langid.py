"""Language identification with lingua (its models ship with the package; no download).

By default every language lingua knows (about 75) is a candidate, each under its registry code
(:func:`languages.lingua_languages`): an answer in Portuguese to a Spanish prompt is Portuguese,
never snapped to the nearest evaluation language. A narrower candidate set is what a caller asks
for explicitly, and :attr:`LinguaIdentifier.description` says which set was used. A text lingua
cannot decide on (too short, only digits or punctuation) gets ``None``. :func:`make_identifier`
also loads fastText language-ID models (OpenLID, GlotLID); :func:`agreement` is the one verdict
"is this text in that language" that language agreement and the LLM judge's language gate share.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Protocol

import lingua

from polyglot_jax import languages
from polyglot_jax.errors import ConfigError, DataError, MissingFileError


@functools.lru_cache(maxsize=8)
def _detector(candidates: tuple[str, ...]) -> lingua.LanguageDetector:
    return lingua.LanguageDetectorBuilder.from_languages(
        *(getattr(lingua.Language, languages.get(c).lingua) for c in candidates)
    ).build()


def detectable_languages() -> tuple[str, ...]:
    """Registry codes that lingua can detect."""
    return languages.lingua_languages()


def _pool(candidates: Iterable[str] | None) -> tuple[str, ...]:
    """Canonical, sorted candidate codes (None: every detectable language); a code lingua cannot
    detect is a :class:`ConfigError`."""
    if candidates is None:
        return detectable_languages()
    pool = tuple(sorted(set(languages.validate(candidates))))
    undetectable = [c for c in pool if not languages.get(c).lingua]
    if undetectable:
        raise ConfigError(f"lingua cannot detect {undetectable}; drop them from the candidates")
    if not pool:
        raise ConfigError("no candidate languages for lingua")
    return pool


def detect(texts: Sequence[str], candidates: Iterable[str] | None = None) -> list[str | None]:
    """The registry code of each text's language, or None when undecidable.

    Args:
      texts: the texts to classify.
      candidates: codes to choose from (default: every language lingua knows).

    Raises:
      ConfigError: a candidate that lingua cannot detect.
      UnknownLanguageError: a candidate that is no language code.
    """
    results = _detector(_pool(candidates)).detect_languages_in_parallel_of(list(texts))
    return [languages.by_lingua_name(r.name) if r is not None else None for r in results]


def detect_with_confidence(
    texts: Sequence[str], candidates: Iterable[str] | None = None
) -> list[tuple[str | None, float]]:
    """The most likely registry code of each text and lingua's confidence in it (0 to 1).

    A text lingua cannot decide on gets ``(None, 0.0)``.

    Args:
      texts: the texts to classify.
      candidates: codes to choose from (default: every language lingua knows).
    """
    detector = _detector(_pool(candidates))
    out: list[tuple[str | None, float]] = []
    for values in detector.compute_language_confidence_values_in_parallel(list(texts)):
        if not values or values[0].value <= 0.0:
            out.append((None, 0.0))
        else:
            out.append((languages.by_lingua_name(values[0].language.name), float(values[0].value)))
    return out


class Identifier(Protocol):
    """Identifies the language of texts: ``(code or None, score in [0, 1])`` per text.

    Attributes:
      spec: how it was asked for (``lingua``, ``fasttext:MODEL.bin``).
      description: the spec and the candidate set, e.g. ``lingua, open set (75 languages)``;
        judgments record it and the report prints it.
    """

    spec: str

    @property
    def description(self) -> str: ...

    def identify(self, texts: Sequence[str]) -> list[tuple[str | None, float]]: ...


@dataclasses.dataclass(frozen=True)
class LinguaIdentifier:
    """lingua over ``candidates`` (None: every language it knows, an open set)."""

    candidates: tuple[str, ...] | None = None
    spec: str = "lingua"

    @property
    def description(self) -> str:
        if self.candidates is None:
            return f"{self.spec}, open set ({len(detectable_languages())} languages)"
        shown = ", ".join(self.candidates)
        return f"{self.spec}, restricted to {len(self.candidates)} languages ({shown})"

    def identify(self, texts: Sequence[str]) -> list[tuple[str | None, float]]:
        return detect_with_confidence(texts, self.candidates)


class FastTextIdentifier:
    """A fastText language-ID model with ``__label__<iso639-3>_<Script>`` labels."""

    def __init__(self, model_path: str | os.PathLike) -> None:
        import fasttext

        path = pathlib.Path(model_path)
        if not path.is_file():
            raise MissingFileError(f"fastText model {path} does not exist")
        try:
            self._model = fasttext.load_model(str(path))
        except ValueError as e:  # fastText's message for a file that is no model
            raise DataError(f"{path} is not a fastText model: {e}") from None
        self.spec = f"fasttext:{path}"
        self._codes: dict[str, str | None] = {}

    @property
    def description(self) -> str:
        """The spec and the model's label count: every label is a candidate."""
        try:
            labels = len(self._model.get_labels())
        except AttributeError:  # a stand-in model without the label list
            return f"{self.spec}, open set"
        return f"{self.spec}, open set ({labels} labels)"

    def _code(self, label: str) -> str | None:
        if label not in self._codes:
            try:
                self._codes[label] = languages.canonical(label.removeprefix("__label__"))
            except languages.UnknownLanguageError:
                self._codes[label] = None
        return self._codes[label]

    def identify(self, texts: Sequence[str]) -> list[tuple[str | None, float]]:
        # fastText predicts one line per text; a newline inside a text is an error.
        lines = [" ".join(t.split()) for t in texts]
        labels, probs = self._model.predict(lines, k=1)
        return [
            (self._code(label[0]), min(float(p[0]), 1.0)) if label else (None, 0.0)
            for label, p in zip(labels, probs, strict=True)
        ]


def make_identifier(spec: str, candidates: Iterable[str] | None = None) -> Identifier:
    """An identifier from ``lingua`` or ``fasttext:MODEL.bin``.

    Args:
      spec: the identifier spec (``--identifier``).
      candidates: for lingua, the codes to choose from (default: all it knows).

    Raises:
      ConfigError: an unknown spec, candidates given to fastText or that lingua cannot detect.
      UnknownLanguageError: a candidate that is no language code.
      MissingFileError: a fastText model file that does not exist.
      DataError: a model file that fastText cannot load.
    """
    if spec == "lingua":
        return LinguaIdentifier(_pool(candidates) if candidates is not None else None)
    kind, _, model = spec.partition(":")
    if kind == "fasttext" and model:
        if candidates is not None:
            raise ConfigError("--languages applies to lingua; a fastText model has its own labels")
        return FastTextIdentifier(model)
    raise ConfigError(f"unknown identifier {spec!r}; use 'lingua' or 'fasttext:MODEL.bin'")


def agreement(
    identifier: Identifier, texts: Sequence[str], langs: Sequence[str]
) -> list[tuple[str | None, bool]]:
    """Each text's identified language, and whether it is the expected one.

    A language outside the expected ones is simply another language (a disagreement); an
    undecidable text (``None``) never agrees. Language agreement and the LLM judge's language
    gate both ask this, so one answer never agrees in one and fails the other.

    Args:
      identifier: from :func:`make_identifier`.
      texts: the answers.
      langs: the language each answer should be in (registry codes).
    """
    if len(texts) != len(langs):
        raise ValueError(f"{len(texts)} texts but {len(langs)} expected languages")
    expected = [languages.canonical(lang) for lang in langs]
    detected = [code for code, _ in identifier.identify(texts)] if texts else []
    return [
        (code, code is not None and code == want)
        for code, want in zip(detected, expected, strict=True)
    ]
