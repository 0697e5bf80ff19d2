"""Language registry: ISO 639-1 codes, names, scripts, families, resource tiers.

The language sets of the four studies live here too, so that a gin file can name
``PINCH_LANGUAGES`` and every stage agrees on what a code means. Unknown codes raise
:class:`UnknownLanguageError` with the offending code in the message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from polyglot_jax.errors import DataError


class UnknownLanguageError(DataError):
    """A language code that the registry does not know."""


@dataclasses.dataclass(frozen=True)
class Language:
    """One language of the registry.

    Attributes:
      code: ISO 639-1 code (``"en"``).
      name: English name.
      script: ISO 15924 script name of the usual writing system.
      family: language family (genus level where it matters, e.g. ``"Indo-European/Slavic"``).
      tier: resource tier 0 (lowest) to 5 (highest), after Joshi et al. (2020).
      lingua: the name of the language in ``lingua.Language`` (upper case).
    """

    code: str
    name: str
    script: str
    family: str
    tier: int
    lingua: str


_TABLE: tuple[Language, ...] = (
    Language("ar", "Arabic", "Arabic", "Afro-Asiatic/Semitic", 5, "ARABIC"),
    Language("bg", "Bulgarian", "Cyrillic", "Indo-European/Slavic", 3, "BULGARIAN"),
    Language("bn", "Bengali", "Bengali", "Indo-European/Indo-Aryan", 3, "BENGALI"),
    Language("ca", "Catalan", "Latin", "Indo-European/Romance", 4, "CATALAN"),
    Language("cs", "Czech", "Latin", "Indo-European/Slavic", 4, "CZECH"),
    Language("da", "Danish", "Latin", "Indo-European/Germanic", 3, "DANISH"),
    Language("de", "German", "Latin", "Indo-European/Germanic", 5, "GERMAN"),
    Language("el", "Greek", "Greek", "Indo-European/Hellenic", 3, "GREEK"),
    Language("en", "English", "Latin", "Indo-European/Germanic", 5, "ENGLISH"),
    Language("es", "Spanish", "Latin", "Indo-European/Romance", 5, "SPANISH"),
    Language("et", "Estonian", "Latin", "Uralic/Finnic", 3, "ESTONIAN"),
    Language("eu", "Basque", "Latin", "Isolate/Basque", 4, "BASQUE"),
    Language("fa", "Persian", "Arabic", "Indo-European/Iranian", 4, "PERSIAN"),
    Language("fi", "Finnish", "Latin", "Uralic/Finnic", 4, "FINNISH"),
    Language("fr", "French", "Latin", "Indo-European/Romance", 5, "FRENCH"),
    Language("he", "Hebrew", "Hebrew", "Afro-Asiatic/Semitic", 3, "HEBREW"),
    Language("hi", "Hindi", "Devanagari", "Indo-European/Indo-Aryan", 4, "HINDI"),
    Language("hu", "Hungarian", "Latin", "Uralic/Ugric", 4, "HUNGARIAN"),
    Language("id", "Indonesian", "Latin", "Austronesian/Malayic", 3, "INDONESIAN"),
    Language("is", "Icelandic", "Latin", "Indo-European/Germanic", 2, "ICELANDIC"),
    Language("it", "Italian", "Latin", "Indo-European/Romance", 4, "ITALIAN"),
    Language("ja", "Japanese", "Japanese", "Japonic", 5, "JAPANESE"),
    Language("ko", "Korean", "Hangul", "Koreanic", 4, "KOREAN"),
    Language("nl", "Dutch", "Latin", "Indo-European/Germanic", 4, "DUTCH"),
    Language("no", "Norwegian", "Latin", "Indo-European/Germanic", 1, "BOKMAL"),
    Language("pl", "Polish", "Latin", "Indo-European/Slavic", 4, "POLISH"),
    Language("pt", "Portuguese", "Latin", "Indo-European/Romance", 4, "PORTUGUESE"),
    Language("ru", "Russian", "Cyrillic", "Indo-European/Slavic", 4, "RUSSIAN"),
    Language("sw", "Swahili", "Latin", "Niger-Congo/Bantu", 2, "SWAHILI"),
    Language("ta", "Tamil", "Tamil", "Dravidian", 3, "TAMIL"),
    Language("te", "Telugu", "Telugu", "Dravidian", 1, "TELUGU"),
    Language("th", "Thai", "Thai", "Kra-Dai/Tai", 3, "THAI"),
    Language("tr", "Turkish", "Latin", "Turkic/Oghuz", 4, "TURKISH"),
    Language("uk", "Ukrainian", "Cyrillic", "Indo-European/Slavic", 3, "UKRAINIAN"),
    Language("ur", "Urdu", "Arabic", "Indo-European/Indo-Aryan", 3, "URDU"),
    Language("vi", "Vietnamese", "Latin", "Austroasiatic/Vietic", 4, "VIETNAMESE"),
    Language("yo", "Yoruba", "Latin", "Niger-Congo/Volta-Niger", 2, "YORUBA"),
    Language("zh", "Chinese", "Han", "Sino-Tibetan/Sinitic", 5, "CHINESE"),
)

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in _TABLE}

# Languages with no lingua model: detection never returns them, so agreement for
# them cannot be measured by language ID (Haitian Creole, Quechua in XCOPA).
UNDETECTABLE: frozenset[str] = frozenset({"ht", "qu"})
LANGUAGES.update(
    {
        "ht": Language("ht", "Haitian Creole", "Latin", "Creole/French-based", 0, ""),
        "qu": Language("qu", "Quechua", "Latin", "Quechuan", 1, ""),
    }
)

# Language sets of the four studies.
# "Multilingual instruction tuning with just a pinch of multilinguality" (Shaham et al., 2024).
PINCH_LANGUAGES: tuple[str, ...] = (
    "ar",
    "zh",
    "cs",
    "en",
    "et",
    "fi",
    "he",
    "hi",
    "it",
    "ru",
    "es",
    "sw",
)
# "Turning English-centric LLMs into polyglots" (Kew et al., 2023): fine-tuning order.
POLYGLOT_FINETUNE_LANGUAGES: tuple[str, ...] = ("en", "es", "ru", "de", "zh", "fr")
# Zero-shot transfer from English-only tuning (Chirkova and Nikoulina, 2024): evaluation languages.
TRANSFER_LANGUAGES: tuple[str, ...] = ("en", "fr", "pt", "ru")
# "Monolingual or multilingual instruction tuning" (Chen et al., 2024), its OASST test set.
MONO_MULTI_LANGUAGES: tuple[str, ...] = (
    "bg",
    "bn",
    "cs",
    "en",
    "es",
    "fi",
    "fr",
    "hi",
    "no",
    "ru",
    "zh",
)

STUDY_LANGUAGES: dict[str, tuple[str, ...]] = {
    "pinch": PINCH_LANGUAGES,
    "polyglot": POLYGLOT_FINETUNE_LANGUAGES,
    "transfer": TRANSFER_LANGUAGES,
    "mono_multi": MONO_MULTI_LANGUAGES,
}


# ISO 639-3 (and 639-2/B) codes used by multilingual datasets (Aya, Bactrian-X), to registry codes.
ISO639_3: dict[str, str] = {
    three: code
    for code, threes in {
        "ar": "ara arb", "bg": "bul", "bn": "ben", "ca": "cat", "cs": "ces cze", "da": "dan",
        "de": "deu ger", "el": "ell gre", "en": "eng", "es": "spa", "et": "est ekk",
        "eu": "eus baq", "fa": "fas pes per", "fi": "fin", "fr": "fra fre", "he": "heb",
        "hi": "hin", "hu": "hun", "id": "ind", "is": "isl ice", "it": "ita", "ja": "jpn",
        "ko": "kor", "nl": "nld dut", "no": "nor nob", "pl": "pol", "pt": "por", "ru": "rus",
        "sw": "swa swh", "ta": "tam", "te": "tel", "th": "tha", "tr": "tur", "uk": "ukr",
        "ur": "urd", "vi": "vie", "yo": "yor", "zh": "zho chi cmn", "ht": "hat", "qu": "que quy",
    }.items()
    for three in threes.split()
}  # fmt: skip


def get(code: str) -> Language:
    """Returns the registry entry for ``code``.

    Raises:
      UnknownLanguageError: if ``code`` is not in the registry.
    """
    try:
        return LANGUAGES[code]
    except (KeyError, TypeError):
        raise UnknownLanguageError(
            f"unknown language code {code!r}; known codes: {' '.join(sorted(LANGUAGES))}"
        ) from None


def validate(codes: Iterable[str]) -> tuple[str, ...]:
    """Checks every code and returns them as a tuple, in order."""
    return tuple(get(c).code for c in codes)


def by_lingua_name(name: str) -> str | None:
    """Maps a ``lingua.Language`` name (``"ENGLISH"``) to an ISO code, or None."""
    return _BY_LINGUA.get(name)


_BY_LINGUA: dict[str, str] = {lang.lingua: lang.code for lang in LANGUAGES.values() if lang.lingua}
