"""A table of bad inputs for the data readers and ``polyglot-jax eval``.

Every row must fail with one line that names the culprit (file and line or record) and is a
:class:`UserError` (the command line: exit status 2 and one ``error:`` line, no traceback).
Rows with a skip count are also read with ``skip_bad=True``: skipped and counted, no error.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polyglot_jax.data import formats, sources
from polyglot_jax.errors import UserError
from polyglot_jax.evaluation.benchmarks import readers

CHAT = {"id": "a", "lang": "en", "messages": [{"role": "user", "content": "Hi"}]}


def lines(*rows) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def chat(**changes) -> dict:
    return {**CHAT, **changes}


def msg(message_id, parent_id, **extra) -> dict:
    row = {"message_id": message_id, "parent_id": parent_id, "role": "assistant", "text": "x"}
    return {**row, "lang": "en", "rank": 0, **extra}


ROOT = msg("r", None, role="prompter")
XCOPA = {"premise": "A.", "choice1": "B", "choice2": "C", "question": "cause", "label": 0}
XNLI_HEADER = "language\tgold_label\tsentence1\tsentence2\tpairID\n"
QA = {"id": "q1", "question": "Who?", "answers": [{"text": "Me", "answer_start": 0}]}


def squad(qa: dict) -> bytes:
    return json.dumps({"data": [{"paragraphs": [{"context": "Me.", "qas": [qa]}]}]}).encode()


def parquet(rows: list[dict]):
    def write(path):
        pq.write_table(pa.Table.from_pylist(rows), path)

    return write


def read_with(name: str, lang: str = "en"):
    def read(path, skip_bad=False, skipped=None):
        return list(formats.get_reader(name)(path, lang, skip_bad=skip_bad, skipped=skipped))

    return read


def prompts(path, skip_bad=False, skipped=None):
    return list(sources.read_prompts_jsonl(path, "en", skip_bad, skipped))


def xcopa(path, skip_bad=False, skipped=None):
    return readers.read_xcopa(path, "sw", skip_bad, skipped)


def xnli(path, skip_bad=False, skipped=None):
    return readers.read_xnli(path, "en")


def xquad(path, skip_bad=False, skipped=None):
    return readers.read_xquad(path, "en")


# (id, reader, file name, content, expected text after the file name, skipped with skip_bad)
CASES = [
    ("jsonl-malformed", read_with("jsonl"), "d.jsonl", lines(CHAT, b"{oops"), ":2: malformed", 1),
    ("jsonl-utf8", read_with("jsonl"), "d.jsonl", lines(b"\xff\xfe"), ":1: invalid UTF-8", 1),
    ("jsonl-list", read_with("jsonl"), "d.jsonl", lines([1]), ":1: expected a JSON object", 1),
    ("jsonl-no-messages", read_with("jsonl"), "d.jsonl", lines({"id": "a"}), ":1: field 'mes", 1),
    (
        "jsonl-content-type",
        read_with("jsonl"),
        "d.jsonl",
        lines(chat(messages=[{"role": "user", "content": 3}])),
        ":1: messages[0].content must be a string",
        1,
    ),
    ("jsonl-lang", read_with("jsonl", None), "d.jsonl", lines(chat(lang="xx")), ":1: unknown", 1),
    (
        "jsonl-long-line",
        read_with("jsonl"),
        "d.jsonl",
        lines(chat(pad="x" * 200)),
        ":1: line too",
        1,
    ),
    ("prompts-missing", prompts, "p.jsonl", lines({"id": 1}), ":1: field 'prompt' must", 1),
    (
        "prompts-list",
        prompts,
        "p.jsonl",
        lines({"prompt": "x"}, ["x"]),
        ":2: expected a JSON object",
        1,
    ),
    ("guanaco-type", read_with("guanaco"), "g.jsonl", lines({"text": 5}), ":1: field 'text'", 1),
    (
        "jsonl-no-user-turn",
        read_with("jsonl"),
        "d.jsonl",
        lines(CHAT, chat(messages=[{"role": "assistant", "content": "Hi"}])),
        ":2: the conversation has no user turn (roles: assistant)",
        1,
    ),
    (
        "guanaco-no-user-turn",
        read_with("guanaco"),
        "g.jsonl",
        lines({"text": "### Assistant: Hello"}),
        ":1: the conversation has no user turn",
        1,
    ),
    ("guanaco-turns", read_with("guanaco"), "g.jsonl", lines({"text": "hi"}), ":1: no '###", 1),
    (
        "alpaca-malformed",
        read_with("alpaca"),
        "a.json",
        b'[{"instruction": ',
        ":1: malformed",
        None,
    ),
    ("alpaca-dict", read_with("alpaca"), "a.json", b"{}", ": expected a JSON list", None),
    ("alpaca-empty", read_with("alpaca"), "a.json", b"", ":1: malformed JSON", None),
    ("alpaca-utf8", read_with("alpaca"), "a.json", b'["\xff"]', ": invalid UTF-8", None),
    (
        "alpaca-no-output",
        read_with("alpaca"),
        "a.json",
        b'[{"instruction": "x"}]',
        "[0]: messages[1].content must be a string",
        1,
    ),
    ("alpaca-record", read_with("alpaca"), "a.json", b"[3]", "[0]: expected a JSON object", 1),
    ("lima-type", read_with("lima"), "l.jsonl", lines({"conversations": "x"}), ":1: field 'con", 1),
    (
        "lima-empty-turn",
        read_with("lima"),
        "l.jsonl",
        lines({"conversations": ["q", ""]}),
        ":1:",
        1,
    ),
    (
        "dolly-type",
        read_with("dolly"),
        "d.jsonl",
        lines({"instruction": "x", "response": 3}),
        ":1:",
        1,
    ),
    (
        "oasst-self-parent",
        read_with("oasst1"),
        "o.jsonl",
        lines(ROOT, msg("s", "s")),
        ":2: message 's' is its own parent",
        1,
    ),
    (
        "oasst-two-cycle",
        read_with("oasst1"),
        "o.jsonl",
        lines(ROOT, msg("a", "b"), msg("b", "a")),
        ":2: message 'a' is in a parent cycle (a -> b -> a)",
        1,
    ),
    ("oasst-shape", read_with("oasst1"), "o.jsonl", lines(ROOT, {"x": 1}), ":2: not an OASST1", 1),
    (
        "oasst-replies",
        read_with("oasst1"),
        "o.jsonl",
        lines({"prompt": {**ROOT, "replies": "no"}}),
        ":1: message 'r': 'replies' must be a list of objects",
        1,
    ),
    ("oasst-role", read_with("oasst1"), "o.jsonl", lines(msg("r", None, role="bot")), ":1: mes", 1),
    (
        "table-language",
        read_with("table", None),
        "t.jsonl",
        lines({"inputs": "a", "targets": "b", "language": "Klingon"}),
        ":1: unknown language code 'Klingon'",
        1,
    ),
    ("table-columns", read_with("table"), "t.jsonl", lines({"text": "x"}), ":1: needs 'inputs'", 1),
    ("table-malformed", read_with("table"), "t.jsonl", lines(b"{oops"), ":1: malformed JSON", 1),
    (
        "table-parquet-no-language",
        read_with("table", None),
        "aya.parquet",
        parquet([{"inputs": "a", "targets": "b"}]),
        ": no 'language' column",
        None,
    ),
    (
        "table-parquet-row",
        read_with("table", None),
        "aya.parquet",
        parquet([{"inputs": "a", "targets": None, "language": "en"}]),
        "[row 0]: messages[1].content must be a string",
        1,
    ),
    (
        "table-parquet-corrupt",
        read_with("table"),
        "t.parquet",
        b"PAR1 nope",
        ": not a Parquet",
        None,
    ),
    (
        "xcopa-missing-key",
        xcopa,
        "x.jsonl",
        lines(XCOPA, {"label": 0}),
        ":2: not an XCOPA record",
        1,
    ),
    ("xcopa-label", xcopa, "x.jsonl", lines(XCOPA, {**XCOPA, "label": 3}), ":2: label 3", 1),
    ("xcopa-list", xcopa, "x.jsonl", lines(XCOPA, [1]), ":2: expected a JSON object", 1),
    ("xcopa-empty", xcopa, "x.jsonl", b"", ": no usable XCOPA records", None),
    ("xnli-columns", xnli, "xnli.test.tsv", b"a\tb\n", ": not an XNLI TSV", None),
    (
        "xnli-gold-label",
        xnli,
        "xnli.test.tsv",
        (XNLI_HEADER + "en\tmaybe\ta\tb\t1\n").encode(),
        ":2: unknown gold_label 'maybe'",
        None,
    ),
    ("xnli-utf8", xnli, "xnli.test.tsv", XNLI_HEADER.encode() + b"en\t\xff\n", ": invalid", None),
    (
        "xnli-hf-columns",
        xnli,
        "validation.parquet",
        parquet([{"premise": "a", "label": 0}]),
        ": missing columns hypothesis",
        None,
    ),
    (
        "xnli-hf-label",
        xnli,
        "validation.jsonl",
        lines({"premise": "a", "hypothesis": "b", "label": 5}),
        ":1: label 5 is not 0, 1 or 2",
        None,
    ),
    ("xquad-no-data", xquad, "q.json", b'{"version": 1}', ": not SQuAD JSON", None),
    (
        "xquad-no-question",
        xquad,
        "q.json",
        squad({"id": "q1", "answers": QA["answers"]}),
        ": data[0].paragraphs[0].qas[0]: field 'question' must be a str",
        None,
    ),
    (
        "xquad-no-answers",
        xquad,
        "q.json",
        squad({**QA, "answers": []}),
        ": data[0].paragraphs[0].qas[0]: question 'q1' has no answers",
        None,
    ),
    (
        "xquad-answer-type",
        xquad,
        "q.json",
        squad({**QA, "answers": [{"text": 1}]}),
        ": data[0].paragraphs[0].qas[0].answers[0]: field 'text' must be a str",
        None,
    ),
    ("xquad-malformed", xquad, "q.json", b'{"data": [', ":1: malformed JSON", None),
]


@pytest.mark.parametrize(
    ("read", "name", "content", "expected", "skips"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_one_named_line(tmp_path, monkeypatch, read, name, content, expected, skips):
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 200)
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    with pytest.raises(UserError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path}{expected}"), message
    assert "\n" not in message and "Traceback" not in message
    if skips is not None:
        skipped = sources.SkipCounter()
        read(path, skip_bad=True, skipped=skipped)
        assert skipped.total == skips


# --- the eval command -------------------------------------------------------------------------


@pytest.fixture()
def data_dir(tmp_path):
    folder = tmp_path / "data"
    (folder / "xcopa" / "sw").mkdir(parents=True)
    (folder / "xcopa" / "sw" / "val.sw.jsonl").write_bytes(lines(XCOPA))
    (folder / "xquad").mkdir()
    (folder / "xquad" / "xquad.en.json").write_bytes(squad({"id": "q1", "question": "Who?"}))
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_config.json").write_text("{}")
    return folder


EVAL_CASES = [
    ("bad-mesh", ["--benchmarks=xcopa", "--languages=sw", "--mesh_shape=1,x"], "--mesh_shape"),
    ("unknown-benchmark", ["--benchmarks=copa", "--languages=sw"], "unknown benchmark 'copa'"),
    ("unknown-language", ["--benchmarks=xcopa", "--languages=xx"], "unknown language code 'xx'"),
    (
        "unsupported-language",
        ["--benchmarks=xcopa", "--languages=fi"],
        "xcopa has no prompt for fi",
    ),
    ("missing-data-dir", ["--languages=sw", "--data_dir={tmp}/nowhere"], "data folder"),
    ("missing-files", ["--benchmarks=xcopa", "--languages=et"], "xcopa et: none of"),
    ("missing-split", ["--benchmarks=xcopa", "--languages=sw", "--split=test"], "no split 'test'"),
    (
        "bad-data-file",
        ["--benchmarks=xquad", "--languages=en", "--split=test"],
        "xquad.en.json: data[0]",
    ),
    (
        "missing-checkpoint",
        ["--benchmarks=xcopa", "--languages=sw", "--checkpoint_path={tmp}/nope"],
        "nope does not exist",
    ),
    (
        "missing-checkpoint-step",
        ["--benchmarks=xcopa", "--languages=sw", "--checkpoint_path={tmp}/run/checkpoint_7"],
        "checkpoint_7 does not exist",
    ),
]


@pytest.mark.parametrize(
    ("args", "expected"), [c[1:] for c in EVAL_CASES], ids=[c[0] for c in EVAL_CASES]
)
def test_eval_bad_input_is_one_error_line(capsys, tmp_path, data_dir, args, expected):
    from polyglot_jax import cli

    argv = [
        "eval",
        f"--checkpoint_path={tmp_path}/run",
        "--split=validation",
        f"--data_dir={data_dir}",
    ]
    argv += [a.format(tmp=tmp_path) for a in args]
    assert cli.main(argv) == 2
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("error: "), stderr
    assert expected in stderr[0] and "Traceback" not in stderr[0]


def test_table_has_enough_rows():
    assert len(CASES) + len(EVAL_CASES) >= 35
    assert len({c[0] for c in CASES}) == len(CASES)
