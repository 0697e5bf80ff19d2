"""Token usage of judge and translation requests, stored with the cache, and the cost table."""

from __future__ import annotations

import json

import pytest

from polyglot_jax.clients import backends, usage
from polyglot_jax.data import translate, translate_backends
from polyglot_jax.data.translate_text import Checks
from polyglot_jax.errors import ConfigError
from polyglot_jax.evaluation.judges import protocols
from polyglot_jax.evaluation.judges import runner as judge_runner
from polyglot_jax.evaluation.judges.store import JudgmentStore
from polyglot_jax.studies import costs
from polyglot_jax.testing import mock_server


@pytest.fixture(scope="module")
def server():
    with mock_server.MockChatServer() as s:
        yield s


def _backend(server):
    return backends.OpenAIBackend("mock", server.base_url, concurrency=2, max_retries=0)


def test_the_backend_returns_the_servers_usage(server):
    completion = _backend(server).complete([{"role": "user", "content": "one two three"}])
    assert isinstance(completion.usage, usage.Usage)
    assert completion.usage.prompt_tokens == 3 and completion.usage.completion_tokens > 0


def test_judge_usage_is_stored_with_the_judgments_and_priced(server, tmp_path):
    items = [
        protocols.Item(f"runA/{lang}/{i}", lang, f"Question {i}?", f"Answer number {i}.")
        for lang in ("en", "de")
        for i in range(2)
    ]
    run_dir = tmp_path / "runA"
    db = run_dir / "judge" / "judgments.sqlite"
    with JudgmentStore(db) as store:
        judge_runner.run(
            protocols.get_protocol("single"), _backend(server), items, store, progress=False
        )
    rows = usage.read(db)
    assert len(rows) == 4 and {r["stage"] for r in rows} == {"judge"}
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 for r in rows)
    table = costs.cost_rows(costs.usage_rows([run_dir]), costs.load_prices())
    assert [(r.run, r.lang, r.stage, r.requests) for r in table] == [
        ("runA", "de", "judge", 2),
        ("runA", "en", "judge", 2),
    ]
    en = table[1]
    assert en.cost == pytest.approx((en.prompt_tokens * 1.0 + en.completion_tokens * 2.0) / 1e6)
    text = costs.section([run_dir])
    assert "| runA | en | judge | mock | 2 |" in text and "EXAMPLE prices" in text


def test_translation_usage_is_stored_in_the_translation_cache(server, tmp_path):
    source = tmp_path / "x.jsonl"
    messages = [{"role": "user", "content": "The weather is pleasant today in the park."}]
    source.write_text(json.dumps({"id": "a", "lang": "en", "messages": messages}) + "\n")
    translator = translate_backends.ChatTranslator("openai", "gpt-4o-2024-08-06", _backend(server))
    translate.translate_file(
        source, tmp_path / "out", ["de"], translator, Checks(None), progress=False
    )
    rows = usage.read(translate.default_db(tmp_path / "out"))
    assert [(r["stage"], r["run"], r["lang"], r["model"]) for r in rows] == [
        ("translate", "x", "de", "mock")
    ]


def test_prices_by_prefix_and_bad_tables(tmp_path):
    prices = costs.load_prices()
    assert prices.example and prices.price("gpt-4o-mini-2024") == (0.15, 0.6)
    assert prices.price("gpt-4o-2024-08-06") == (2.5, 10.0) and prices.price("other") is None
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"models": {"m": {"input": "cheap"}}}))
    with pytest.raises(ConfigError, match="'m' needs numeric"):
        costs.load_prices(bad)
    row = {"run": "r", "lang": "en", "stage": "judge", "model": "other"}
    table = costs.cost_rows([{**row, "prompt_tokens": 5, "completion_tokens": 1}], prices)
    assert table[0].cost is None and "not priced: other" in costs.markdown(table, prices)


def test_google_translate_bills_characters(tmp_path, monkeypatch):
    from polyglot_jax.testing import mock_translate

    text = "The weather is pleasant today in the park."
    source = tmp_path / "x.jsonl"
    messages = [{"role": "user", "content": text}]
    source.write_text(json.dumps({"id": "a", "lang": "en", "messages": messages}) + "\n")
    monkeypatch.setenv("GOOGLE_TRANSLATE_API_KEY", "k")
    with mock_translate.MockTranslateServer(api_key="k") as server:
        translator = translate_backends.GoogleTranslator("nmt", server.base_url, max_retries=0)
        translate.translate_file(
            source, tmp_path / "out", ["de", "fr"], translator, Checks(None), progress=False
        )
    rows = usage.read(translate.default_db(tmp_path / "out"))
    assert [(r["model"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        ("google-translate/nmt", len(text), 0)
    ] * 2
    table = costs.cost_rows(rows, costs.load_prices())
    assert table[0].cost == pytest.approx(len(text) * 20.0 / 1e6)  # the example price
    text_table = costs.markdown(table, costs.load_prices())
    assert f"| x | de | translate | google-translate/nmt | 1 | {len(text)} characters | 0 |" in (
        text_table
    )
