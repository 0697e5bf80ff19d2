"""Evaluation prompts found in the training data are counted per language."""

from __future__ import annotations

import json

import pytest

from polyglot_jax.studies import catalog, contamination
from polyglot_jax.studies.grid import select
from polyglot_jax.studies.plan import Options, Planner
from polyglot_jax.testing import study_fixtures

LONG = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"


def test_exact_and_ngram_matches_are_found_per_language():
    training = ["What is THE capital of France?!", f"Intro: {LONG}."]
    prompts = {
        "en": [("a", "what is the capital   of france"), ("b", "Something else entirely")],
        "de": [("c", f"Bitte: {LONG}"), ("d", "one two three")],
    }
    result = contamination.check(training, prompts)
    assert result["languages"]["en"]["contaminated"] == 1
    assert result["languages"]["en"]["items"] == [{"id": "a", "how": "exact"}]
    assert result["languages"]["de"]["items"] == [{"id": "c", "how": "13-gram"}]
    text = contamination.markdown(result)
    assert "| en | 2 | 1 | 50.0% | a (exact) |" in text
    assert "did not run" in contamination.markdown(None)


@pytest.fixture()
def data_dir(tmp_path):
    folder = tmp_path / "study_data"
    study_fixtures.write_fixture_data(folder, "quick")
    return folder


def test_a_planted_duplicate_is_caught_before_the_study_runs(tmp_path, data_dir):
    study = catalog.STUDIES["pinch"]
    options = Options(root=str(tmp_path / "root"), quick=True, data_dir=str(data_dir))
    planner, conditions = Planner(study, options), select(study, None, True)
    clean = contamination.study_check(planner, conditions)
    assert clean["languages"] and clean["mixtures"]
    found = {(lang, x["id"]) for lang, e in clean["languages"].items() for x in e["items"]}
    lang, prompt_id = next(
        (lang, i)
        for lang, items in contamination.eval_prompts(planner, conditions[0]).items()
        for i, _ in items
        if (lang, i) not in found
    )
    before = clean["languages"][lang]["contaminated"]
    _, texts = contamination.training_texts(planner, conditions[0])
    planted_text = f"  {texts[0].upper()} !!"  # normalised: the same text as a training message
    for path in sorted((data_dir / "lima_oasst").glob(f"test.{lang}.*.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            if record["id"] == prompt_id:
                record["messages"][-1]["content"] = planted_text
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    planted = contamination.study_check(planner, conditions)
    entry = planted["languages"][lang]
    assert entry["contaminated"] == before + 1
    assert {"id": prompt_id, "how": "exact"} in entry["items"]
    assert contamination.read(planner.root) == planted


def test_prompt_files_are_what_is_checked_when_infer_answers_them(tmp_path, demo_tasks):
    from polyglot_jax.inference.config import InferConfig

    path = tmp_path / "test_fi.jsonl"
    rows = [{"id": "p1", "prompt": "Mikä on Suomen pääkaupunki?"}, {"id": "p2", "prompt": "Hei"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    config = InferConfig("run", "demo_uniform", prompt_files=[str(path)])
    prompts = contamination.prompts_of(config)
    assert prompts == {"fi": [("p1", rows[0]["prompt"]), ("p2", "Hei")]}
    result = contamination.check(["mikä on SUOMEN pääkaupunki"], prompts)
    assert result["languages"]["fi"]["items"] == [{"id": "p1", "how": "exact"}]
