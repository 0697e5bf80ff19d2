"""``data fetch`` on small local copies of the hub repositories (no network).

``$POLYGLOT_JAX_HUB_MIRROR`` points the pinned sources at a folder of ``<owner>/<name>/<path>``
files written here in each repository's own format (JSON lines, JSON lists, gzipped JSON,
Parquet); ``datasets`` reads them as it reads the hub.
"""

from __future__ import annotations

import gzip
import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polyglot_jax.cli import common
from polyglot_jax.cli import data as data_cli
from polyglot_jax.data import fetch, fetch_datasets, fetch_io, fetch_sources, study_data
from polyglot_jax.errors import ConfigError, MissingFileError

HPLT = "hplt-project/monolingual-multilingual-instruction-tuning"


def _jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _parquet(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _oasst_messages(tree: str, lang: str, text: str) -> list[dict]:
    """A prompt with two ranked replies; the rank-0 reply is on the top path."""
    return [
        {"message_id": f"{tree}-p", "parent_id": None, "role": "prompter", "text": text,
         "lang": lang, "rank": None, "deleted": False},
        {"message_id": f"{tree}-a1", "parent_id": f"{tree}-p", "role": "assistant",
         "text": "second best", "lang": lang, "rank": 1, "deleted": False},
        {"message_id": f"{tree}-a0", "parent_id": f"{tree}-p", "role": "assistant",
         "text": "best answer", "lang": lang, "rank": 0, "deleted": False},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    guanaco = root / "timdettmers/openassistant-guanaco"
    for name, n in (("train", 6), ("eval", 2)):
        rows = [{"text": f"### Human: EN question {i}### Assistant: EN answer"} for i in range(n)]
        rows += [{"text": f"### Human: ES pregunta {i}### Assistant: respuesta"} for i in range(n)]
        rows += [{"text": "### Human: ?? 1 2 3### Assistant: ..."}]  # undetermined
        rows += [{"text": "### Human: LOW ¿y?### Assistant: unsure"}]  # es at 0.7: below 0.8
        _jsonl(guanaco / f"openassistant_best_replies_{name}.jsonl", rows)
    lima = [{"conversations": [f"LIMA q{i}", f"LIMA a{i}"], "source": "x"} for i in range(5)]
    lima.append({"conversations": ["multi q", "multi a", "again", "reply"], "source": "y"})
    _jsonl(root / "GAIR/lima/train.jsonl", lima)
    _jsonl(root / "GAIR/lima/test.jsonl", [{"conversations": ["LIMA test q"], "source": "z"}])
    for split in ("train", "validation"):
        rows = _oasst_messages(f"{split}-en1", "en", "How?") + _oasst_messages(
            f"{split}-de1", "de", "Wie?"
        )
        _parquet(root / f"OpenAssistant/oasst1/data/{split}-00000-of-00001-abc.parquet", rows)
    _jsonl(
        root / "databricks/databricks-dolly-15k/databricks-dolly-15k.jsonl",
        [{"instruction": "Say", "context": "ctx", "response": "said", "category": "qa"}] * 3,
    )
    for lang in ("en", "de"):
        rows = [{"instruction": f"{lang} do {i}", "input": "", "output": "ok"} for i in range(4)]
        rows.append({"instruction": f"{lang} empty", "input": "", "output": ""})  # rejected
        path = root / HPLT / f"training-data/alpaca_data_cleaned.{lang}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, ensure_ascii=False))
        prompts = [{"id": f"p{i}", "prompt": f"{lang} prompt {i}"} for i in range(3)]
        _jsonl(root / HPLT / f"test-data/test_{lang}.jsonl", prompts)
        bactrian = root / f"MBZUAI/Bactrian-X/data/{lang}.json.gz"
        bactrian.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"instruction": f"{lang} b{i}", "input": "", "id": f"{i}-alpaca", "output": "y"}
                for i in range(3)]  # fmt: skip
        bactrian.write_bytes(gzip.compress(json.dumps(rows).encode()))
    aya = [
        {"inputs": q, "targets": a, "language": name, "language_code": code}
        for q, a, name, code in (
            ("Hola?", "Hola.", "Spanish", "spa"),
            ("Hi?", "Hi.", "English", "eng"),
            ("مرحبا؟", "مرحبا.", "Standard Arabic", "arb"),
            ("X?", "X.", "Klingon", "tlh"),  # not in the registry: skipped
        )
    ]
    for split in ("train", "test"):
        _parquet(root / f"CohereLabs/aya_dataset/data/{split}-00000-of-00001.parquet", aya)
    copa = {"premise": "P.", "choice1": "a", "choice2": "b", "question": "cause", "label": 0}
    for split in ("val", "test"):
        _jsonl(root / f"cambridgeltl/xcopa/data/et/{split}.et.jsonl", [{**copa, "idx": 0}])
    squad = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "Bern is.",
             "qas": [{"id": "q1", "question": "What?", "answers": [
                 {"text": "Bern", "answer_start": 0}]}]}]}]}  # fmt: skip
    (root / "google-deepmind/xquad").mkdir(parents=True)
    (root / "google-deepmind/xquad/xquad.de.json").write_text(json.dumps(squad))
    for split in ("validation", "test"):
        row = {"premise": "A man.", "hypothesis": "A person.", "label": 0}
        _parquet(root / f"facebook/xnli/de/{split}-00000-of-00001.parquet", [row])
        choices = {"label": ["A", "B", "C"], "text": ["yes", "no", "maybe"]}
        question = {"stem": "Which?", "choices": choices}
        row = {"id": "x1", "lang": "ja", "question": question, "answerKey": "B"}
        _parquet(root / f"INK-USC/xcsr/X-CSQA-jap/xcsr-{split}.parquet", [row])
    return root


class MarkerIdentifier:
    """Identifies ``EN``/``ES`` marked texts (``LOW``: Spanish at 0.7); anything else is
    undetermined. Keeps the texts it was asked about."""

    spec = "marker"

    def __init__(self):
        self.seen = []

    def identify(self, texts):
        self.seen += texts
        found = {"EN": ("en", 0.9), "ES": ("es", 0.9), "LOW": ("es", 0.7)}
        return [found.get(t.split()[0], (None, 0.0)) for t in texts]


@pytest.fixture()
def env(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(fetch_sources.ENV_MIRROR, str(mirror))
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(tmp_path / "data"))
    return tmp_path


def _fetch(env, name, languages=None, **kwargs):
    return fetch.fetch(
        name, env / "data", languages, cache_dir=str(env / "hf"), progress=False, **kwargs
    )


def _records(name, split, lang):
    return study_data.StudyChatDataset(name, study_data.LazyFiles(study_data.get(name))).records(
        split, lang
    )


def test_urls_pin_the_revision(monkeypatch):
    monkeypatch.delenv(fetch_sources.ENV_MIRROR, raising=False)
    assert fetch_sources.source("guanaco", "train").url() == (
        "hf://datasets/timdettmers/openassistant-guanaco@831dabac2283d99420cda0b673d7a2a43849f17a"
        "/openassistant_best_replies_train.jsonl"
    )
    assert (
        fetch_sources.source("xquad", "test")
        .url(lang="de")
        .startswith("https://raw.githubusercontent.com/google-deepmind/xquad/7d30520c7175")
    )
    unpinned = set()
    for name, splits in fetch_sources.SOURCES.items():
        for src in splits.values():
            pinned = len(src.revision) == 40 and int(src.revision, 16) >= 0
            assert pinned or src.revision == fetch_sources.UNPINNED, name
            unpinned |= set() if pinned else {name}
    assert unpinned == {"belebele", "mgsm"}  # no commit of these could be checked


def test_chat_datasets_in_the_data_layout(env):
    _fetch(env, "guanaco", ["en", "es"], identifier=MarkerIdentifier())
    assert len(_records("guanaco", "train", "es")) == 6
    assert [len(_records("guanaco", "validation", lang)) for lang in ("en", "es")] == [2, 2]
    _fetch(env, "lima")
    assert len(_records("lima", "train", "en")) == 6
    assert [m["role"] for m in _records("lima", "test", "en")[0]["messages"]] == ["user"]
    _fetch(env, "oasst1", ["en", "de"])
    (top,) = _records("oasst1", "train", "de")
    assert top["id"] == "train-de1-p" and top["messages"][1]["content"] == "best answer"
    _fetch(env, "dolly")
    assert _records("dolly", "train", "en")[0]["messages"][0]["content"] == "Say\n\nctx"
    _fetch(env, "alpaca", ["en", "de"])
    ids = [r["id"] for r in _records("alpaca", "train", "de")]
    assert ids == [f"alpaca-{i:05d}" for i in range(4)]  # the empty answer is skipped
    assert ids == [r["id"] for r in _records("alpaca", "train", "en")]
    _fetch(env, "bactrian_x", ["de"])
    bactrian = [r["id"] for r in _records("bactrian_x", "train", "de")]
    assert bactrian == ["0-alpaca", "1-alpaca", "2-alpaca"]
    _fetch(env, "aya", ["arb", "ES"])  # any code the registry knows
    assert _records("aya", "train", "es")[0]["messages"][1]["content"] == "Hola."
    assert _records("aya", "test", "ar")[0]["messages"][0]["content"] == "مرحبا؟"
    _fetch(env, "oasst_test", ["en"])
    assert len(_records("oasst_test", "test", "en")) == 3


def test_lima_oasst_parts_and_the_translation_hint(env):
    rows = _fetch(env, "lima_oasst")  # default: every Pinch language; only English is published
    assert sorted(r.file for r in rows) == [
        f"lima_oasst/{split}.en.{part}.jsonl"
        for split in ("test", "train")
        for part in ("lima", "oasst")
    ]
    records = _records("lima_oasst", "train", "en")
    assert len(records) == 7 and all(len(r["messages"]) == 2 for r in records)  # first exchanges
    assert [m["role"] for m in records[-1]["messages"]] == ["user", "assistant"]
    with pytest.raises(ConfigError, match=r"Pinch translations are not published.*--languages fi"):
        _fetch(env, "lima_oasst", ["en", "fi"])


def test_a_second_fetch_downloads_nothing_and_a_lost_file_is_made_again(env, monkeypatch):
    first = _fetch(env, "alpaca", ["en", "de"])
    assert [r.status for r in first] == ["written", "written"]
    (env / "data" / "alpaca" / "train.de.jsonl").unlink()
    loads = []
    original = fetch_io.Fetcher.load
    monkeypatch.setattr(
        fetch_io.Fetcher, "load", lambda self, src, **v: loads.append(v) or original(self, src, **v)
    )
    again = _fetch(env, "alpaca", ["en", "de"])
    assert loads == [{"lang": "de"}]
    assert [(r.file, r.status, r.lines) for r in again] == [
        ("alpaca/train.en.jsonl", "present", 4),
        ("alpaca/train.de.jsonl", "written", 4),
    ]


def test_evaluation_sets_in_the_readers_layouts(env):
    from polyglot_jax.evaluation.benchmarks import readers

    for name, lang in (("xcopa", "et"), ("xquad", "de"), ("xnli", "de"), ("xcsqa", "ja")):
        _fetch(env, name, [lang])
    data = env / "data"
    assert readers.read_xcopa(data / "xcopa/et/val.et.jsonl", "et")[0]["label"] == 0
    assert readers.read_xquad(data / "xquad/xquad.de.json", "de")[0]["answers"] == ["Bern"]
    assert len(readers.read_xnli(data / "xnli/de/validation.jsonl", "de")) == 1
    (line,) = [json.loads(x) for x in (data / "X-CSQA/jap/dev.jsonl").read_text().splitlines()]
    assert line["question"]["choices"][1] == {"label": "B", "text": "no"}
    if hasattr(readers, "read_xcsqa"):
        assert readers.read_xcsqa(data / "X-CSQA/jap/dev.jsonl", "ja")[0]["label"] == 1


def test_bad_requests_are_one_line_errors(env, capsys):
    with pytest.raises(ConfigError, match=r"^data fetch alpaca: no sw data \(it has bg, cs"):
        _fetch(env, "alpaca", ["sw"])
    with pytest.raises(ConfigError, match="needs a language identifier"):
        _fetch(env, "guanaco", ["en"])
    with pytest.raises(MissingFileError, match=r"xquad\.el\.json: not found"):
        _fetch(env, "xquad", ["el"])  # not in the mirror
    argv = ["fetch", "wikipedia", f"--data_dir={env}"]
    assert common.run(lambda: data_cli.main(argv)) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: polyglot-jax data fetch: argument NAME: invalid choice")


def test_command_prints_what_it_wrote(env, capsys):
    argv = ["fetch", "dolly", f"--data_dir={env / 'cli'}", f"--cache_dir={env / 'hf'}"]
    assert data_cli.main(argv) == 0
    assert "| dolly/train.en.jsonl | 3 | written |" in capsys.readouterr().out
    assert data_cli.main(argv) == 0
    assert "| dolly/train.en.jsonl | 3 | present |" in capsys.readouterr().out


def _count_loads(monkeypatch) -> list[str]:
    loads = []
    original = fetch_io.Fetcher.load
    monkeypatch.setattr(
        fetch_io.Fetcher,
        "load",
        lambda self, src, **v: loads.append(src.path) or original(self, src, **v),
    )
    return loads


def test_a_language_absent_from_the_download_is_not_downloaded_again(env, monkeypatch):
    first = _fetch(env, "aya", ["es", "de"])  # the download has no German
    assert sorted(r.file for r in first) == ["aya/test.es.jsonl", "aya/train.es.jsonl"]
    done = json.loads((env / "data" / "aya" / ".test.done").read_text())
    assert done == {"files": ["aya/test.es.jsonl"], "absent": ["de"]}
    loads = _count_loads(monkeypatch)
    again = _fetch(env, "aya", ["es", "de"])
    assert loads == []
    assert [(r.file, r.status) for r in again] == [
        ("aya/train.es.jsonl", "present"),
        ("aya/test.es.jsonl", "present"),
    ]
    _fetch(env, "aya", ["es", "de", "ar"])  # a language the marker does not cover
    assert len(loads) == 2
    done = json.loads((env / "data" / "aya" / ".test.done").read_text())
    assert sorted(done["files"]) == ["aya/test.ar.jsonl", "aya/test.es.jsonl"]
    _fetch(env, "aya", ["de"])  # recorded absent by both fetches
    assert len(loads) == 2
    (env / "data" / "aya" / "test.ar.jsonl").unlink()  # a lost file is made again
    _fetch(env, "aya", ["es", "de", "ar"])
    assert len(loads) == 3
    assert (env / "data" / "aya" / "test.ar.jsonl").exists()


def test_guanaco_is_tagged_as_the_release_did(env, caplog):
    identifier = MarkerIdentifier()
    with caplog.at_level(logging.WARNING, logger="polyglot_jax.data.fetch_datasets"):
        _fetch(env, "guanaco", ["es"], identifier=identifier)
    assert "not the release's OpenLID" in caplog.text and fetch_datasets.OPENLID_URL in caplog.text
    # The whole conversation, markers removed; the 0.7 conversation is below 0.8.
    assert "ES pregunta 0 respuesta" in identifier.seen
    assert not any("###" in t for t in identifier.seen)
    assert len(_records("guanaco", "train", "es")) == 6
    meta = json.loads((env / "data" / "guanaco" / "train.tagging.json").read_text())
    assert (meta["identifier"], meta["text"], meta["threshold"]) == ("marker", "whole", 0.8)
    assert (meta["counts"], meta["undetermined"]) == ({"es": 6, "en": 6}, 2)


def test_the_threshold_reaches_the_tagging(env, monkeypatch, capsys):
    rows = _fetch(env, "guanaco", ["en", "es"], identifier=MarkerIdentifier(), threshold=0.95)
    # every conversation scored 0.9 is undetermined: only the tagging summaries are written
    assert [r.file for r in rows] == [
        "guanaco/train.tagging.json",
        "guanaco/validation.tagging.json",
    ]
    assert not (env / "data" / "guanaco" / "train.en.jsonl").exists()
    with pytest.raises(ConfigError, match=r"tagged with .*'threshold': 0\.95.*remove"):
        _fetch(env, "guanaco", ["es"], identifier=MarkerIdentifier(), threshold=0.5)
    lower = fetch.fetch("guanaco", env / "low", ["es"], MarkerIdentifier(), progress=False,
                        cache_dir=str(env / "hf"), threshold=0.5)  # fmt: skip
    assert [r.lines for r in lower if r.file == "guanaco/train.es.jsonl"] == [7]  # 0.7 kept
    with pytest.raises(ConfigError, match="threshold must be in"):
        _fetch(env, "guanaco", ["en"], identifier=MarkerIdentifier(), threshold=0.0)
    seen = {}
    monkeypatch.setattr(fetch, "fetch", lambda *a, **kw: seen.update(kw) or [])
    assert data_cli.main(["fetch", "dolly", f"--data_dir={env}", "--threshold=0.7"]) == 0
    assert seen["threshold"] == 0.7
    assert data_cli.main(["fetch", "dolly", f"--data_dir={env}"]) == 0
    assert seen["threshold"] is None  # each dataset's own: Guanaco's 0.8


def test_aya_test_prompts_are_an_evaluation_set(env, demo_tasks):
    """EVAL_DATASET = "aya" with EVAL_SPLIT = "test": each user prompt answered, the human
    answer kept as the reference, the set's provenance known to the report."""
    import seqio

    from polyglot_jax.data import prompt_sets
    from polyglot_jax.inference import infer
    from polyglot_jax.studies import eval_sets

    _fetch(env, "aya", ["es", "ar"])
    name = eval_sets.eval_mixture("aya", ["es", "ar"])
    assert name == "aya_eval_es_ar"
    sets = dict(infer.prompt_sets(name, "test", None))
    assert [r["messages"] for r in sets["aya_es"]] == [
        [{"role": "user", "content": "Hola?"}, {"role": "assistant", "content": "Hola."}]
    ]
    assert infer._reference(sets["aya_ar"][0]["messages"]) == "مرحبا."
    assert prompt_sets.PROVENANCE["aya"].translation == "human"
    seqio.MixtureRegistry.remove(name)
