"""``polyglot-jax translate`` against local fake servers of both protocols (chat and Google v2).

The fake servers "translate" into a fixed sentence of the target language cut to the source's
length, keeping the ``⟦n⟧`` tokens where they were, so lingua's verdict, the length ratio and
the restored spans are real checks; fault words in a text make them misbehave.
"""

import json
import logging
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from polyglot_jax import cli
from polyglot_jax.clients import backends
from polyglot_jax.data import translate, translate_backends
from polyglot_jax.data.translate_text import CheckError, Checks, mask, unmask
from polyglot_jax.evaluation import langid
from polyglot_jax.testing import mock_server, mock_translate

SECRET = "sk-test-DO-NOT-LEAK-4f1c9"
CODE = "```python\ndef greet(name):\n    return f'Hello {name}'\n```"
SPANS = [CODE, "`pip install polyglot`", "https://example.com/docs?page=2", "{user_name}"]
REPO = pathlib.Path(__file__).resolve().parents[1]
LONG = "Please explain in a few friendly sentences what the following program does for us"


def example(i, user, assistant=None, lang="en"):
    messages = [{"role": "system", "content": "You are a helpful and very patient assistant."}]
    messages.append({"role": "user", "content": user})
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return {"id": f"ex{i}", "lang": lang, "messages": messages}


def write_examples(path, examples):
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    return path


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def chat():
    with mock_server.MockChatServer(slow_seconds=1.0) as server:
        yield server


@pytest.fixture(scope="module")
def google():
    with mock_translate.MockTranslateServer(slow_seconds=1.0, api_key=SECRET) as server:
        yield server


@pytest.fixture(params=["chat", "google"])
def fast_translator(request, chat, google, monkeypatch):
    """``(translator with a short backoff and timeout, its server)`` for either protocol."""
    if request.param == "chat":
        make = [
            backends.OpenAIBackend(
                "mock", chat.base_url, concurrency=4, timeout=0.5, max_retries=2, backoff=0.01
            )
            for _ in range(2)
        ]
        return translate_backends.ChatTranslator("openai", "mock", *make), chat
    monkeypatch.setenv("GOOGLE_TRANSLATE_API_KEY", SECRET)
    translator = translate_backends.GoogleTranslator(
        None, google.base_url, concurrency=4, timeout=0.5, max_retries=2, backoff=0.01
    )
    return translator, google


def test_mask_and_unmask_round_trip():
    text = f"Run {SPANS[1]} then read {SPANS[2]}, dear {SPANS[3]}:\n{CODE}\nand ⟦7⟧ stays."
    masked = mask(text)
    assert masked.spans == (SPANS[1], SPANS[2], SPANS[3], CODE, "⟦7⟧")
    assert "https" not in masked.text and "def greet" not in masked.text
    assert unmask(masked.text, masked) == text
    with pytest.raises(CheckError, match="protected span lost"):
        unmask(masked.text.replace("⟦2⟧", ""), masked)
    with pytest.raises(CheckError, match="repeated"):
        unmask(masked.text + "⟦0⟧", masked)


def test_checks_reject_wrong_language_and_length():
    checks = Checks(langid.detect, max_length_ratio=3.0)
    source = mask("The weather is very pleasant today and we walk in the park with ⟦0⟧ friends.")
    german = "Das Wetter ist heute sehr schön und wir gehen mit ⟦0⟧ Freunden im Park."
    assert checks.apply(german, source, "de").startswith("Das Wetter")
    with pytest.raises(CheckError, match=r"wrong language \(de\)"):
        checks.apply(german, source, "fi")
    with pytest.raises(CheckError, match="length ratio"):
        checks.apply(" ".join([german] * 5).replace("⟦0⟧", "", 4), source, "de")


@pytest.mark.parametrize("backend", ["chat", "google"])
def test_translates_keeps_ids_roles_and_protected_spans_and_caches(
    backend, chat, google, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GOOGLE_TRANSLATE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server = chat if backend == "chat" else google
    spec = f"openai:mock@{chat.base_url}" if backend == "chat" else f"google@{google.base_url}"
    source = [
        example(0, f"{LONG}: {SPANS[0]}", f"It greets {SPANS[3]}; see {SPANS[2]} for more."),
        example(1, f"How do I install it? I tried {SPANS[1]} already today.", "Use pip."),
        example(2, f"{LONG}: {SPANS[0]}", "Only code here:"),  # repeats ex0's user turn
        example(3, "Wie spät ist es?", "Es ist drei Uhr.", lang="de"),  # already German
    ]
    path = write_examples(tmp_path / "chat.en.jsonl", source)
    argv = ["translate", "--input", str(path), "--languages", "de,ru,zh", "--backend", spec]
    argv += ["--output_dir", str(tmp_path / "out"), "--no_progress"]
    before = server.requests
    assert cli.main(argv) == 0
    first = server.requests - before
    # Distinct messages: de 6 (ex2's user turn is ex0's, ex3 is German already); ru and zh 9
    # each (ex3's system prompt has another source language, so another key).
    assert first == 6 + 9 + 9
    for lang in ("de", "ru", "zh"):
        out = read(tmp_path / "out" / f"chat.{lang}.jsonl")
        assert [r["id"] for r in out] == [e["id"] for e in source]
        for record, original in zip(out, source, strict=True):
            assert record["lang"] == lang
            assert [m["role"] for m in record["messages"]] == [
                m["role"] for m in original["messages"]
            ]
            if original["lang"] == lang:
                assert record["messages"] == original["messages"]
                continue
            for message, before_msg in zip(record["messages"], original["messages"], strict=True):
                for span in SPANS:
                    assert message["content"].count(span) == before_msg["content"].count(span)
                if len(mask(before_msg["content"]).prose) >= 20:
                    assert message["content"] != before_msg["content"]
                    assert langid.detect([mask(message["content"]).prose]) == [lang]
    before = server.requests
    assert cli.main(argv) == 0
    assert server.requests == before  # everything from the cache
    out = capsys.readouterr().out
    assert "requests sent: 0" in out and "| de |" in out and "| zh |" in out


def test_faults_retried_and_bad_answers_rejected(fast_translator, tmp_path):
    translator, server = fast_translator
    transient = ["FAULT429", "FAULT500", "FAULTSLOW", "FAULTDROP", "FAULTJUNK", "FAULTWRONGLANG"]
    final = ["FAULTWRONGLANGEVER", "FAULTLOSETOKENS", "FAULTVERBOSE", "FAULTALWAYS", "FAULT403"]
    source = [
        example(i, f"{LONG} {fault} with {SPANS[3]} in it.")
        for i, fault in enumerate(transient + final)
    ]
    path = write_examples(tmp_path / "x.jsonl", source)
    result = translate.translate_file(
        path, tmp_path / "out", ["fi"], translator, Checks(langid.detect), progress=False
    )
    out = read(tmp_path / "out" / "x.fi.jsonl")
    assert [r["id"] for r in out] == [f"ex{i}" for i in range(len(transient))]
    stats = result.stats["fi"]
    assert (stats.written, stats.dropped, stats.rejected) == (6, 5, 5)
    assert stats.retried == 4  # FAULTWRONGLANG, ...EVER, LOSETOKENS, VERBOSE failed a check
    reasons = " ".join(result.reasons)
    for reason in ("wrong language (en)", "protected span lost", "length ratio", "HTTP 500"):
        assert reason in reasons, result.reasons
    assert "HTTP 403" in reasons
    # Rejections are final in the cache; failed requests are asked again on the next run.
    before = server.requests
    again = translate.translate_file(
        path, tmp_path / "out", ["fi"], translator, Checks(langid.detect), progress=False
    )
    assert again.stats["fi"].rejected == 5 and again.stats["fi"].cached == 7
    assert server.requests - before == 3 + 1  # FAULTALWAYS 3 attempts, FAULT403 1


@pytest.mark.parametrize("only,kept", [("user", "assistant"), ("assistant", "user")])
def test_only_one_role_leaves_the_others_untouched(only, kept, chat, tmp_path):
    source = [
        example(i, f"{LONG}, number {i}?", f"The answer to number {i} is long.") for i in range(3)
    ]
    path = write_examples(tmp_path / "x.jsonl", source)
    spec = f"openai:mock@{chat.base_url}"
    argv = ["translate", "--input", str(path), "--languages", "es", "--backend", spec]
    assert cli.main([*argv, "--output_dir", str(tmp_path), f"--only={only}", "--no_progress"]) == 0
    for record, original in zip(read(tmp_path / "x.es.jsonl"), source, strict=True):
        for message, before in zip(record["messages"], original["messages"], strict=True):
            if message["role"] == only:
                assert message["content"] != before["content"]
            else:  # the other turn and the system prompt
                assert message == before


@pytest.mark.parametrize("backend", ["chat", "google"])
def test_api_key_never_in_logs_cache_or_outputs(
    backend, chat, google, tmp_path, monkeypatch, capfd
):
    monkeypatch.setenv("GOOGLE_TRANSLATE_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    spec = f"openai:mock@{chat.base_url}" if backend == "chat" else f"google@{google.base_url}"
    path = write_examples(
        tmp_path / "x.jsonl", [example(0, f"{LONG} FAULTDROP."), example(1, f"{LONG} FAULT401")]
    )
    argv = ["translate", "--input", str(path), "--languages", "it", "--db", str(tmp_path / "c.db")]
    argv += ["--backend", spec, "--output_dir", str(tmp_path / "out")]
    assert cli.main(argv) == 0  # the command line's own logging (INFO) and table
    root = logging.getLogger()
    level, _ = root.level, root.setLevel(logging.DEBUG)  # and every debug line of a library run
    try:
        translator = translate_backends.from_spec(spec, max_retries=1)
        translate.translate_file(
            path, tmp_path / "out2", ["sw"], translator, Checks(langid.detect), progress=False
        )
    finally:
        root.setLevel(level)
    if backend == "google":
        assert SECRET in google.keys  # it was sent, in a header
        assert not any(SECRET in r for r in google.raw_requests)  # never in a URL or body
    else:
        assert f"Bearer {SECRET}" in chat.authorization
    captured = capfd.readouterr()
    assert "retry 1 in" in captured.err  # the debug lines were there to be checked
    assert SECRET not in captured.out + captured.err
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file


def test_a_killed_run_restarts_without_resending_finished_messages(tmp_path):
    """A real process, SIGKILLed while half its requests hang, then run again to the end."""
    fast = [example(i, f"{LONG}, question {i}.") for i in range(12)]
    hanging = [example(i, f"{LONG}, question {i} FAULTHANG.") for i in range(12, 24)]
    path = write_examples(tmp_path / "x.jsonl", fast + hanging)
    db = tmp_path / "out" / "translations.sqlite"

    def argv(url):
        return [
            *(sys.executable, "-m", "polyglot_jax.cli", "translate", "--input", str(path)),
            *("--languages=de", f"--backend=openai:mock@{url}", "--concurrency=4"),
            *("--output_dir", str(tmp_path / "out"), "--no_progress"),
        ]

    def finished():
        if not db.exists():
            return set()
        with sqlite3.connect(db) as con:
            return {r[0] for r in con.execute("SELECT source FROM translations WHERE status='ok'")}

    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    with mock_server.MockChatServer(slow_seconds=300) as server:
        process = subprocess.Popen(argv(server.base_url), env=env, cwd=REPO)
        deadline = time.monotonic() + 120
        while len(finished()) < len(fast) + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = finished()
    assert len(done) == len(fast) + 1 and not (tmp_path / "out" / "x.de.jsonl").exists()
    with mock_server.MockChatServer(slow_seconds=0) as server:
        assert cli.main(argv(server.base_url)[3:]) == 0  # the restart, in this process
        assert server.requests == len(hanging)
        assert not [p for p in server.prompts if any(text in p for text in done)]
    assert [r["id"] for r in read(tmp_path / "out" / "x.de.jsonl")] == [
        e["id"] for e in fast + hanging
    ]
