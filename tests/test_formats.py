"""Readers for real dataset formats, written by the tests in those formats."""

import contextlib
import json
import signal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polyglot_jax.data import chat_tasks, formats, hub, recipes, sources


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def roles(record):
    return [m["role"] for m in record["messages"]]


def test_guanaco_text_multi_turn_and_s1_s2_markers(tmp_path):
    text = "### Human: Hola### Assistant: ¡Hola! ¿Qué tal?### Human: Bien### Assistant: Me alegro."
    (record,) = formats.get_reader("guanaco")(jsonl(tmp_path / "es.jsonl", [{"text": text}]), "es")
    assert roles(record) == ["user", "assistant", "user", "assistant"]
    assert record["messages"][1]["content"] == "¡Hola! ¿Qué tal?"
    assert record["id"].startswith("sha-")
    path = jsonl(tmp_path / "de.jsonl", [{"text": "<S1> Wie spät ist es? <S2> Es ist drei Uhr."}])
    (german,) = formats.read_guanaco(path, "de")
    assert german["messages"] == [
        {"role": "user", "content": "Wie spät ist es?"},
        {"role": "assistant", "content": "Es ist drei Uhr."},
    ]


def test_alpaca_json_language_from_the_file_name(tmp_path):
    path = tmp_path / "alpaca_data_cleaned.de.json"
    path.write_text(
        json.dumps(
            [
                {"instruction": "Übersetze", "input": "cat", "output": "Katze"},
                {"instruction": "Nenne eine Farbe.", "input": "", "output": "Blau"},
            ]
        )
    )
    records = list(formats.read_alpaca(path))
    assert [r["lang"] for r in records] == ["de", "de"]
    assert records[0]["messages"][0]["content"] == "Übersetze\n\ncat"
    assert records[1]["messages"][0]["content"] == "Nenne eine Farbe."


def test_lima_and_dolly(tmp_path):
    lima = jsonl(
        tmp_path / "lima.jsonl", [{"conversations": ["a?", "b.", "c?", "d."], "source": "x"}]
    )
    (record,) = formats.read_lima(lima)
    assert roles(record) == ["user", "assistant", "user", "assistant"]
    dolly = jsonl(
        tmp_path / "dolly.jsonl",
        [
            {
                "instruction": "Summarise",
                "context": "Long text.",
                "response": "Short.",
                "category": "x",
            }
        ],
    )
    (record,) = formats.read_dolly(dolly)
    assert record["messages"][0]["content"] == "Summarise\n\nLong text."


OASST_FLAT = [
    {
        "message_id": "r",
        "parent_id": None,
        "role": "prompter",
        "text": "Hei!",
        "lang": "fi",
        "rank": None,
    },
    {
        "message_id": "a1",
        "parent_id": "r",
        "role": "assistant",
        "text": "Huono",
        "lang": "fi",
        "rank": 1,
    },
    {
        "message_id": "a0",
        "parent_id": "r",
        "role": "assistant",
        "text": "Paras",
        "lang": "fi",
        "rank": 0,
    },
    {
        "message_id": "p",
        "parent_id": "a0",
        "role": "prompter",
        "text": "Kiitos",
        "lang": "fi",
        "rank": 0,
    },
    {
        "message_id": "q",
        "parent_id": None,
        "role": "prompter",
        "text": "Hi",
        "lang": "en",
        "rank": None,
    },
    {
        "message_id": "qa",
        "parent_id": "q",
        "role": "assistant",
        "text": "Hello",
        "lang": "en",
        "rank": 0,
    },
]


def test_oasst1_flat_messages_take_the_top_ranked_path(tmp_path):
    path = jsonl(tmp_path / "oasst.jsonl", OASST_FLAT)
    records = {r["id"]: r for r in formats.read_oasst1(path)}
    assert [m["content"] for m in records["r"]["messages"]] == ["Hei!", "Paras", "Kiitos"]
    assert records["q"]["lang"] == "en"
    assert [r["id"] for r in formats.read_oasst1(path, "fi")] == ["r"]


def test_oasst1_trees(tmp_path):
    tree = {
        "message_tree_id": "t1",
        "prompt": {
            "message_id": "t1",
            "role": "prompter",
            "text": "¿Qué?",
            "lang": "es",
            "replies": [
                {"message_id": "b", "role": "assistant", "text": "Peor", "rank": 1, "replies": []},
                {"message_id": "c", "role": "assistant", "text": "Mejor", "rank": 0, "replies": []},
            ],
        },
    }
    (record,) = formats.read_oasst1(jsonl(tmp_path / "trees.jsonl", [tree]))
    assert [m["content"] for m in record["messages"]] == ["¿Qué?", "Mejor"]


def test_bactrian_and_aya_tables_jsonl_and_parquet(tmp_path):
    bactrian = jsonl(
        tmp_path / "bactrian.fr.jsonl",
        [{"id": "7", "instruction": "Dis bonjour", "input": "", "output": "Bonjour"}],
    )
    (record,) = formats.read_table(bactrian)
    assert (record["id"], record["lang"]) == ("7", "fr")
    aya = tmp_path / "aya.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "inputs": "مرحبا",
                    "targets": "أهلا",
                    "language": "Standard Arabic",
                    "language_code": "arb",
                },
                {"inputs": "Hi", "targets": "Hello", "language": "English", "language_code": "eng"},
            ]
        ),
        aya,
    )
    codes = [r["lang"] for r in formats.read_table(aya, lang_column="language_code")]
    assert codes == ["ar", "en"]
    assert [r["lang"] for r in formats.read_table(aya, "en", lang_column="language_code")] == ["en"]
    with pytest.raises(sources.DataError, match=r"aya\.parquet\[row 0\]: unknown language code"):
        list(formats.read_table(aya, lang_column="language"))


@pytest.mark.parametrize(
    ("reader", "content", "expected"),
    [
        ("guanaco", '{"text": 5}\n', ":1: field 'text' must be a string"),
        (
            "lima",
            '{"conversations": ["only a question", ""]}\n',
            ":1: messages[1].content is empty",
        ),
        (
            "dolly",
            '{"instruction": "x", "response": 3}\n',
            ":1: messages[1].content must be a string",
        ),
        ("oasst1", b"\xff\n", ":1: invalid UTF-8"),
        (
            "table",
            '{"inputs": "a", "targets": "b", "language": "Klingon"}\n',
            "unknown language code 'Klingon'",
        ),
    ],
)
def test_bad_records_name_file_and_line(tmp_path, reader, content, expected):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(sources.DataError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        list(formats.get_reader(reader)(path, "en"))
    skipped = sources.SkipCounter()
    assert list(formats.get_reader(reader)(path, "en", skip_bad=True, skipped=skipped)) == []
    assert skipped.total == 1


def test_dataset_of_files_registers_tasks_and_recipes(tmp_path, demo_tasks):
    files = {}
    for lang, answer in (("en", "Blue"), ("es", "Azul")):
        path = tmp_path / f"alpaca_data_cleaned.{lang}.json"
        path.write_text(
            json.dumps(
                [
                    {"id": str(i), "instruction": f"Q{i}", "input": "", "output": f"{answer} {i}"}
                    for i in range(10)
                ]
            )
        )
        files[("train", lang)] = path
    data = chat_tasks.ChatDataset("alpaca_test", files, reader="alpaca")
    chat_tasks.register_dataset(data, demo_tasks.VOCABULARY)
    name = recipes.pinch_mixture(dataset="alpaca_test", languages=["es"], n_multilingual=3)
    assert recipes.counts(name) == {"en": 7, "es": 3}


def test_empty_language_after_reading_is_an_error(tmp_path, demo_tasks):
    path = jsonl(tmp_path / "x.jsonl", [{"text": "no markers here"}])
    data = chat_tasks.ChatDataset(
        "empty_test", {("train", "en"): path}, reader="guanaco", skip_bad=True
    )
    with pytest.raises(sources.DataError, match="no usable 'en' records"):
        data.records("train", "en")


def test_hugging_face_datasets_offline_from_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    src = tmp_path / "dolly.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [{"instruction": "Name a fruit", "context": "", "response": "Apple", "category": "qa"}]
        ),
        src,
    )
    path = hub.hf_split("parquet", data_files=str(src))
    (record,) = formats.read_dolly(path)
    assert record["messages"][1]["content"] == "Apple"
    assert hub.hf_split("parquet", data_files=str(src)) == path  # cached


def test_tfds_builder_as_chat_data(tmp_path):
    import tensorflow_datasets as tfds

    class TinyChat(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "instruction": tfds.features.Text(),
                        "input": tfds.features.Text(),
                        "output": tfds.features.Text(),
                        "language": tfds.features.Text(),
                    }
                ),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            yield 0, {"instruction": "Sano hei", "input": "", "output": "Hei", "language": "fi"}
            yield 1, {"instruction": "Say hi", "input": "", "output": "Hi", "language": "en"}

    TinyChat(data_dir=str(tmp_path / "tfds")).download_and_prepare()
    path = hub.tfds_split("tiny_chat", data_dir=str(tmp_path / "tfds"))
    records = sorted(formats.read_table(path), key=lambda r: r["lang"])
    assert [(r["lang"], r["messages"][1]["content"]) for r in records] == [
        ("en", "Hi"),
        ("fi", "Hei"),
    ]


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fails (instead of hanging) when the block runs longer than ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def oasst_message(message_id, parent_id, role="assistant", **extra):
    row = {"message_id": message_id, "parent_id": parent_id, "role": role, "text": "x"}
    return {**row, "lang": "en", "rank": 0, **extra}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [oasst_message("r", None, "prompter"), oasst_message("s", "s")],
            r":2: message 's' is its own parent",
        ),
        (
            [
                oasst_message("r", None, "prompter"),
                oasst_message("a", "b"),
                oasst_message("b", "a"),
            ],
            r":2: message 'a' is in a parent cycle \(a -> b -> a\)",
        ),
        (  # a repeated id closes a loop under a real root
            [
                oasst_message("r", None, "prompter"),
                oasst_message("a", "r"),
                oasst_message("r", "a"),
            ],
            r":3: message_id 'r' repeats .*:1",
        ),
    ],
    ids=["self-parent", "two-cycle", "repeated-id"],
)
def test_oasst1_parent_cycles_are_named_not_followed(tmp_path, rows, expected):
    path = jsonl(tmp_path / "oasst.jsonl", [*rows, oasst_message("q", None, "prompter")])
    with time_limit(10), pytest.raises(sources.DataError, match=expected) as info:
        list(formats.read_oasst1(path))
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    skipped = sources.SkipCounter()
    with time_limit(10):
        records = list(formats.read_oasst1(path, skip_bad=True, skipped=skipped))
    assert {r["id"] for r in records} >= {"q"} and skipped.total == 1


def test_table_reader_skips_and_counts_bad_rows_or_names_them(tmp_path):
    good = {"instruction": "Sano hei", "input": "", "output": "Hei", "language": "fi"}
    path = tmp_path / "bactrian.jsonl"
    path.write_text(
        json.dumps(good)
        + "\n{broken\n"
        + json.dumps({**good, "output": 3})
        + "\n"
        + json.dumps({"text": "no columns"})
        + "\n"
        + json.dumps({**good, "instruction": "Sano moi"})
        + "\n"
    )
    with pytest.raises(sources.DataError, match=rf"^{path}:2: malformed JSON"):
        list(formats.read_table(path))
    skipped = sources.SkipCounter()
    records = list(formats.read_table(path, skip_bad=True, skipped=skipped))
    assert [r["messages"][0]["content"] for r in records] == ["Sano hei", "Sano moi"]
    assert skipped.total == 3
    parquet = tmp_path / "aya.parquet"
    rows = [{"inputs": "a", "targets": "b", "language": "fi"}, {"inputs": "a", "targets": None}]
    pq.write_table(pa.Table.from_pylist([*rows, rows[0]]), parquet)
    with pytest.raises(sources.DataError, match=r"aya\.parquet\[row 1\]: no 'language' field"):
        list(formats.read_table(parquet))
    skipped = sources.SkipCounter()
    assert len(list(formats.read_table(parquet, skip_bad=True, skipped=skipped))) == 2
    assert skipped.total == 1
