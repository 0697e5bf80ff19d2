"""Bad inputs to ``polyglot-jax translate``: one ``error:`` line each, exit 2, no traceback.

Every row runs the real command line on real files and, where a backend answers, a real local
server (chat or Google v2) that injects the fault; the error line must name the culprit.
"""

import contextlib
import dataclasses
import json
import pathlib

import pytest

from polyglot_jax import cli
from polyglot_jax.data import translate_cache
from polyglot_jax.testing import mock_server, mock_translate

KEY = "bad-inputs-key"
GOOD = {
    "id": "0",
    "lang": "en",
    "messages": [{"role": "user", "content": "Please tell me a long story about a brave knight."}],
}


@pytest.fixture(scope="module")
def servers():
    with (
        mock_server.MockChatServer() as chat,
        mock_translate.MockTranslateServer(api_key=KEY) as google,
    ):
        yield chat, google


@dataclasses.dataclass
class Case:
    tmp: pathlib.Path
    chat: str
    google: str
    stack: contextlib.ExitStack

    def file(self, *lines, name="in.en.jsonl"):
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
        return str(path)

    def run(self, *flags, backend=None, lines=(GOOD,)):
        """A complete command line for ``lines``, with ``flags`` appended (the last one wins)."""
        return [
            *("--input", self.file(*lines), "--languages=de", "--max_retries=0"),
            *("--backend", backend or f"openai:mock@{self.chat}"),
            *("--output_dir", str(self.tmp / "out"), "--no_progress", *flags),
        ]

    def says(self, *texts, backend=None):
        """Examples whose user turns carry ``texts`` (fault words)."""
        lines = [
            GOOD | {"id": str(i), "messages": [{"role": "user", "content": f"{GOOD_TEXT} {t}"}]}
            for i, t in enumerate(texts)
        ]
        return self.run(backend=backend, lines=lines)

    def busy_db(self):
        db = self.tmp / "busy.sqlite"
        self.stack.enter_context(translate_cache.exclusive(db))
        return str(db)


GOOD_TEXT = GOOD["messages"][0]["content"]


def row(name, build):
    """``build(case) -> (argv after "translate", text the error line must contain)``."""
    return pytest.param(build, id=name)


ROWS = [
    # Input files.
    row("missing_input", lambda c: ([*c.run(), "--input", str(c.tmp / "no.jsonl")], "no.jsonl")),
    row("malformed_jsonl", lambda c: (c.run(lines=(GOOD, '{"id": ')), "in.en.jsonl:2: malformed")),
    row("not_an_object", lambda c: (c.run(lines=("[1]",)), "in.en.jsonl:1: expected a JSON")),
    row("empty_input", lambda c: (c.run(lines=("",)), "no examples")),
    row(
        "bad_role",
        lambda c: (c.run(lines=(GOOD | {"messages": [{"role": "bot", "content": "x"}]},)), "'bot'"),
    ),
    row("unknown_source_lang", lambda c: (c.run(lines=(GOOD | {"lang": "xx"},)), "'xx'")),
    row("duplicate_ids", lambda c: (c.run(lines=(GOOD, GOOD)), "id '0' appears more than once")),
    row("unknown_format", lambda c: (c.run("--format=xml"), "'xml'")),
    # Flags.
    row(
        "unknown_target",
        lambda c: (c.run("--languages=de,xx"), "--languages: unknown language code 'xx'"),
    ),
    row("no_target", lambda c: (c.run("--languages=,"), "--languages")),
    row("missing_backend", lambda c: (c.run()[:4] + c.run()[6:], "--backend")),
    row("backend_spec", lambda c: (c.run(backend="claude"), "'claude'")),
    row(
        "backend_empty_model", lambda c: (c.run(backend="openai:@http://h"), "model name is empty")
    ),
    row("google_model", lambda c: (c.run(backend="google:turbo"), "nmt and base")),
    row("base_url_ftp", lambda c: (c.run(backend="openai:m@ftp://h/v1"), "ftp://h/v1")),
    row("base_url_port", lambda c: (c.run(backend="google@http://u:pw@h:port"), "'http://h:port'")),
    row("local_run_missing", lambda c: (c.run(backend=f"local:{c.tmp}/no_run"), f"{c.tmp}/no_run")),
    row("only_value", lambda c: (c.run("--only=system"), "--only 'system'")),
    row("concurrency_0", lambda c: (c.run("--concurrency=0"), "--concurrency")),
    row("concurrency_nan", lambda c: (c.run("--concurrency=lots"), "--concurrency")),
    row("timeout_0", lambda c: (c.run("--timeout=0"), "--timeout")),
    row("retries_neg", lambda c: (c.run("--max_retries=-1"), "--max_retries")),
    row("length_ratio", lambda c: (c.run("--max_length_ratio=0.5"), "--max_length_ratio")),
    row("unknown_flag", lambda c: (c.run("--frobnicate"), "--frobnicate")),
    # The cache.
    row("busy_cache", lambda c: (c.run("--db", c.busy_db()), "in use by another translate")),
    row("db_not_sqlite", lambda c: (c.run("--db", c.file("x" * 999, name="c.db")), "c.db")),
    row("db_is_a_folder", lambda c: (c.run("--db", str(c.tmp)), f"{c.tmp}: not a usable")),
    row("output_dir_is_a_file", lambda c: ([*c.run(), "--output_dir", c.file(name="f")], "f")),
    # Backends that never give a usable answer.
    row(
        "chat_401",
        lambda c: (c.says("FAULT401 a", "FAULT401 b"), "2 messages rejected (HTTP 401 x2)"),
    ),
    row("chat_500_always", lambda c: (c.says("FAULTALWAYS"), "HTTP 500 x1")),
    row("chat_not_json", lambda c: (c.says("FAULTJUNKEVER"), "malformed response")),
    row("chat_wrong_language", lambda c: (c.says("FAULTWRONGLANGEVER"), "wrong language (en) x1")),
    row("chat_lost_tokens", lambda c: (c.says("{name} FAULTLOSETOKENS"), "protected span lost")),
    row("google_401", lambda c: (c.says("FAULT401", backend=f"google@{c.google}"), "HTTP 401 x1")),
    row("google_bad_key", lambda c: (c.says("x", backend=f"google:nmt@{c.google}"), "HTTP 400")),
    row(
        "google_no_key",
        lambda c: (c.run(backend="google@http://127.0.0.1:9"), "GOOGLE_TRANSLATE_API_KEY"),
    ),
    row(
        "google_empty",
        lambda c: (c.says("FAULTEMPTY", backend=f"google@{c.google}"), "no translatedText"),
    ),
]


@pytest.mark.parametrize("build", ROWS)
def test_bad_input_is_one_error_line(build, request, tmp_path, servers, monkeypatch, capsys):
    chat, google = servers
    name = request.node.callspec.id
    if name == "google_bad_key":
        monkeypatch.setenv("GOOGLE_TRANSLATE_API_KEY", "not-the-key")
    elif name == "google_no_key":
        monkeypatch.delenv("GOOGLE_TRANSLATE_API_KEY", raising=False)
    else:
        monkeypatch.setenv("GOOGLE_TRANSLATE_API_KEY", KEY)
    with contextlib.ExitStack() as stack:
        argv, culprit = build(Case(tmp_path, chat.base_url, google.base_url, stack))
        code = cli.main(["translate", *argv])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and culprit in errors[0], err
