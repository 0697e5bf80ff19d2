"""Language registry: every ISO 639 code, with curated features for the languages we study.

:func:`get` accepts any ISO 639-1 (``"sv"``), ISO 639-2/639-3 (``"swe"``, ``"ger"``) code and the
Flores-200 / OpenLID / GlotLID labels of language identifiers (``"spa_Latn"``, ``"zho_Hant"``),
in any case, through ``langcodes`` (CLDR data); a region subtag is dropped (OASST1's ``pt-BR`` →
``pt``). Names (``"English"``), other BCP 47 subtags and codes that name no language (``"xx"``,
``"und"``, ``"mul"``) raise :class:`UnknownLanguageError` naming the code.

The canonical code (:attr:`Language.code`) is CLDR's normalised language subtag: ISO 639-1 where
one exists, else ISO 639-3. CLDR aliases apply: deprecated codes (``iw`` → ``he``, ``mo`` →
``ro``), Tagalog as Filipino (``tl``, ``tgl`` → ``fil``), and individual languages of a
macrolanguage fold into it where CLDR does (``arb`` → ``ar``, ``cmn`` → ``zh``, ``swh`` → ``sw``,
``pes`` → ``fa``). The script of a label is dropped too (``zho_Hant`` → ``zh``). Two curated aliases
keep older data working: Norwegian Bokmål ``nb``/``nob`` → ``no`` and Ayacucho Quechua ``quy`` →
``qu``.

Curated languages (:data:`LANGUAGES`) carry a script, family, resource tier and lingua name; any
other language gets its English name from CLDR, its likely script where CLDR knows it, and
``None`` for family and tier (feature unknown). The language sets of the four studies live here
too, so that a gin file can name ``PINCH_LANGUAGES`` and every stage agrees on what a code means.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable

import langcodes

from polyglot_jax.errors import DataError


class UnknownLanguageError(DataError):
    """A language code that the registry does not know."""


@dataclasses.dataclass(frozen=True)
class Language:
    """One language of the registry.

    Attributes:
      code: canonical code: ISO 639-1 (``"en"``) where one exists, else ISO 639-3 (``"fil"``).
      name: English name.
      script: ISO 15924 script name of the usual writing system (None: unknown).
      family: language family (genus level where it matters, e.g. ``"Indo-European/Slavic"``);
        None for languages outside the curated table.
      tier: resource tier 0 (lowest) to 5 (highest), after Joshi et al. (2020); None for
        languages outside the curated table.
      lingua: the name of the language in ``lingua.Language`` (upper case); empty when lingua
        cannot detect it.
    """

    code: str
    name: str
    script: str | None
    family: str | None
    tier: int | None
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


# A language subtag (2-3 letters), optionally script and region: "sv", "swe", "spa_Latn", "pt-BR".
_CODE_RE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z]{4})?(?:[_-](?:[A-Za-z]{2}|[0-9]{3}))?")
# Valid ISO 639 codes that name no single language.
_NOT_A_LANGUAGE = frozenset({"und", "mul", "mis", "zxx"})


def _normalise(code: str) -> str | None:
    """CLDR's language subtag of ``code`` (macrolanguage preferred), or None."""
    if not _CODE_RE.fullmatch(code):
        return None
    try:
        tag = langcodes.Language.get(code.replace("_", "-")).prefer_macrolanguage()
    except (langcodes.tag_parser.LanguageTagError, ValueError):
        return None
    language = tag.language
    if language is None or language in _NOT_A_LANGUAGE or not tag.is_valid():
        return None
    if language.startswith("q") and "qaa" <= language <= "qtz":  # private use
        return None
    if tag.language_name().startswith("Unknown language"):
        return None
    return language


def _curated_aliases() -> dict[str, str]:
    """Codes that CLDR keeps apart but older data and lingua (BOKMAL) file under a curated code."""
    normal = {three: _normalise(three) for three in ISO639_3}
    return {n: ISO639_3[t] for t, n in normal.items() if n is not None and n != ISO639_3[t]}


_ALIASES: dict[str, str] = _curated_aliases()


@functools.lru_cache(maxsize=1)
def _lingua_codes() -> dict[str, str]:
    """Every ``lingua.Language`` name to its canonical code (curated entries first)."""
    import lingua

    out = {}
    for language in lingua.Language.all():
        code = _normalise(language.iso_code_639_1.name.lower())
        if code is not None:
            out[language.name] = _ALIASES.get(code, code)
    out.update({lang.lingua: lang.code for lang in LANGUAGES.values() if lang.lingua})
    return out


# ISO 15924 codes whose langcodes name differs from the curated table's convention.
_SCRIPT_NAMES = {"Hans": "Han", "Hant": "Han", "Hani": "Han", "Jpan": "Japanese", "Kore": "Hangul"}


def _script_name(code: str) -> str | None:
    """The name of ``code``'s likely script from CLDR's likely subtags, or None if unknown."""
    from langcodes.data_dicts import LIKELY_SUBTAGS

    likely = LIKELY_SUBTAGS.get(code)
    if likely is None:
        return None
    script = langcodes.Language.get(likely).script
    if script is None:
        return None
    return _SCRIPT_NAMES.get(script) or langcodes.Language.make(script=script).script_name()


@functools.lru_cache(maxsize=4096)
def _lookup(code: str) -> Language | None:
    normal = _normalise(code)
    if normal is None:
        return None
    normal = _ALIASES.get(normal, normal)
    if normal in LANGUAGES:
        return LANGUAGES[normal]
    lingua_name = {c: n for n, c in _lingua_codes().items()}.get(normal, "")
    return Language(
        code=normal,
        name=langcodes.Language.get(normal).language_name(),
        script=_script_name(normal),
        family=None,
        tier=None,
        lingua=lingua_name,
    )


def get(code: str) -> Language:
    """Returns the registry entry for ``code``.

    Args:
      code: an ISO 639-1/639-2/639-3 code or a Flores-200 style label (``"spa_Latn"``).

    Raises:
      UnknownLanguageError: if ``code`` names no language (``"xx"``, a name, a region tag).
    """
    if isinstance(code, str) and code in LANGUAGES:
        return LANGUAGES[code]
    found = _lookup(code.strip()) if isinstance(code, str) else None
    if found is None:
        raise UnknownLanguageError(
            f"unknown language code {code!r}: expected an ISO 639-1 or 639-3 code (sv, swe) or "
            "a label like spa_Latn"
        )
    return found


def canonical(code: str) -> str:
    """The canonical code of ``code`` (``"spa_Latn"`` → ``"es"``); raises like :func:`get`."""
    return get(code).code


def validate(codes: Iterable[str]) -> tuple[str, ...]:
    """Checks every code and returns their canonical codes as a tuple, in order."""
    return tuple(get(c).code for c in codes)


def by_lingua_name(name: str) -> str | None:
    """Maps a ``lingua.Language`` name (``"ENGLISH"``) to a canonical code, or None."""
    return _lingua_codes().get(name)


def lingua_languages() -> tuple[str, ...]:
    """Canonical codes of every language lingua can detect, sorted."""
    return tuple(sorted(set(_lingua_codes().values())))
