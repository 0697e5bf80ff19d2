"""The judge command: exit status, failure counts, credentials, locking and the local judge."""

import json

import pytest

from polyglot_jax.clients import backends
from polyglot_jax.testing import mock_server

SECRET = "sk-test-0123456789-secret"


@pytest.fixture()
def server():
    with mock_server.MockChatServer(slow_seconds=3.0) as s:
        yield s


def test_judge_cli_pairwise_into_the_report(server, tmp_path, monkeypatch, capsys):
    from polyglot_jax.cli import judge
    from polyglot_jax.evaluation import report

    def outputs(run, answers, samples=1):
        folder = tmp_path / run / "infer"
        folder.mkdir(parents=True)
        prompt = "Paljonko on 2 plus 2?"
        (folder / "x.jsonl").write_text(
            "".join(
                json.dumps(
                    {"id": str(i), "lang": "fi", "prompt": prompt, "response": a, "sample": j}
                )
                + "\n"
                for i, a in enumerate(answers)
                for j in range(samples)
            )
        )
        return folder

    # Two samples per prompt: judged as separate items against the baseline's first sample.
    model = outputs(
        "pinch", ["Kaksi plus kaksi on neljä.", "Neljä.", "Hyvä kysymys, neljä."], samples=2
    )
    base = outputs("mono", ["Neljä.", "Kaksi plus kaksi on neljä.", "Neljä."])
    argv = [
        "--outputs",
        str(model),
        "--protocol=pairwise",
        f"--judge=openai:mock@{server.base_url}",
        "--baseline",
        str(base),
        "--concurrency=2",
    ]
    assert judge.main(argv) == 0
    assert "2/3 judged" not in capsys.readouterr().out
    requests = server.requests
    assert judge.main(argv) == 0 and server.requests == requests  # cached: no new request
    rows = [
        json.loads(x)
        for x in (tmp_path / "pinch" / "judge" / "pairwise.jsonl").read_text().splitlines()
    ]
    assert [r["score"] for r in rows] == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    assert len({r["item_id"] for r in rows}) == 6
    path = report.write_report([tmp_path / "pinch" / "judge"], tmp_path / "report")
    text = path.read_text()
    assert "## Pairwise win rate vs baseline (%)" in text and "| pinch | 66.7 |" in text
    assert (tmp_path / "report" / "pairwise_score.png").exists()


def write_outputs(folder, responses, lang="en", prompt="What is 2 plus 2?"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "x.jsonl").write_text(
        "".join(
            json.dumps({"id": str(i), "lang": lang, "prompt": prompt, "response": r}) + "\n"
            for i, r in enumerate(responses)
        )
    )
    return folder


def judge_argv(folder, server_url, *flags):
    return [
        "judge",
        "--outputs",
        str(folder),
        "--protocol=single",
        f"--judge=openai:mock@{server_url}",
        "--max_retries=3",
        "--timeout=2",
        *flags,
    ]


def test_a_401_is_not_retried_and_the_command_fails(server, tmp_path, capsys):
    from polyglot_jax import cli

    folder = write_outputs(tmp_path / "run" / "infer", ["FAULT401 a", "FAULT401 b", "FAULT401 c"])
    assert cli.main(judge_argv(folder, server.base_url)) == 2
    assert server.requests == 3  # one request per item: a 401 is final
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith("error: all 3 judge requests failed: HTTP 401 x3")


def test_partial_failures_are_counted_per_reason(server, tmp_path, capsys):
    from polyglot_jax import cli

    responses = ["fine", "FAULTALWAYS", "FAULTALWAYS", "UNPARSEABLE"]
    folder = write_outputs(tmp_path / "run" / "infer", responses)
    assert cli.main(judge_argv(folder, server.base_url, "--max_retries=0")) == 0
    captured = capsys.readouterr()
    assert "1/4 judged" in captured.out
    assert "warning: 3 of 4 items not judged: HTTP 500 x2, invalid verdict x1" in captured.err


def test_url_credentials_never_reach_logs_cache_or_outputs(server, tmp_path, caplog, capsys):
    import logging

    from polyglot_jax.cli import judge

    caplog.set_level(logging.DEBUG)
    host = server.base_url.split("//")[1]
    url = f"http://judgeuser:URLSECRET@{host}?key=QUERYSECRET"
    folder = write_outputs(tmp_path / "run" / "infer", ["fine", "FAULT500 once", "FAULTALWAYS"])
    argv = [*judge_argv(folder, url)[1:], "--max_retries=1"]
    assert judge.main(argv) == 0
    assert "/v1/chat/completions?key=QUERYSECRET" in server.paths  # the query still works
    assert "retry 1" in caplog.text  # debug lines were captured
    out = capsys.readouterr()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "run" / "judge").iterdir())
    for secret in ("URLSECRET", "QUERYSECRET", "judgeuser"):
        assert secret not in caplog.text + out.out + out.err
        assert secret.encode() not in stored
    assert backends.from_spec(f"openai:m@{url}").server == server.base_url


def test_a_second_judge_process_on_the_same_cache_stops_at_once(tmp_path):
    import subprocess
    import sys
    import threading
    import time

    folder = write_outputs(tmp_path / "run" / "infer", ["a", "b", "c"])
    gate = threading.Event()
    with mock_server.MockChatServer(gate=gate) as slow:
        flags = [*judge_argv(folder, slow.base_url)[1:], "--timeout=120"]  # held, not timed out
        argv = [sys.executable, "-m", "polyglot_jax.judge", *flags]
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while slow.requests < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.requests == 3  # every request is in flight, held by the gate
            second = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        finally:
            gate.set()
            _, first_err = first.communicate(timeout=60)
    assert first.returncode == 0, first_err
    assert slow.requests == 3  # the second process sent nothing
    assert second.returncode == 2
    error = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    db = tmp_path / "run" / "judge" / "judgments.sqlite"
    assert error == [
        f"error: {db} is in use by another judge process (pid {first.pid}); wait for it or "
        "use another --db"
    ]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, random_run):
    """A run directory with random weights, a demo vocabulary and no recorded mixture."""
    from polyglot_jax.data import vocab
    from polyglot_jax.models import DecoderConfig

    run = tmp_path_factory.mktemp("tiny_run")
    config = DecoderConfig(
        vocab_size=vocab.DEMO_VOCAB_SIZE,
        embed_dim=32,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
        mlp_dim=64,
        max_length=64,
    )
    return random_run(run, config, {"template": None, "loss_on": "assistant"})


def test_local_judge_loads_the_runs_vocabulary(tiny_run, tmp_path, capsys):
    import sqlite3

    from polyglot_jax import cli

    folder = write_outputs(tmp_path / "out" / "infer", ["Four.", "Hello there."])
    argv = ["judge", "--outputs", str(folder), "--protocol=single", f"--judge=local:{tiny_run}"]
    assert cli.main(argv) == 2  # the run records no mixture and none was given
    assert "records neither a tokenizer/ folder nor a registered mixture" in capsys.readouterr().err

    # A random model answers, but not with a verdict: every item is judged invalid.
    assert cli.main([*argv, "--judge_mixture=demo_pinch"]) == 2
    err = capsys.readouterr().err
    assert "error: all 2 judge requests failed: invalid verdict x2" in err
    assert "Traceback" not in err
    with sqlite3.connect(tmp_path / "out" / "judge" / "judgments.sqlite") as db:
        rows = db.execute("SELECT judge, status, raw FROM judgments").fetchall()
    assert [(judge, status) for judge, status, _ in rows] == [(f"local:{tiny_run}", "invalid")] * 2
    assert all(raw for _, _, raw in rows)

    # A run that records its mixture needs no flag.
    chat_format = {"template": None, "loss_on": "assistant", "mixture_or_task_name": "demo_pinch"}
    (tiny_run / "chat_format.json").write_text(json.dumps(chat_format))
    assert cli.main([*argv, "--output_dir", str(tmp_path / "recorded")]) == 2
    assert "invalid verdict x2" in capsys.readouterr().err
