"""Language identification with lingua (its models ship with the package; no download).

The candidate languages are the registry's; a text lingua cannot decide on (too short, only
digits or punctuation) gets ``None``.
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
    return tuple(sorted(c for c, lang in languages.LANGUAGES.items() if lang.lingua))


def detect(texts: Sequence[str], candidates: Iterable[str] | None = None) -> list[str | None]:
    """The ISO 639-1 code of each text's language, or None when undecidable.

    Args:
      texts: the texts to classify.
      candidates: codes to choose from (default: every detectable registry language).
    """
    pool = tuple(sorted(set(candidates))) if candidates is not None else detectable_languages()
    undetectable = [c for c in pool if not languages.get(c).lingua]
    if undetectable:
        raise ConfigError(f"lingua cannot detect {undetectable}; drop them from the candidates")
    results = _detector(pool).detect_languages_in_parallel_of(list(texts))
    return [languages.by_lingua_name(r.name) if r is not None else None for r in results]
