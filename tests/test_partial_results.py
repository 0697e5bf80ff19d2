"""Failed judge and benchmark items are visible: counted in the report, each cell's ``n`` the
items its mean covers, and a study run that left some exits 1 unless ``--allow_partial``."""

import json
import math
import types

import pytest

from polyglot_jax import cli
from polyglot_jax.evaluation import report
from polyglot_jax.evaluation.benchmarks import metrics, scoring
from polyglot_jax.studies import catalog
from polyglot_jax.studies.plan import Options, Planner
from polyglot_jax.testing import mock_server

# Per language: answers of the run; FAULT400 fails the request (final), UNPARSEABLE gets a
# verdict that does not parse: both are failed items.
ANSWERS = {
    "en": ["Four, since two plus two is four.", "FAULT400 four", "It is four."],
    "es": ["Son cuatro.", "Cuatro, claro que sí.", "Cuatro."],
    "ru": ["FAULT400 четыре", "UNPARSEABLE четыре", "Четыре."],
}


@pytest.fixture()
def server():
    with mock_server.MockChatServer() as s:
        yield s


def write_answers(folder):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": str(i), "lang": lang, "prompt": "2 + 2?", "response": answer})
        for lang, answers in ANSWERS.items()
        for i, answer in enumerate(answers)
    ]
    (folder / "answers.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def trained_and_inferred(root, name):
    """A polyglots quick run whose training and inference are done (judging is not)."""
    planner = Planner(catalog.STUDIES["polyglots"], Options(root=str(root), quick=True))
    condition = next(c for c in planner.study.conditions if c.name == name)
    planner.final_checkpoint(condition).mkdir(parents=True)
    write_answers(root / name / "infer")
    (root / name / "infer" / "decoding.json").write_text("{}")
    # Language ID done too (its own tests are elsewhere): every answer agrees.
    (root / name / "judge").mkdir()
    langid = [
        {"run": name, "lang": lang, "lang_agree": 1.0} for lang in ANSWERS for _ in ANSWERS[lang]
    ]
    (root / name / "judge" / "judgments.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in langid)
    )


def test_the_report_counts_failed_judgments_and_n_is_what_the_mean_covers(tmp_path):
    judge = tmp_path / "k3" / "judge"
    judge.mkdir(parents=True)
    statuses = {"fi": ["ok", "ok", "failed", "invalid"], "sw": ["ok", "failed", "failed"]}
    rows = [
        {"run": "k3", "lang": lang, "item_id": f"{lang}{i}", "status": status}
        | ({"score": 2.0 + i} if status == "ok" else {"reason": "HTTP 500"})
        for lang, states in statuses.items()
        for i, status in enumerate(states)
    ]
    (judge / "single.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = report.score_table(report.load_judgments([judge]))
    assert table[("k3", "fi")]["single_score_n"] == 2 and table[("k3", "fi")]["failed"] == 2
    assert table[("k3", "sw")]["single_score_n"] == 1 and table[("k3", "sw")]["failed"] == 2
    assert table[("k3", "fi")]["single_score"] == pytest.approx(2.5)
    text = report.write_report([judge], tmp_path / "report").read_text()
    lines = text.splitlines()
    assert lines[2] == (
        "warning: 4 judgments failed (run k3: fi 2, sw 2); their cells cover fewer prompts"
    )
    assert "| run | lang | failed | Single-answer score (the rubric's scale) |" in text
    assert "| k3 | fi | 2 | 2.5 [2.0, 3.0], n=2 |" in text
    assert "| k3 | sw | 2 | 2.0 [2.0, 2.0], n=1 |" in text


def test_a_report_with_nothing_failed_has_no_warning(tmp_path):
    rows = [{"run": "a", "lang": "en", "status": "ok", "score": 1.0}]
    path = tmp_path / "single.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n")
    text = report.write_report([path], tmp_path / "report").read_text()
    assert "warning" not in text and "| a | en | 0 | 1.0 [1.0, 1.0], n=1 |" in text


def test_a_benchmark_item_with_non_finite_scores_fails_and_is_counted(monkeypatch, tmp_path):
    items = [
        {"id": str(i), "lang": "et", "context": "c", "choices": ["a", "b"], "label": 0}
        for i in range(3)
    ]
    monkeypatch.setattr(scoring, "task_items", lambda task, split: items)
    monkeypatch.setattr(scoring, "check_split", lambda task, split: None)
    task = types.SimpleNamespace(score_metric_fns=[metrics.ChoiceAccuracy("accuracy")])
    monkeypatch.setattr(scoring.seqio, "get_mixture_or_task", lambda name: task)
    scores = [[0.0, -1.0], [math.nan, -1.0], [-3.0, -1.0]]
    monkeypatch.setattr(scoring, "choice_scores", lambda *args, **kwargs: scores)
    vocabulary = types.SimpleNamespace(encode=lambda text: [1], bos_id=1)
    model = types.SimpleNamespace(vocabulary=vocabulary, stop_ids=[2])
    result, rows = scoring.run_task("xcopa_et", "test", model)
    assert result == {"accuracy": 50.0, "n": 2.0, "failed": 1.0}
    assert rows[1]["status"] == "failed" and "accuracy" not in rows[1]
    path = tmp_path / "structured.jsonl"
    scoring.write_rows(path, [{**r, "run": "k1"} for r in rows])
    text = report.write_report([path], tmp_path / "report").read_text()
    assert "warning: 1 benchmark items failed (run k1: et 1); their cells cover fewer items" in text


def test_a_study_with_failed_judgments_exits_1_unless_allow_partial(
    server, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    trained_and_inferred(tmp_path, "lora_k3")
    argv = ["study", "run", "polyglots", "--quick", f"--root={tmp_path}", "--conditions=lora_k3"]
    argv += [f"--judge=openai:mock@{server.base_url}", "--benchmarks=none"]
    assert cli.main(argv) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert err[0] == (
        "error: run lora_k3, stage judge: 3 of 9 items failed (HTTP 400 x2, invalid verdict x1)"
    )
    assert not (tmp_path / "report").exists()

    assert cli.main([*argv, "--allow_partial"]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert (
        "warning: 3 judgments failed (run lora_k3: en 1, ru 2); their cells cover fewer prompts"
        in text
    )
    table = report.score_table(report.load_judgments([tmp_path / "lora_k3" / "judge"]))
    assert [table[("lora_k3", lang)]["single_score_n"] for lang in ANSWERS] == [2, 3, 1]
    assert [table[("lora_k3", lang)]["failed"] for lang in ANSWERS] == [1, 0, 2]
    assert "| lora_k3 | ru | 2 | 100.0 [100.0, 100.0], n=3 |" in text  # language ID: every answer
