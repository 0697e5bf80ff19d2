"""The study report's provenance, cost and contamination sections."""

from __future__ import annotations

import json

from polyglot_jax import storage
from polyglot_jax.clients import usage
from polyglot_jax.studies import audit, contamination
from polyglot_jax.studies.grid import Condition


def test_sections_of_a_study_root(tmp_path, monkeypatch):
    monkeypatch.delenv(audit.ENV_PRICES, raising=False)
    run = tmp_path / "en_only"
    data = tmp_path / "train.en.jsonl"
    data.write_text("{}\n")
    record = {
        "datasets": ["lima"],
        "pins": {"lima": {"train": "GAIR/lima@68958e98/train.jsonl"}},
        "data_files": {
            "lima": [{"split": "train", "lang": "en", "path": str(data), "sha256": "ab"}]
        },
        "project_version": "0.1.0",
        "packages": {"jax": "0.4.30", "Flax": "0.8.5"},
    }
    storage.write_json(run / "provenance.json", record)
    with usage.UsageStore(run / "judge" / "judgments.sqlite") as store:
        store.put("k1", "judge", "en_only", "en", usage.Usage("gpt-4o", 1000, 200))
    result = contamination.check(["a planted prompt"], {"en": [("p1", "A planted prompt!")]})
    storage.write_json(tmp_path / contamination.FILE, result)
    conditions = [Condition("en_only", "x.gin"), Condition("missing", "x.gin")]
    text = "\n".join(audit.lines(tmp_path, conditions))
    assert "| en_only | lima | 1 |" in text and "jax 0.4.30, flax 0.8.5" in text
    assert "GAIR/lima@68958e98/train.jsonl" in text
    assert "| en_only | en | judge | gpt-4o | 1 | 1000 | 200 | 0.0045 |" in text
    assert "| en | 1 | 1 | 100.0% | p1 (exact) |" in text
    own = tmp_path / "prices.json"
    own.write_text(json.dumps({"models": {"gpt-4o": {"input": 10, "output": 0}}}))
    assert "| 0.0100 |" in "\n".join(audit.lines(tmp_path, conditions))
    assert audit.lines(tmp_path / "elsewhere", conditions) == []
