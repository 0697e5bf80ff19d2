"""The shared layer of the HTTP backends: the one spec parser and the one retry policy."""

import dataclasses

import pytest

from polyglot_jax.clients import backends
from polyglot_jax.clients.backend_spec import BackendSpec, Endpoint, parse_spec, redact_spec
from polyglot_jax.clients.http_client import AttemptError, RetryPolicy, iter_concurrent
from polyglot_jax.data import translate_backends
from polyglot_jax.errors import ConfigError

TRANSLATE = ("--backend", translate_backends.KINDS)


@pytest.mark.parametrize(
    ("spec", "flag_kinds", "kind", "model", "shown"),
    [
        ("openai:gpt-4o", (), "openai", "gpt-4o", "openai:gpt-4o"),
        ("local:/ckpt/run", (), "local", "/ckpt/run", "local:/ckpt/run"),
        ("openai:m@http://h:8000/v1", TRANSLATE, "openai", "m", "openai:m@http://h:8000/v1"),
        ("google", TRANSLATE, "google", "", "google"),
        ("google:nmt", TRANSLATE, "google", "nmt", "google:nmt"),
        ("google@http://u:pw@h/x?key=K", TRANSLATE, "google", "", "google@http://h/x"),
        ("google:base@https://h", TRANSLATE, "google", "base", "google:base@https://h"),
    ],
)
def test_every_form_parses_to_a_frozen_spec(spec, flag_kinds, kind, model, shown):
    parsed = parse_spec(spec, *flag_kinds)
    assert (parsed.kind, parsed.model, str(parsed)) == (kind, model, shown)
    assert redact_spec(spec) == shown
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spec", "flag_kinds", "message"),
    [
        ("claude", (), "--judge 'claude': expected openai:MODEL[@BASE_URL] or local:CHECKPOINT"),
        ("google:nmt", (), "--judge 'google:nmt': expected openai:MODEL"),
        ("openai:", (), "--judge 'openai:': expected"),
        ("local:", TRANSLATE, "--backend 'local:': expected openai:MODEL[@BASE_URL], google[:"),
        ("openai:@http://h", TRANSLATE, "--backend 'openai:@...': the model name is empty"),
        ("google:turbo", TRANSLATE, "--backend 'google:turbo': Google models are nmt and base"),
        ("openai:m@ftp://h/v1", (), "--judge base URL 'ftp://h/v1': expected http(s)://HOST"),
        ("google@http://u:SECRET@h:port?k=S", TRANSLATE, "--backend base URL 'http://h:port': "),
    ],
)
def test_a_bad_spec_is_one_line_naming_flag_and_value_without_secrets(spec, flag_kinds, message):
    with pytest.raises(ConfigError) as caught:
        parse_spec(spec, *flag_kinds)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text
    assert "SECRET" not in text and "k=S" not in text


def test_credentials_connect_but_show_nowhere():
    spec = parse_spec("openai:m@https://user:PW%21@h/v1?key=QS&x=1")
    endpoint = spec.endpoint
    assert endpoint.url == "https://user:PW%21@h/v1"
    assert endpoint.query == (("key", "QS"), ("x", "1"))
    for text in (repr(spec), str(spec), repr(endpoint), endpoint.shown):
        assert "PW" not in text and "QS" not in text and "user" not in text
    assert (
        endpoint.scrub("failed: https://user:PW%21@h?key=QS") == "failed: https://***:***@h?key=***"
    )
    assert redact_spec("JUDGE") == "JUDGE"  # a placeholder that does not parse is kept


def test_the_judge_and_translation_parse_with_the_same_function():
    spec = parse_spec("openai:m@http://127.0.0.1:9/v1", *TRANSLATE)
    judge = backends.from_spec(spec, max_retries=0)
    assert isinstance(judge, backends.OpenAIBackend) and judge.server == "http://127.0.0.1:9/v1"
    translator = translate_backends.from_spec("openai:m@http://127.0.0.1:9/v1", max_retries=2)
    assert translator.backend.retry == translator.retry_backend.retry == RetryPolicy(2)
    assert (translator.backend.seed, translator.retry_backend.seed) == (0, 1)
    assert isinstance(spec, BackendSpec) and isinstance(spec.endpoint, Endpoint)


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (AttemptError("HTTP 429", status=429), True),
        (AttemptError("HTTP 408", status=408), True),
        (AttemptError("HTTP 503", status=503), True),
        (AttemptError("HTTP 400", status=400), False),
        (AttemptError("HTTP 401", status=401), False),
        (AttemptError("timeout"), True),
        (AttemptError("BadRequest: x", transient=False), False),
    ],
)
def test_which_failures_are_asked_again(failure, retried):
    policy = RetryPolicy(max_retries=3, backoff=0)
    calls = []

    def attempt():
        calls.append(1)
        raise failure

    completion = policy.call(attempt, "test")
    assert completion.text is None and completion.error == failure.reason
    assert len(calls) == completion.attempts == (4 if retried else 1)


def test_a_transient_failure_then_an_answer_counts_both_attempts():
    answers = iter([AttemptError("connection error"), "fine"])

    def attempt():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    completion = RetryPolicy(backoff=0).call(attempt, "test")
    assert (completion.text, completion.error, completion.attempts) == ("fine", None, 2)


def test_the_backoff_doubles_with_jitter_up_to_its_cap():
    policy = RetryPolicy(backoff=1.0, max_backoff=5.0)
    for retry, base in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        assert 0.5 * base <= policy.delay(retry) <= 1.5 * base


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_retries": -1}, "max_retries must be 0 or more"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"backoff": -1}, "backoff must be 0 or more"),
    ],
)
def test_a_policy_out_of_range_is_named(fields, message):
    with pytest.raises(ConfigError, match=message):
        RetryPolicy(**fields)


def test_requests_in_flight_end_in_any_order_with_their_index():
    done = dict(iter_concurrent(lambda x: x * x, list(range(20)), 4))
    assert done == {i: i * i for i in range(20)}
