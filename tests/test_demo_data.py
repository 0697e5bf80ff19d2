import json

from polyglot_jax import languages
from polyglot_jax.data import demo_build, sources


def test_stored_files_equal_the_builder():
    built = demo_build.build()
    assert sorted(built) == sorted(p.name for p in demo_build.DEMO_DIR.glob("*.jsonl"))
    for name, records in built.items():
        stored = (demo_build.DEMO_DIR / name).read_text(encoding="utf-8")
        assert stored == demo_build.serialize(records), name


def test_twelve_parallel_languages_with_enough_distinct_pairs():
    langs = demo_build.DEMO_LANGUAGES
    assert len(langs) >= 12
    scripts = {languages.get(code).script for code in langs}
    assert {"Arabic", "Hebrew", "Devanagari", "Han", "Cyrillic", "Latin"} <= scripts
    ids_by_lang = {}
    for lang in langs:
        train = list(sources.read_jsonl(demo_build.DEMO_DIR / f"train.{lang}.jsonl", lang=lang))
        pairs = {(r["messages"][0]["content"], r["messages"][1]["content"]) for r in train}
        assert len(pairs) == len(train) >= 60, lang
        evaluation = list(sources.read_jsonl(demo_build.DEMO_DIR / f"eval.{lang}.jsonl", lang))
        assert len(evaluation) >= 10
        held_out = {r["messages"][0]["content"] for r in evaluation}
        assert not held_out & {q for q, _ in pairs}, f"{lang}: eval prompt also in training"
        ids_by_lang[lang] = [r["id"] for r in train]
    assert all(ids == ids_by_lang["en"] for ids in ids_by_lang.values())


def test_records_have_the_documented_fields():
    line = (demo_build.DEMO_DIR / "train.he.jsonl").read_text(encoding="utf-8").splitlines()[0]
    record = json.loads(line)
    assert set(record) == {"id", "lang", "messages"}
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
