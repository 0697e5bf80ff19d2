"""``polyglot-jax data tag``: a mixed dataset split into one file per identified language."""

from __future__ import annotations

import json
import random

import pytest

from polyglot_jax import cli
from polyglot_jax.data import tag
from polyglot_jax.evaluation import langid
from polyglot_jax.testing import fasttext_models

FIXTURE_LANGS = ("en", "es", "fi", "ru", "zh", "hi")


def _prompts(shared_data, lang: str, n: int = 3) -> list[str]:
    """The first ``n`` long prompts (lingua is reliable on them) of a shared OASST file."""
    out = []
    for line in (shared_data / "oasst_prompts" / f"test_{lang}.jsonl").open(encoding="utf-8"):
        prompt = json.loads(line)["prompt"]
        if len(prompt) >= (40 if lang == "zh" else 150):
            out.append(prompt)
        if len(out) == n:
            return out
    raise AssertionError(f"not enough long {lang} prompts")


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@pytest.fixture()
def mixed(tmp_path, shared_data):
    """A Guanaco-format file mixing real prompts in six languages, and their languages by id."""
    lines, truth = [], {}
    for lang in FIXTURE_LANGS:
        for i, prompt in enumerate(_prompts(shared_data, lang)):
            lines.append({"id": f"{lang}-{i}", "text": f"### Human: {prompt}### Assistant: ok"})
            truth[f"{lang}-{i}"] = lang
    random.Random(0).shuffle(lines)
    return _write_jsonl(tmp_path / "guanaco.train.jsonl", lines), truth


def _read_outputs(out_dir, name):
    files = {p.name.split(".")[1]: p for p in out_dir.glob(f"{name}.*.jsonl")}
    return {lang: [json.loads(x) for x in p.read_text().splitlines()] for lang, p in files.items()}


def test_lingua_splits_real_prompts_by_language(mixed, tmp_path):
    path, truth = mixed
    out = tmp_path / "out"
    summary = tag.tag(path, out, langid.make_identifier("lingua"), fmt="guanaco", progress=False)
    outputs = _read_outputs(out, "guanaco")
    assert set(outputs) == set(FIXTURE_LANGS)
    for lang, records in outputs.items():
        assert {r["id"] for r in records} == {i for i, t in truth.items() if t == lang}
        assert all(r["lang"] == lang and r["messages"][0]["role"] == "user" for r in records)
    assert summary["counts"] == {lang: len(outputs[lang]) for lang in outputs}
    assert (summary["undetermined"], summary["total"]) == (0, len(truth))
    assert json.loads((out / tag.SUMMARY).read_text()) == summary
    assert not list(out.glob(".*tmp*"))


class _Fixed:
    """An identifier that answers from a table: text → (code, score)."""

    spec = "fixed"

    def __init__(self, answers):
        self.answers = answers

    def identify(self, texts):
        return [self.answers[t] for t in texts]


def test_threshold_no_text_and_undecidable_are_undetermined(tmp_path):
    records = [
        {"id": "a", "messages": [{"role": "user", "content": "sure"}]},
        {"id": "b", "messages": [{"role": "user", "content": "unsure"}]},
        {"id": "c", "messages": [{"role": "user", "content": "none"}]},
        {"id": "d", "messages": [{"role": "assistant", "content": "no user turn"}]},
    ]
    path = _write_jsonl(tmp_path / "mix.jsonl", records)
    ident = _Fixed({"sure": ("sv", 0.9), "unsure": ("ro", 0.4), "none": (None, 0.0)})
    summary = tag.tag(path, tmp_path / "o", ident, threshold=0.5, progress=False)
    assert summary["counts"] == {"sv": 1}
    assert (summary["undetermined"], summary["no_text"]) == (3, 1)
    und = _read_outputs(tmp_path / "o", "mix")["und"]
    assert [(r["id"], r["lang"]) for r in und] == [("b", "und"), ("c", "und"), ("d", "und")]

    summary = tag.tag(path, tmp_path / "o", ident, threshold=0.3, progress=False)
    assert summary["counts"] == {"ro": 1, "sv": 1} and summary["undetermined"] == 2
    assert set(_read_outputs(tmp_path / "o", "mix")) == {"ro", "sv", "und"}


def test_a_rerun_removes_only_the_files_its_previous_summary_listed(tmp_path):
    path = _write_jsonl(tmp_path / "mix.jsonl", [{"messages": [{"role": "user", "content": "x"}]}])
    out = tmp_path / "o"
    tag.tag(path, out, _Fixed({"x": ("ro", 0.9)}), progress=False)
    (out / "mine.txt").write_text("kept")
    tag.tag(path, out, _Fixed({"x": ("sv", 0.9)}), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "mix.sv.jsonl", tag.SUMMARY]


# Words of three languages; the labels are Flores-200 style, as OpenLID and GlotLID write them.
WORDS = {
    "eng_Latn": "the house is big and the dog runs home with my friend today",
    "spa_Latn": "la casa es grande y el perro corre a casa con mi amigo hoy",
    "swe_Latn": "huset är stort och hunden springer hem med min vän idag",
}


def _sentence(rng: random.Random, label: str) -> str:
    return " ".join(rng.choice(WORDS[label].split()) for _ in range(rng.randint(6, 10)))


@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory):
    """A tiny supervised fastText identifier (``testing.fasttext_models``)."""
    rng = random.Random(0)
    lines = [f"__label__{label} {_sentence(rng, label)}" for label in WORDS for _ in range(150)]
    rng.shuffle(lines)
    return fasttext_models.train(tmp_path_factory.mktemp("fasttext"), lines)


def test_fasttext_model_with_flores_labels(tmp_path, fasttext_model, capsys):
    rng = random.Random(1)
    truth = {"eng_Latn": "en", "spa_Latn": "es", "swe_Latn": "sv"}
    records = [
        {"id": f"{label}-{i}", "messages": [{"role": "user", "content": _sentence(rng, label)}]}
        for label in WORDS
        for i in range(5)
    ]
    records.append({"id": "gibberish", "messages": [{"role": "user", "content": "qqq zzz\nxxx"}]})
    path = _write_jsonl(tmp_path / "mix.jsonl", records)
    out = tmp_path / "out"
    argv = [
        "data",
        "tag",
        str(path),
        f"--output_dir={out}",
        f"--identifier=fasttext:{fasttext_model}",
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    outputs = _read_outputs(out, "mix")
    for label, lang in truth.items():
        assert sorted(r["id"] for r in outputs[lang]) == [f"{label}-{i}" for i in range(5)]
    assert [r["id"] for r in outputs["und"]] == ["gibberish"]  # unseen words: no confidence
    summary = json.loads((out / tag.SUMMARY).read_text())
    assert summary["counts"] == {"en": 5, "es": 5, "sv": 5} and summary["undetermined"] == 1
    assert summary["identifier"] == f"fasttext:{fasttext_model}"
    # The printed table is the files' contents.
    rows = {line.split()[0]: int(line.split()[-2]) for line in printed.splitlines()[1:-1]}
    assert rows == {lang: len(records) for lang, records in outputs.items()}
    assert "Swedish" in printed and printed.splitlines()[-1].split()[1] == "16"


BAD = [
    (["{tmp}/nowhere.jsonl"], "nowhere.jsonl"),
    (["{input}", "--identifier=cld3"], "unknown identifier 'cld3'"),
    (["{input}", "--identifier=fasttext:"], "unknown identifier"),
    (["{input}", "--identifier=fasttext:{tmp}/missing.bin"], "missing.bin"),
    (["{input}", "--identifier=fasttext:{input}"], "is not a fastText model"),
    (["{input}", "--threshold=0"], "--threshold must be in (0, 1]"),
    (["{input}", "--threshold=1.5"], "--threshold must be in (0, 1]"),
    (["{input}", "--threshold=x"], "--threshold"),
    (["{input}", "--format=csv"], "invalid choice: 'csv'"),
    (["{input}", "--text=all"], "invalid choice: 'all'"),
    (["{input}", "--languages=ro,xx"], "'xx'"),
    (["{input}", "--languages=ht"], "lingua cannot detect ['ht']"),
    (["{bad}"], "bad.jsonl:2"),
]


@pytest.mark.parametrize(("args", "expected"), BAD, ids=[b[1][:30] for b in BAD])
def test_bad_tag_command_is_one_line(tmp_path, capsys, args, expected):
    good = _write_jsonl(tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "hej"}]}])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + "{not json\n")
    subs = {"{tmp}": str(tmp_path), "{input}": str(good), "{bad}": str(bad)}
    for key, value in subs.items():
        args = [a.replace(key, value) for a in args]
        expected = expected.replace(key, value)
    code = cli.main(["data", "tag", *args, f"--output_dir={tmp_path}/out"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], err
    assert not (tmp_path / "out" / tag.SUMMARY).exists()


class _Recording(_Fixed):
    """A :class:`_Fixed` identifier that keeps every text it was asked about."""

    def __init__(self, answers):
        super().__init__(answers)
        self.seen = []

    def identify(self, texts):
        self.seen += texts
        return super().identify(texts)


def test_whole_text_is_every_turn_without_markers_or_newlines(tmp_path):
    text = "### Human: Hola\nqué tal?### Assistant: Bien ### Human: y tú### Assistant: ok"
    path = _write_jsonl(tmp_path / "g.jsonl", [{"id": "g", "text": text}])
    whole = "Hola qué tal? Bien y tú ok"
    ident = _Recording({whole: ("es", 0.99)})
    summary = tag.tag(path, tmp_path / "o", ident, fmt="guanaco", text="whole", progress=False)
    assert ident.seen[0] == whole
    assert all("###" not in t and "Human:" not in t and "\n" not in t for t in ident.seen)
    assert summary["text"] == "whole" and summary["counts"] == {"es": 1}
    # Markers inside a turn's text (a JSONL record written from raw Guanaco) go as well.
    record = {"role": "user", "content": "a ### Assistant: b\n### Human: c"}
    assert tag.whole_text({"messages": [record]}) == "a   b   c"
    assert tag.whole_text({"messages": [{"role": "user", "content": " \n"}]}) is None


def test_threshold_08_drops_a_low_confidence_conversation(tmp_path):
    records = [
        {"id": "sure", "messages": [{"role": "user", "content": "a"}]},
        {"id": "edge", "messages": [{"role": "user", "content": "b"}]},
        {"id": "mixed", "messages": [{"role": "user", "content": "c"}]},
    ]
    path = _write_jsonl(tmp_path / "mix.jsonl", records)
    ident = _Fixed({"a": ("es", 0.95), "b": ("es", 0.8), "c": ("es", 0.79)})
    summary = tag.tag(
        path, tmp_path / "o", ident, threshold=tag.GUANACO_THRESHOLD, text="whole", progress=False
    )
    outputs = _read_outputs(tmp_path / "o", "mix")
    assert [r["id"] for r in outputs["es"]] == ["sure", "edge"]  # kept at >= 0.8, as the release
    assert [r["id"] for r in outputs["und"]] == ["mixed"]
    assert (summary["threshold"], summary["undetermined"]) == (0.8, 1)


def test_whole_text_sees_the_assistant_turns_language(tmp_path, fasttext_model):
    rng = random.Random(2)
    records = []
    for i in range(4):
        answer = " ".join(_sentence(rng, "spa_Latn") for _ in range(4))
        messages = [
            {"role": "user", "content": _sentence(rng, "eng_Latn")},
            {"role": "assistant", "content": answer},
        ]
        records.append({"id": f"c{i}", "messages": messages})
    path = _write_jsonl(tmp_path / "mix.jsonl", records)
    base = ["data", "tag", str(path), f"--identifier=fasttext:{fasttext_model}"]
    assert cli.main([*base, f"--output_dir={tmp_path / 'first'}"]) == 0
    assert cli.main([*base, f"--output_dir={tmp_path / 'whole'}", "--text=whole"]) == 0
    assert set(_read_outputs(tmp_path / "first", "mix")) == {"en"}
    assert set(_read_outputs(tmp_path / "whole", "mix")) == {"es"}
    summary = json.loads((tmp_path / "whole" / tag.SUMMARY).read_text())
    assert (summary["text"], summary["counts"]) == ("whole", {"es": 4})
    assert summary["description"].startswith(f"fasttext:{fasttext_model}, open set")
