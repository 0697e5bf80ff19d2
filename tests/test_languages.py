import pytest

from polyglot_jax import languages


def test_lookup_and_fields():
    ar = languages.get("ar")
    assert (ar.name, ar.script, ar.family.split("/")[0]) == ("Arabic", "Arabic", "Afro-Asiatic")
    assert languages.get("zh").script == "Han"


def test_unknown_code_is_one_clear_line():
    with pytest.raises(languages.UnknownLanguageError) as info:
        languages.get("xx")
    message = str(info.value)
    assert "'xx'" in message and "\n" not in message


def test_study_sets_are_registered():
    assert len(languages.PINCH_LANGUAGES) == 12
    assert languages.POLYGLOT_FINETUNE_LANGUAGES == ("en", "es", "ru", "de", "zh", "fr")
    for codes in languages.STUDY_LANGUAGES.values():
        assert languages.validate(codes) == codes


def test_lingua_names_round_trip():
    for code, lang in languages.LANGUAGES.items():
        if lang.lingua:
            assert languages.by_lingua_name(lang.lingua) == code


@pytest.mark.parametrize(
    ("code", "canonical", "name"),
    [
        ("ro", "ro", "Romanian"),
        ("sv", "sv", "Swedish"),
        ("swe", "sv", "Swedish"),
        ("ron", "ro", "Romanian"),
        ("spa_Latn", "es", "Spanish"),
        ("zho_Hans", "zh", "Chinese"),
        ("zho_Hant", "zh", "Chinese"),
        ("arb_Arab", "ar", "Arabic"),
        ("deu", "de", "German"),
        ("ger", "de", "German"),
        ("cmn", "zh", "Chinese"),
        ("nob", "no", "Norwegian"),
        ("nb", "no", "Norwegian"),
        ("tgl_Latn", "fil", "Filipino"),
        ("tl", "fil", "Filipino"),
        ("ceb_Latn", "ceb", "Cebuano"),
        ("pt-BR", "pt", "Portuguese"),
        ("EN", "en", "English"),
    ],
)
def test_iso_codes_and_flores_labels_resolve_to_canonical_codes(code, canonical, name):
    lang = languages.get(code)
    assert (lang.code, lang.name) == (canonical, name)
    assert languages.canonical(code) == canonical


def test_curated_features_survive_and_others_are_unknown():
    assert languages.get("spa_Latn") is languages.get("es")
    assert languages.get("es").tier == 5
    ro = languages.get("ron")
    assert (ro.script, ro.family, ro.tier, ro.lingua) == ("Latin", None, None, "ROMANIAN")
    assert languages.get("yue_Hant").script == "Han"
    assert languages.get("abc").script is None  # a valid ISO 639-3 code CLDR has no script for


def test_validate_returns_canonical_codes():
    assert languages.validate(["sv", "swe", "spa_Latn", "en"]) == ("sv", "sv", "es", "en")


@pytest.mark.parametrize(
    "code",
    ["xx", "zz", "english", "English", "und", "mul", "qaa", "en-US-x-y", "", "spa_Latn_x", None],
)
def test_names_and_non_codes_are_refused_naming_the_code(code):
    with pytest.raises(languages.UnknownLanguageError) as info:
        languages.get(code)
    assert repr(code) in str(info.value) and "\n" not in str(info.value)


def test_every_lingua_language_has_a_code():
    import lingua

    codes = {languages.by_lingua_name(lang.name) for lang in lingua.Language.all()}
    assert None not in codes and {"ro", "sv", "no", "nn", "fil"} <= codes
    assert set(languages.lingua_languages()) == codes
    assert all(languages.get(c).lingua for c in codes)


def test_lingua_detects_languages_outside_the_curated_table():
    from polyglot_jax.evaluation import langid

    texts = ["Bună ziua, ce mai faceți astăzi?", "Hej, hur mår du i dag?", "Hello, how are you?"]
    assert langid.detect(texts, ["ron", "swe", "eng"]) == ["ro", "sv", "en"]
    assert {"ro", "sv"} <= set(langid.detectable_languages())


def test_report_correlations_skip_languages_with_unknown_features():
    from polyglot_jax.evaluation import report

    langs = ["en", "fi", "sw", "hi", "ro", "sv"]
    row = dict.fromkeys(report.METRICS, float("nan"))
    table = {("run", lang): {**row, "lang_agree": float(i)} for i, lang in enumerate(langs)}
    rows = {row["feature"]: row for row in report.correlations(table)}
    assert rows["resource tier"]["n"] == 4  # ro and sv have no curated tier
    assert rows["Latin script"]["n"] == 6  # their script is known
