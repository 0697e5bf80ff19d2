"""Language identification with lingua (its models ship with the package; no download).

Every language lingua knows (about 75) is a candidate, each under its registry code
(:func:`languages.lingua_languages`); a text lingua cannot decide on (too short, only digits or
punctuation) gets ``None``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import lingua

from polyglot_jax import languages
from polyglot_jax.errors import ConfigError


@functools.lru_cache(maxsize=8)
def _detector(candidates: tuple[str, ...]) -> lingua.LanguageDetector:
    return lingua.LanguageDetectorBuilder.from_languages(
        *(getattr(lingua.Language, languages.get(c).lingua) for c in candidates)
    ).build()


def detectable_languages() -> tuple[str, ...]:
    """Registry codes that lingua can detect."""
    return languages.lingua_languages()


def _pool(candidates: Iterable[str] | None) -> tuple[str, ...]:
    """Canonical, sorted candidate codes; a code lingua cannot detect is a :class:`ConfigError`."""
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
      candidates: codes to choose from (default: every language lingua can detect).

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
      candidates: codes to choose from (default: every language lingua can detect).
    """
    detector = _detector(_pool(candidates))
    out: list[tuple[str | None, float]] = []
    for values in detector.compute_language_confidence_values_in_parallel(list(texts)):
        if not values or values[0].value <= 0.0:
            out.append((None, 0.0))
        else:
            out.append((languages.by_lingua_name(values[0].language.name), float(values[0].value)))
    return out
