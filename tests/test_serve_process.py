"""``polyglot-jax serve`` as a process: its address, draining on SIGTERM, one-line errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from test_serve import make_run

from polyglot_jax import cli


@pytest.fixture(scope="module")
def run(tmp_path_factory, demo_tasks, random_run):
    path = tmp_path_factory.mktemp("serve_process") / "run"
    return make_run(random_run, demo_tasks, path, max_length=1024)


def serve(*args: str) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "polyglot_jax.cli", "serve", "--port", "0", *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_sigterm_answers_the_request_in_flight_then_exits(run):
    process = serve("--checkpoint_path", str(run), "--served_model_name", "tiny")
    try:
        line = process.stdout.readline()
        url = re.search(r"on (http://\S+)", line).group(1)
        body = {
            "model": "tiny",
            "messages": [{"role": "user", "content": "Tell me everything."}],
            "temperature": 0,
            "max_tokens": 900,
            "stream": True,
        }
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as reply:
            lines = reply.iter_lines()
            first = next(line for line in lines if line.startswith("data:"))
            assert '"role": "assistant"' in first
            process.send_signal(signal.SIGTERM)  # mid-answer
            rest = [line for line in lines if line.startswith("data:")]
        assert rest[-1] == "data: [DONE]"
        assert '"finish_reason": "length"' in rest[-2]  # all 900 tokens were sent
        assert process.wait(timeout=60) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/models", timeout=5)
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--checkpoint_path", "/nonexistent/run"], "/nonexistent/run"),
        (["--checkpoint_path", "RUN", "--max_batch", "0"], "--max_batch"),
        (["--checkpoint_path", "RUN", "--mesh_shape", "1,2"], "--mesh_shape"),
        (["--checkpoint_path", "RUN", "--port", "70000"], "--port"),
        (["--checkpoint_path", "RUN", "--port", "BUSY"], "in use"),
        (["--checkpoint_path", "RUN", "--mixture", "nope"], "nope"),
        (["--checkpoint_path", "RUN", "--max_model_len", "100000"], "--max_model_len 100000"),
        (["--checkpoint_path", "RUN", "--max_model_len", "100000"], "model's 1024 positions"),
        (["--checkpoint_path", "RUN", "--request_timeout", "0"], "--request_timeout"),
        (["--checkpoint_path", "RUN", "--max_body_bytes", "0"], "--max_body_bytes"),
    ],
)
def test_bad_settings_are_one_line_errors(run, args, words, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        argv = [{"RUN": str(run), "BUSY": port}.get(a, a) for a in args]
        assert cli.main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
