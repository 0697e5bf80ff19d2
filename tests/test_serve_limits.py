"""``polyglot-jax serve`` against hostile or careless clients: one client never fails another.

Out-of-range numbers, deep or huge bodies, missing keys, clients that leave mid-body or send
half a request: each is that client's own error answer, and the server goes on serving.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import socket
import threading
import time

import httpx
import pytest
from test_serve import hold_worker, make_run, make_served

from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.serving import app, jobs

CHAT = '{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, '
BAD_NUMBERS = {
    "top_k": "1" + "0" * 400,
    "top_p": "NaN",
    "temperature": "Infinity",
    "max_tokens": "1" + "0" * 400,
    "n": "1" + "0" * 400,
    "seed": "9" * 30,
    "frequency_penalty": "-1e400",
    "repetition_penalty": "1e300",
    "presence_penalty": "NaN",
    "max_completion_tokens": "-3",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_tasks, random_run):
    run = make_run(random_run, demo_tasks, tmp_path_factory.mktemp("limits") / "run", 160)
    served = make_served(ChatModel.load(str(run)), max_batch=8)
    served.max_body_bytes = 1_000_000
    with app.ServerThread(served, request_timeout_s=1.0) as thread:
        yield thread


@pytest.fixture
def logs():
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error")]
    ours = logging.getLogger("polyglot_jax")
    levels = [logger.level for logger in (*loggers, ours)]
    for logger in loggers:
        logger.addHandler(handler)
    ours.setLevel(logging.INFO)
    yield records
    for logger, level in zip((*loggers, ours), levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)  # the level of every logger touched, ours included


def test_a_bad_number_is_its_clients_400_while_four_others_answer_200(server):
    batcher = server.served.engine
    url = f"{server.url}/chat/completions"
    good = {"model": "tiny", "messages": [{"role": "user", "content": "Go on."}], "max_tokens": 6}
    gate = hold_worker(batcher)  # the four requests wait in the engine while the bad ones come
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            four = [pool.submit(httpx.post, url, json=good, timeout=120) for _ in range(4)]
            while batcher.queued < 4:
                threading.Event().wait(0.01)
            for field, value in BAD_NUMBERS.items():
                reply = httpx.post(
                    url, content=CHAT.replace('"max_tokens": 2, ', "") + f'"{field}": {value}}}'
                )
                assert reply.status_code == 400, (field, reply.text)
                assert reply.json()["error"]["param"] == field, reply.text
            for field in ("top_k", "logprobs", "best_of"):
                body = '{"model": "tiny", "prompt": "hi", ' + f'"{field}": {BAD_NUMBERS["top_k"]}}}'
                reply = httpx.post(f"{server.url}/completions", content=body, timeout=30)
                assert reply.status_code == 400 and reply.json()["error"]["param"] == field
            gate.set()
            assert [f.result().status_code for f in four] == [200] * 4
    finally:
        gate.set()


def test_the_engine_refuses_a_job_out_of_range_and_goes_on(server):
    batcher = server.served.engine
    bad = jobs.Job([[5, 6]], [4], seeds=[0])
    bad.sampling = bad.sampling.__class__(temperature=1.0, top_k=10**400)
    with pytest.raises(jobs.InvalidJobError, match="top_k"):
        batcher.submit(bad)
    for job in (jobs.Job([[5, 10**20]], [4], seeds=[0]), jobs.Job([[5]], [4], seeds=[2**40])):
        with pytest.raises(jobs.InvalidJobError):
            batcher.submit(job)
    fine = jobs.Job([[5, 6]], [4], seeds=[0])
    batcher.submit(fine)
    assert fine.future.result(timeout=60)


def test_deep_json_and_over_long_integers_are_400(server):
    deep = "[" * 100_000 + "]" * 100_000
    reply = httpx.post(f"{server.url}/chat/completions", content=deep, timeout=30)
    assert reply.status_code == 400 and "nested too deeply" in reply.text, reply.text
    huge = '{"prompt": "hi", "seed": ' + "9" * 5000 + "}"
    reply = httpx.post(f"{server.url}/completions", content=huge, timeout=30)
    assert reply.status_code == 400 and "not valid JSON" in reply.text, reply.text


def test_a_body_over_the_limit_is_413_declared_or_streamed(server):
    body = CHAT + '"stop": "' + "x" * 1_200_000 + '"}'
    reply = httpx.post(f"{server.url}/chat/completions", content=body, timeout=30)
    assert reply.status_code == 413 and "1000000 bytes" in reply.text
    chunks = (body[i : i + 100_000].encode() for i in range(0, len(body), 100_000))  # chunked
    reply = httpx.post(f"{server.url}/chat/completions", content=chunks, timeout=30)
    assert reply.status_code == 413 and "--max_body_bytes" in reply.text


def test_a_slow_tokenization_does_not_hold_up_health(server, monkeypatch):
    vocabulary = server.served.vocabulary
    real = vocabulary.encode

    def slow(text):
        time.sleep(2.0)
        return real(text)

    monkeypatch.setattr(vocabulary, "encode", slow)
    body = {"model": "tiny", "prompt": "word " * 10_000, "max_tokens": 1}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        long = pool.submit(httpx.post, f"{server.url}/completions", json=body, timeout=60)
        time.sleep(0.3)
        start = time.perf_counter()
        assert httpx.get(server.url.removesuffix("/v1") + "/health", timeout=30).status_code == 200
        assert time.perf_counter() - start < 1.0
        assert long.result().status_code == 400  # over the context


@pytest.mark.parametrize(
    ("extra", "words"),
    [("", "and no max_tokens was sent"), (', "max_tokens": 5', "and max_tokens is 5 (")],
)
def test_a_prompt_over_the_context_says_what_the_client_sent(server, extra, words):
    body = '{"messages": [{"role": "user", "content": "' + "a " * 1000 + '"}]' + extra + "}"
    reply = httpx.post(f"{server.url}/chat/completions", content=body, timeout=30)
    message = reply.json()["error"]["message"]
    assert reply.status_code == 400 and "context length is 160" in message, message
    assert words in message and "-" not in message, message
    assert int(re.search(r"the prompt has (\d+) tokens", message).group(1)) > 160


def test_the_key_is_checked_before_the_body_is_read(server):
    server.served.api_key = "sesame"
    try:
        reply = httpx.post(f"{server.url}/chat/completions", content="{not json", timeout=30)
        assert reply.status_code == 401
        reply = httpx.post(f"{server.url}/completions", content="[" * 100_000, timeout=30)
        assert reply.status_code == 401
    finally:
        server.served.api_key = None


def raw(server, data: bytes) -> socket.socket:
    host, port = server.sock.getsockname()[:2]
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(data)
    return sock


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"


def test_a_client_leaving_mid_body_is_one_log_line(server, logs):
    sock = raw(server, HEAD + b"content-length: 1000\r\n\r\n" + CHAT.encode())
    time.sleep(0.3)
    sock.close()
    time.sleep(0.5)
    lines = [
        r for r in logs if "ClientDisconnect" in r.getMessage() or "before its" in r.getMessage()
    ]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in logs]
    assert not any(r.exc_info for r in logs)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # connects and sends nothing
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n",  # half the headers
        HEAD + b"content-length: 1000\r\n\r\n" + CHAT.encode(),  # half the body
    ],
)
def test_a_half_open_connection_is_closed_after_the_request_timeout(server, data):
    start = time.perf_counter()
    sock = raw(server, data)
    answer = read_all(sock)  # the server closes it: recv returns b""
    sock.close()
    assert 0.9 < time.perf_counter() - start < 5
    if data:
        assert answer.startswith(b"HTTP/1.1 408"), answer
    health = httpx.get(server.url.removesuffix("/v1") + "/health", timeout=10)
    assert health.status_code == 200


def test_a_slow_answer_is_not_cut_by_the_request_timeout(server):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Go."}], "max_tokens": 4}
    gate = hold_worker(server.served.engine)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                httpx.post, f"{server.url}/chat/completions", json=body, timeout=60
            )
            time.sleep(2.0)  # past the 1 s deadline, waiting for the engine
            gate.set()
            assert pending.result().status_code == 200
    finally:
        gate.set()
