"""``data fetch`` of the studies' evaluation prompt sets from small copies of the releases' files.

Polyglots' AlpacaEval instructions (one ``{"instruction"}`` per line, translations mostly wrapped
in quotes) and the zero-shot study's test subset (one ``[{"role", "content"}]`` list per line),
read through ``$POLYGLOT_JAX_HUB_MIRROR`` as from the pinned repositories.
"""

from __future__ import annotations

import json

import pytest

from polyglot_jax.data import fetch, fetch_sources, study_data
from polyglot_jax.errors import DataError

KEW = "ZurichNLP/multilingual-instruction-tuning/data/alpaca_eval"
PASERO = "naver/pasero/examples/zero-shot-transfer-inst-tuning/data"
# Polyglots' release: one {"instruction"} per line; translations mostly wrapped in quotes.
POLYGLOTS_PROMPTS = {
    "en": ["How did US states get their names?", 'I want to talk about "Smooth", a song.',
           '"Quoted" is "English"'],
    "de": ['"Wie haben die US-Bundesstaaten ihre Namen bekommen?"',
           '"Ich möchte über "Smooth" reden, ein Lied."', "Ohne Anführungszeichen"],
}  # fmt: skip


def _jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _alpaca_eval_releases(root) -> None:
    """Polyglots' and the zero-shot study's prompt files in their formats, and malformed ones."""
    for lang, texts in POLYGLOTS_PROMPTS.items():
        rows = [{"instruction": t} for t in texts]
        _jsonl(root / KEW / f"alpaca_eval_instructions_{lang}.json", rows)
    ok = '{"instruction": "\\"Ok\\""}\n'
    malformed = {
        "bg": ok + '{"instruction": "Не е JSON\n',
        "ca": ok + '{"text": "no instruction"}\n',
        "sv": '{"instruction": "\\"\\""}\n',  # nothing left once the quotes are stripped
        "da": ok + "\n" + ok,  # a blank line would shift the ids
    }
    for lang, text in malformed.items():
        (root / KEW / f"alpaca_eval_instructions_{lang}.json").write_text(text)
    zero_shot = {
        "en": ["Hi, explain kickball?", "What is 1920s music?"],
        "fr": ["Salut, le kickball ?", "Quelle musique des années 1920 ?"],
    }
    for lang, texts in zero_shot.items():
        rows = [[{"role": "user", "content": t}] for t in texts]
        _jsonl(root / PASERO / f"alpacaeval_test_subset.{lang}.jsonl", rows)
    rows = [[{"role": "user", "content": "Привет"}], {"role": "user", "content": "не список"}]
    _jsonl(root / PASERO / "alpacaeval_test_subset.ru.jsonl", rows)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    _alpaca_eval_releases(tmp_path / "mirror")
    monkeypatch.setenv(fetch_sources.ENV_MIRROR, str(tmp_path / "mirror"))
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(tmp_path / "data"))
    return tmp_path


def _fetch(env, name, languages):
    return fetch.fetch(name, env / "data", languages, cache_dir=str(env / "hf"), progress=False)


def _records(name, split, lang):
    return study_data.StudyChatDataset(name, study_data.LazyFiles(study_data.get(name))).records(
        split, lang
    )


def test_alpaca_eval_prompts_from_the_releases_formats(env):
    rows = _fetch(env, "alpaca_eval_polyglots", ["en", "de"])
    files = [(f"alpaca_eval_polyglots/test_{lang}.jsonl", 3) for lang in ("en", "de")]
    assert [(r.file, r.lines) for r in rows] == files
    lines = {
        lang: [json.loads(x) for x in (env / "data" / r.file).read_text().splitlines()]
        for lang, r in zip(("en", "de"), rows, strict=True)
    }
    ids = [f"alpaca_eval/{i}" for i in range(3)]
    assert [x["id"] for x in lines["en"]] == [x["id"] for x in lines["de"]] == ids
    assert [x["prompt"] for x in lines["en"]] == POLYGLOTS_PROMPTS["en"]  # English as released
    assert [x["prompt"] for x in lines["de"]] == [
        "Wie haben die US-Bundesstaaten ihre Namen bekommen?",
        'Ich möchte über "Smooth" reden, ein Lied.',  # one pair stripped, inner quotes kept
        "Ohne Anführungszeichen",
    ]
    (record, *_) = _records("alpaca_eval_polyglots", "test", "de")
    content = "Wie haben die US-Bundesstaaten ihre Namen bekommen?"
    assert record["id"] == "alpaca_eval/0"
    assert record["messages"] == [{"role": "user", "content": content}]
    _fetch(env, "alpaca_eval_zero_shot", ["en", "fr"])
    en, fr = (_records("alpaca_eval_zero_shot", "test", lang) for lang in ("en", "fr"))
    ids = ["alpacaeval_test_subset/0", "alpacaeval_test_subset/1"]
    assert [r["id"] for r in en] == [r["id"] for r in fr] == ids
    assert fr[1]["messages"] == [{"role": "user", "content": "Quelle musique des années 1920 ?"}]


@pytest.mark.parametrize(
    ("name", "lang", "error"),
    [
        ("alpaca_eval_polyglots", "bg", r"alpaca_eval_instructions_bg\.json:2: malformed JSON"),
        ("alpaca_eval_polyglots", "ca", r"_ca\.json:2: expected \{\"instruction\""),
        ("alpaca_eval_polyglots", "sv", r"_sv\.json:1: empty prompt"),
        ("alpaca_eval_polyglots", "da", r"_da\.json:2: blank line"),
        ("alpaca_eval_zero_shot", "ru", r"alpacaeval_test_subset\.ru\.jsonl:2: expected \[\{"),
    ],
)
def test_a_malformed_release_line_names_the_file_and_line(env, name, lang, error):
    with pytest.raises(DataError, match=error) as raised:
        _fetch(env, name, [lang])
    assert "\n" not in str(raised.value)
    assert not (env / "data" / name / f"test_{lang}.jsonl").exists()
