"""Bad inputs to ``polyglot-jax judge`` and the infer-output readers: one ``error:`` line each.

Every row runs the real command line (``polyglot_jax.cli.main``) on real files and, where a judge
answers, a real local HTTP server that injects the fault; it must exit 2 with exactly one stderr
line starting with ``error:`` that names the culprit, and no traceback.
"""

import contextlib
import dataclasses
import json
import pathlib
import socket

import pytest

from polyglot_jax import cli
from polyglot_jax.errors import DataError
from polyglot_jax.evaluation import outputs
from polyglot_jax.evaluation.judges import store
from polyglot_jax.testing import mock_server

GOOD = {"id": "0", "lang": "en", "prompt": "What is 2 plus 2?", "response": "Four."}


@pytest.fixture(scope="module")
def server():
    with mock_server.MockChatServer(slow_seconds=1.0) as s:
        yield s


@pytest.fixture(scope="module")
def closed_url():
    """A URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def write(path, lines):
    """``lines`` (records or raw strings) as a JSONL file; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@dataclasses.dataclass
class Case:
    """What a row builds its command line from."""

    tmp: pathlib.Path
    url: str
    closed_url: str
    stack: contextlib.ExitStack

    def file(self, *lines, name="run/infer/x.jsonl"):
        return str(write(self.tmp / name, lines))

    def answers(self, *responses):
        """``--outputs FOLDER`` whose responses make the mock judge misbehave."""
        records = [GOOD | {"id": str(i), "response": r} for i, r in enumerate(responses)]
        write(self.tmp / "run" / "infer" / "x.jsonl", records)
        return ["--outputs", str(self.tmp / "run" / "infer")]

    def judge(self, *flags, url=None):
        judge = f"--judge=openai:mock@{url or self.url}"
        return ["--protocol=single", judge, "--max_retries=0", "--timeout=2", *flags]

    def raw(self, data):
        path = self.tmp / "run" / "infer" / "x.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    def busy_db(self):
        db = self.tmp / "cache.sqlite"
        self.stack.enter_context(store.exclusive(db))
        return str(db)


def row(name, build, marks=()):
    """``build(case) -> (argv after "judge", text the error line must contain)``."""
    return pytest.param(build, id=name, marks=marks)


PAIRWISE = ["--protocol=pairwise", "--judge=openai:mock@http://127.0.0.1:9/v1"]

ROWS = [
    # The infer files.
    row(
        "malformed_json", lambda c: (["--outputs", c.file(GOOD, '{"id": ')], "x.jsonl:2: malformed")
    ),
    row(
        "missing_field",
        lambda c: (["--outputs", c.file({"id": "0", "lang": "en"})], "x.jsonl:1: missing field"),
    ),
    row("not_an_object", lambda c: (["--outputs", c.file("[1, 2]")], "x.jsonl:1: expected a JSON")),
    row("empty_file", lambda c: (["--outputs", c.file()], "x.jsonl (empty files)")),
    row("blank_lines_only", lambda c: (["--outputs", c.file("", "  ")], "x.jsonl (empty files)")),
    row("folder_without_jsonl", lambda c: (["--outputs", str(c.tmp)], str(c.tmp))),
    row("missing_path", lambda c: (["--outputs", str(c.tmp / "nope")], str(c.tmp / "nope"))),
    row(
        "unknown_language",
        lambda c: (["--outputs", c.file(GOOD | {"lang": "xx"})], "x.jsonl:1: unknown language"),
    ),
    row(
        "language_name_not_code",
        lambda c: (["--outputs", c.file(GOOD, GOOD | {"lang": "english"})], "x.jsonl:2: unknown"),
    ),
    row("language_number", lambda c: (["--outputs", c.file(GOOD | {"lang": 5})], "field 'lang'")),
    row(
        "response_null", lambda c: (["--outputs", c.file(GOOD | {"response": None})], "'response'")
    ),
    row("sample_a_string", lambda c: (["--outputs", c.file(GOOD | {"sample": "1"})], "'sample'")),
    row("not_utf8", lambda c: (["--outputs", c.raw(b'{"id": "\xff"}\n')], "x.jsonl:1: invalid")),
    # Flags.
    row("no_outputs_flag", lambda c: (["--protocol=single"], "--outputs")),
    row("unknown_flag", lambda c: ([*c.answers("x"), "--frobnicate"], "--frobnicate")),
    row("bad_protocol", lambda c: ([*c.answers("x"), "--protocol=elo"], "--protocol")),
    row("missing_judge", lambda c: ([*c.answers("x"), "--protocol=single"], "--judge")),
    row("judge_spec", lambda c: ([*c.answers("x"), *c.judge(), "--judge=claude"], "'claude'")),
    row(
        "empty_openai_spec",
        lambda c: ([*c.answers("x"), *c.judge(), "--judge=openai:"], "'openai:'"),
    ),
    row(
        "empty_model",
        lambda c: ([*c.answers("x"), "--protocol=single", "--judge=openai:@http://h"], "model"),
    ),
    row(
        "empty_local_spec", lambda c: ([*c.answers("x"), *c.judge(), "--judge=local:"], "'local:'")
    ),
    row(
        "local_run_missing",
        lambda c: ([*c.answers("x"), *c.judge(), f"--judge=local:{c.tmp}/no"], f"{c.tmp}/no"),
    ),
    row("base_url_ftp", lambda c: ([*c.answers("x"), *c.judge(url="ftp://h/v1")], "ftp://h/v1")),
    row(
        "base_url_port",
        lambda c: ([*c.answers("x"), *c.judge(url="http://u:pw@h:port?k=s")], "'http://h:port'"),
    ),
    row(
        "concurrency_0", lambda c: ([*c.answers("x"), *c.judge("--concurrency=0")], "--concurrency")
    ),
    row(
        "concurrency_neg",
        lambda c: ([*c.answers("x"), *c.judge("--concurrency=-3")], "--concurrency"),
    ),
    row(
        "concurrency_nan",
        lambda c: ([*c.answers("x"), *c.judge("--concurrency=lots")], "--concurrency"),
    ),
    row("timeout_0", lambda c: ([*c.answers("x"), *c.judge("--timeout=0")], "--timeout")),
    row(
        "retries_neg", lambda c: ([*c.answers("x"), *c.judge("--max_retries=-1")], "--max_retries")
    ),
    row(
        "unknown_candidate",
        lambda c: (
            [*c.answers("x"), "--languages=en,xx"],
            "--languages: unknown language code 'xx'",
        ),
    ),
    row(
        "output_dir_is_a_file",
        lambda c: (
            [*c.answers("x"), *c.judge(), "--output_dir", c.file(name="out_file")],
            "out_file",
        ),
    ),
    row(
        "db_is_a_folder",
        lambda c: ([*c.answers("x"), *c.judge(), "--db", str(c.tmp)], f"{c.tmp}: not a usable"),
    ),
    row(
        "db_not_sqlite",
        lambda c: ([*c.answers("x"), *c.judge(), "--db", c.file("x" * 999, name="c.db")], "c.db"),
    ),
    row("busy_cache", lambda c: ([*c.answers("x"), *c.judge(), "--db", c.busy_db()], "in use")),
    # Pairwise baselines.
    row("pairwise_without_baseline", lambda c: ([*c.answers("x"), *PAIRWISE], "--baseline")),
    row(
        "baseline_lacks_prompts",
        lambda c: (
            [*c.answers("x", "y"), *PAIRWISE, "--baseline", c.file(GOOD, name="base/b.jsonl")],
            "en/1",
        ),
    ),
    row(
        "baseline_missing",
        lambda c: (
            [*c.answers("x"), *PAIRWISE, "--baseline", str(c.tmp / "nowhere")],
            f"--baseline {c.tmp / 'nowhere'}: no such file",
        ),
    ),
    row(
        "baseline_malformed",
        lambda c: (
            [*c.answers("x"), *PAIRWISE, "--baseline", c.file("{oops", name="base/b.jsonl")],
            "b.jsonl:1: malformed",
        ),
    ),
    # A judge server that never gives a usable answer.
    row(
        "http_400",
        lambda c: ([*c.answers("FAULT400", "FAULT400"), *c.judge()], "failed: HTTP 400 x2"),
    ),
    row("http_401", lambda c: ([*c.answers("FAULT401"), *c.judge()], "HTTP 401 x1")),
    row("http_403", lambda c: ([*c.answers("FAULT403"), *c.judge()], "HTTP 403 x1")),
    row("http_404", lambda c: ([*c.answers("FAULT404"), *c.judge()], "HTTP 404 x1")),
    row(
        "http_500_always",
        lambda c: ([*c.answers("FAULTALWAYS"), *c.judge("--max_retries=1")], "HTTP 500 x1"),
    ),
    row("not_json", lambda c: ([*c.answers("FAULTJUNKEVER"), *c.judge()], "malformed response")),
    row("empty_choices", lambda c: ([*c.answers("FAULTEMPTY"), *c.judge()], "(no choices) x1")),
    row("timeout", lambda c: ([*c.answers("FAULTHANG"), *c.judge("--timeout=0.2")], "timeout x1")),
    row(
        "unreachable",
        lambda c: ([*c.answers("x"), *c.judge(url=c.closed_url)], "connection error x1"),
    ),
    row("unparseable", lambda c: ([*c.answers("UNPARSEABLE"), *c.judge()], "invalid verdict x1")),
    row(
        "mixed_failures",
        lambda c: (
            [*c.answers("FAULT401", "UNPARSEABLE"), *c.judge()],
            "HTTP 401 x1, invalid verdict x1",
        ),
    ),
]


@pytest.mark.parametrize("build", ROWS)
def test_bad_input_is_one_error_line(build, tmp_path, server, closed_url, capsys):
    with contextlib.ExitStack() as stack:
        argv, culprit = build(Case(tmp_path, server.base_url, closed_url, stack))
        code = cli.main(["judge", *argv])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and culprit in errors[0], err


@pytest.mark.parametrize("code", ["xx", "english", "und"])
def test_an_unknown_language_code_names_file_line_and_code(tmp_path, code):
    path = write(tmp_path / "x.jsonl", [GOOD, GOOD | {"lang": code}])
    with pytest.raises(DataError, match=f"{path}:2: unknown language code '{code}'"):
        outputs.read_outputs(path)
