"""``polyglot-jax serve``: the OpenAI client against a real HTTP server on 127.0.0.1.

A tiny random run on the demo vocabulary is served in this process (:class:`ServerThread`);
greedy answers are compared with ``infer`` on the same prompts, echo log-probs with the model
interface's scorer, streams with the non-streamed answers.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading

import httpx
import numpy as np
import openai
import pytest

from polyglot_jax.inference import infer
from polyglot_jax.inference.config import InferConfig
from polyglot_jax.models import DecoderConfig
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.serving import app, engine, jobs, service

LANGUAGES = ["en", "fi"]
MAX_TOKENS = 24


def make_run(random_run, demo_tasks, path, max_length: int):
    """A tiny random run on the demo vocabulary (what ``infer`` and ``serve`` load)."""
    config = DecoderConfig(
        vocab_size=demo_tasks.VOCABULARY.vocab_size,
        embed_dim=32,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
        mlp_dim=64,
        max_length=max_length,
    )
    return random_run(path, config, {"mixture_or_task_name": "demo_uniform"})


@pytest.fixture(scope="module")
def run(tmp_path_factory, demo_tasks, random_run):
    return make_run(random_run, demo_tasks, tmp_path_factory.mktemp("serve") / "run", 160)


@pytest.fixture(scope="module")
def lm(run):
    return ChatModel.load(str(run))


def make_served(lm, **engine_args) -> service.Served:
    batcher = engine.Engine(lm, **engine_args)
    return service.Served(batcher, "tiny", batcher.max_length)


@pytest.fixture(scope="module")
def server(run, lm):
    with app.ServerThread(make_served(lm, max_batch=16)) as thread:
        yield thread


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120)


def test_greedy_answers_equal_infer_under_16_concurrent_clients(run, server, client, tmp_path):
    config = InferConfig(
        str(run),
        "demo_uniform",
        output_dir=str(tmp_path),
        max_new_tokens=MAX_TOKENS,
        languages=LANGUAGES,
        batch_size=7,
    )
    result = infer.infer(config, progress=False)
    expected = [
        json.loads(line)
        for path in result.files
        if path.exists()
        for line in path.read_text().splitlines()
    ]
    assert len(expected) == 20

    def ask(record: dict) -> openai.types.chat.ChatCompletion:
        return client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": record["prompt"]}],
            temperature=0,
            max_tokens=MAX_TOKENS,
        )

    steps_before = server.served.engine.stats["steps"]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, expected))
    for record, answer in zip(expected, answers, strict=True):
        assert answer.choices[0].message.content.strip() == record["response"], record["id"]
        assert answer.usage.completion_tokens == record["num_tokens"]
        reason = {"eos": "stop"}.get(record["finish_reason"], record["finish_reason"])
        assert answer.choices[0].finish_reason == reason
    steps = server.served.engine.stats["steps"] - steps_before
    tokens = sum(answer.usage.completion_tokens for answer in answers)
    assert steps < tokens / 4  # concurrent requests shared decode steps


def test_a_seeded_sample_does_not_depend_on_its_batch(client):
    def ask(seed: int) -> str:
        answer = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "Tell me a story."}],
            temperature=1.0,
            top_p=0.9,
            max_tokens=12,
            seed=seed,
        )
        return answer.choices[0].message.content

    alone = ask(7)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, [7, 1, 2, 7, 3, 4, 7, 5]))
    assert together[0] == together[3] == together[6] == alone
    assert len(set(together)) > 1  # other seeds sample other answers


def test_echo_logprobs_equal_the_scorer(client, lm, demo_tasks):
    vocabulary = demo_tasks.VOCABULARY
    prompt = "The cat sat on the mat because it was warm."
    answer = client.completions.create(
        model="tiny", prompt=prompt, echo=True, max_tokens=0, logprobs=2
    )
    logprobs = answer.choices[0].logprobs
    ids = vocabulary.encode(prompt)  # the demo vocabulary adds no BOS
    tokens, targets = np.asarray([ids[:-1]]), np.asarray([ids[1:]])
    expected = lm.score(tokens, targets, np.ones_like(tokens))[0]
    assert logprobs.token_logprobs[0] is None
    np.testing.assert_allclose(logprobs.token_logprobs[1:], expected, atol=1e-4)
    assert "".join(logprobs.tokens) == vocabulary.decode(ids)
    assert answer.choices[0].text == prompt
    for picked, top in zip(logprobs.token_logprobs[1:], logprobs.top_logprobs[1:], strict=True):
        assert len(top) <= 2 and max(top.values()) >= picked - 1e-6


def test_token_id_prompts_as_lm_evaluation_harness_sends_them(client, lm, demo_tasks):
    vocabulary = demo_tasks.VOCABULARY
    contexts = ["Premise: it rained.", "Premise: the sun shone."]
    batch = [vocabulary.encode(c) + vocabulary.encode(" so the ground was wet") for c in contexts]
    answer = client.completions.create(
        model="tiny", prompt=batch, echo=True, max_tokens=1, logprobs=1, temperature=0
    )
    assert [c.index for c in answer.choices] == [0, 1]
    for ids, choice in zip(batch, answer.choices, strict=True):
        lp = choice.logprobs
        assert len(lp.token_logprobs) == len(ids) + 1  # the prompt and one new token
        expected = lm.score(
            np.asarray([ids[:-1]]), np.asarray([ids[1:]]), np.ones((1, len(ids) - 1))
        )[0]
        np.testing.assert_allclose(lp.token_logprobs[1:-1], expected, atol=1e-4)
        greedy = [
            t == max(top.values())
            for t, top in zip(lp.token_logprobs[1:], lp.top_logprobs[1:], strict=True)
        ]
        assert greedy[-1]  # the generated token is greedy: exactly the top log-prob


@pytest.mark.parametrize("stop", [None, ["e"]])
def test_a_stream_reassembles_to_the_answer(client, stop):
    kwargs = dict(
        model="tiny",
        messages=[{"role": "user", "content": "Write about the sea."}],
        temperature=0,
        max_tokens=20,
        stop=stop,
    )
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    if stop:
        assert "e" not in text and whole.choices[0].finish_reason == "stop"


def test_n_choices_and_models(client):
    answer = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Hi"}],
        n=3,
        temperature=1.0,
        max_tokens=8,
        seed=3,
    )
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert [m.id for m in client.models.list().data] == ["tiny"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("{not json", 400, "not valid JSON"),
        ('{"messages": []}', 400, "messages"),
        (
            '{"messages": [{"role": "user", "content": "hi"}], "temperature": -1}',
            400,
            "temperature",
        ),
        (
            '{"messages": [{"role": "user", "content": "hi"}], "presence_penalty": 1}',
            400,
            "presence",
        ),
        (
            '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 500}',
            400,
            "context length is 160",
        ),
        ('{"messages": [{"role": "user", "content": "hi"}], "model": "gpt-9"}', 404, "gpt-9"),
        ('{"messages": [{"role": "wizard", "content": "hi"}]}', 400, "role"),
        ("[1, 2]", 400, "JSON object"),
    ],
)
def test_bad_requests_get_one_error_naming_the_field(server, body, status, words):
    reply = httpx.post(f"{server.url}/chat/completions", content=body, timeout=30)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"]["message"]


def test_over_long_prompts_and_token_ids_are_refused(server):
    long = {"model": "tiny", "prompt": "word " * 400, "max_tokens": 4}
    reply = httpx.post(f"{server.url}/completions", json=long, timeout=30)
    assert reply.status_code == 400 and "maximum context length is 160" in reply.text
    bad_id = {"model": "tiny", "prompt": [[1, 2, 99999]], "max_tokens": 1}
    reply = httpx.post(f"{server.url}/completions", json=bad_id, timeout=30)
    assert reply.status_code == 400 and "99999" in reply.text


def test_api_key(server):
    server.served.api_key = "sesame"
    try:
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        reply = httpx.post(f"{server.url}/chat/completions", json=body, timeout=30)
        assert reply.status_code == 401
        headers = {"Authorization": "Bearer sesame"}
        reply = httpx.post(f"{server.url}/chat/completions", json=body, headers=headers, timeout=30)
        assert reply.status_code == 200
    finally:
        server.served.api_key = None


def hold_worker(batcher: engine.Engine) -> threading.Event:
    """Keeps the engine's worker busy inside a decode step until the event is set."""
    gate = threading.Event()
    job = jobs.Job([[5, 6]], [4], seeds=[0], on_token=lambda i, t: gate.wait(60))
    batcher.submit(job)
    while batcher.queued:  # until the worker has taken it
        threading.Event().wait(0.01)
    return gate


def test_overload_answers_429_and_a_leaving_client_frees_its_slot(run, lm):
    served = make_served(lm, max_batch=4, max_queue=1)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with app.ServerThread(served) as thread:
        gate = hold_worker(served.engine)
        try:
            with pytest.raises(httpx.ReadTimeout):  # queued, then the client gives up
                httpx.post(f"{thread.url}/chat/completions", json=body, timeout=1.0)
            for _ in range(100):  # the server notices the disconnect and drops the request
                if served.engine.stats["cancelled"]:
                    break
                threading.Event().wait(0.05)
            assert served.engine.stats["cancelled"] == 1 and served.engine.queued == 0

            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                first = pool.submit(
                    httpx.post, f"{thread.url}/chat/completions", json=body, timeout=60
                )
                while not served.engine.queued:
                    threading.Event().wait(0.01)
                refused = httpx.post(f"{thread.url}/chat/completions", json=body, timeout=30)
                assert refused.status_code == 429
                assert refused.headers["Retry-After"] == "1"
                gate.set()
                assert first.result().status_code == 200  # the freed slot served it
        finally:
            gate.set()


def test_the_projects_own_judge_backend_talks_to_the_server(server, client):
    from polyglot_jax.clients import backends

    judge = backends.OpenAIBackend("tiny", server.url, max_tokens=8, max_retries=0)
    conversations = [[{"role": "user", "content": f"Rate answer {i}."}] for i in range(3)]
    done = judge.complete_many(conversations)
    assert all(c.error is None and isinstance(c.text, str) for c in done)
    direct = client.chat.completions.create(
        model="tiny", messages=conversations[1], temperature=0, seed=0, max_tokens=8
    )
    assert done[1].text == direct.choices[0].message.content


def test_a_client_that_leaves_a_stream_frees_its_slot(server):
    batcher = server.served.engine
    cancelled = batcher.stats["cancelled"]
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Go on and on."}],
        "max_tokens": 120,
        "stream": True,
    }
    with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=30) as reply:
        assert reply.status_code == 200
        next(line for line in reply.iter_lines() if line.startswith("data:"))
    # the connection is closed mid-answer: the row stops long before its 120 tokens
    for _ in range(200):
        if batcher.stats["cancelled"] > cancelled and not batcher.running:
            break
        threading.Event().wait(0.05)
    assert batcher.stats["cancelled"] == cancelled + 1 and batcher.running == 0


def test_a_failed_prefill_fails_only_its_request_and_running_rows_go_on(run, lm, monkeypatch):
    served = make_served(lm, max_batch=4)
    batcher = served.engine
    alone = jobs.Job([[5, 6, 7]], [40], seeds=[0])
    batcher.submit(alone)
    expected = alone.future.result(timeout=60)[0].tokens  # greedy: the same in any batch
    real, calls = batcher._prefill, []

    def broken(params, state, slot_ids, prompts, *rest):
        calls.append(np.asarray(prompts)[:, :3].tolist())
        if len(calls) == 1:  # both new requests together: fails after consuming the state
            real(params, state, slot_ids, prompts, *rest)
            raise RuntimeError("device lost")
        if 13 in np.asarray(prompts):  # the bad request's token
            raise RuntimeError("prefill broke")
        return real(params, state, slot_ids, prompts, *rest)

    gate, started = threading.Event(), threading.Event()

    def hold(i, token):  # keeps the first job running until the others are queued
        started.set()
        gate.wait(60)

    running = jobs.Job([[5, 6, 7]], [40], seeds=[0], on_token=hold)
    batcher.submit(running)
    started.wait(60)
    monkeypatch.setattr(batcher, "_prefill", broken)
    failing, fine = jobs.Job([[8, 13]], [4], seeds=[0]), jobs.Job([[8, 9]], [4], seeds=[0])
    batcher.submit(failing)
    batcher.submit(fine)
    gate.set()
    with pytest.raises(RuntimeError, match="prefill broke"):
        failing.future.result(timeout=60)
    assert len(fine.future.result(timeout=60)[0].tokens) <= 4
    assert running.future.result(timeout=60)[0].tokens == expected  # read in again, went on
    assert len(calls) == 4, calls  # the batch, the running row read anew, each new one alone
    batcher.close()
