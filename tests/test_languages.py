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
