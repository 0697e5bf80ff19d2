"""Studies run end to end at the quick size on fixture data with the fault-injecting judge
server, and a study killed mid-grid resumes without redoing a finished stage."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from polyglot_jax.studies import catalog, runner
from polyglot_jax.studies.plan import Options
from polyglot_jax.testing import mock_server, study_fixtures

XQUAD = {
    "data": [
        {
            "paragraphs": [
                {
                    "context": "Madrid es la capital de España.",
                    "qas": [
                        {
                            "id": f"q{i}",
                            "question": "¿Cuál es la capital de España?",
                            "answers": [{"text": "Madrid", "answer_start": 0}],
                        }
                        for i in range(2)
                    ],
                }
            ]
        }
    ]
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study_data")
    study_fixtures.write_fixture_data(folder, "quick")
    return folder


@pytest.fixture()
def server():
    with mock_server.MockChatServer() as s:
        yield s


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def test_a_killed_study_resumes_without_redoing_finished_stages(data_dir, server, tmp_path):
    bench = tmp_path / "bench"
    (bench / "xquad").mkdir(parents=True)
    (bench / "xquad" / "xquad.es.json").write_text(json.dumps(XQUAD, ensure_ascii=False))
    root = tmp_path / "polyglots"
    argv = [sys.executable, "-m", "polyglot_jax.cli", "study", "run", "polyglots", "--quick"]
    argv += [f"--root={root}", f"--data_dir={data_dir}", f"--benchmark_data={bench}"]
    argv += [f"--judge=openai:mock@{server.base_url}", "--benchmark_limit=2"]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    # The two processes compile the same tiny shapes: a persistent compilation cache between them.
    env.update(
        JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    first, second = root / "lora_k1", root / "lora_k3"
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 240
    while not (second / "model_config.json").exists():  # the second run has started training
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.time() < deadline, "the first run did not finish in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (first / "structured" / "metrics.json").exists()  # every stage of run 1 finished
    assert not (root / "report").exists()
    before = {
        "checkpoints": _mtimes(first),
        "judge": _mtimes(first / "judge"),
        "infer": _mtimes(first / "infer"),
        "structured": _mtimes(first / "structured"),
    }
    requests = server.requests
    assert requests == 12  # 4 OASST test prompts x 3 languages, judged once

    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("train", "infer", "langid", "judge", "benchmarks"):
        assert f"[1/2] lora_k1 {stage}: done, skipped" in done.stderr
        assert f"[2/2] lora_k3 {stage}: done, skipped" not in done.stderr
    assert before == {
        "checkpoints": _mtimes(first),
        "judge": _mtimes(first / "judge"),
        "infer": _mtimes(first / "infer"),
        "structured": _mtimes(first / "structured"),
    }
    assert server.requests == requests + 12  # only the second run was judged
    rows = [json.loads(x) for x in (second / "judge" / "single.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    summary = (root / "report" / "study.md").read_text()
    assert "| lora_k1 | lora | 1 |" in summary and "| lora_k3 | lora | 3 |" in summary
    assert "Single-answer score (the rubric's scale), mean" in summary
    assert (root / "report" / "study.png").stat().st_size > 1000
    assert "xquad_es" in json.loads((second / "structured" / "metrics.json").read_text())

    again = subprocess.run([*argv, "--dry_run"], capture_output=True, text=True, env=env)
    states = [
        line.split()[1]
        for line in again.stdout.splitlines()
        if line.startswith(("t", "i", "l", "j", "b"))
    ]
    assert states and set(states) == {"[done]"}
    assert again.stdout.splitlines()[-1].startswith("## report [done]")


def _quick(study, root, data_dir, server, conditions=None):
    options = Options(
        root=str(root), quick=True, data_dir=str(data_dir), judge=f"openai:mock@{server.base_url}"
    )
    return runner.run(catalog.STUDIES[study], options, conditions)


def test_pinch_quick_pairwise_against_the_english_run(data_dir, server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    summary = _quick("pinch", tmp_path, data_dir, server, ["share_50"])
    assert (
        "| mono_en | monolingual |" in summary
        and "| share_50 | multilingual share | 50 |" in summary
    )
    rows = [
        json.loads(x)
        for x in (tmp_path / "share_50" / "judge" / "pairwise.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 12 and all(r["score"] in (0.0, 0.5, 1.0) for r in rows)
    assert not (tmp_path / "mono_en" / "judge" / "pairwise.jsonl").exists()
    assert server.requests == 24  # both orders of every item
    config = (tmp_path / "share_50" / "config.gin").read_text()
    assert "PINCH_EXAMPLES = 12" in config and "DATASET = 'lima_oasst'" in config


def test_zero_shot_quick_selects_a_learning_rate(data_dir, server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    summary = _quick("zero_shot", tmp_path, data_dir, server)
    assert "Selected on the non-English prompts (facets_score). These are the reported" in summary
    assert "- dolly full: x = " in summary
    rows = [
        json.loads(x)
        for x in (tmp_path / "dolly_full_lr1e-05" / "judge" / "facets.jsonl")
        .read_text()
        .splitlines()
    ]
    assert {r["lang"] for r in rows} == {"en", "fr", "ru"} and all("fluency" in r for r in rows)


def test_better_alpaca_quick_gates_by_language(data_dir, server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    summary = _quick("better_alpaca", tmp_path, data_dir, server, ["downsampled_lora"])
    assert "| downsampled_lora | downsampled lora |" in summary
    path = tmp_path / "downsampled_lora" / "judge" / "single.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok and all(r["score"] == 0 or r["language_match"] == 1.0 for r in ok)
    assert all(r["score"] <= 3 for r in ok)  # the 1-3 rubric's scale
    config = (tmp_path / "downsampled_lora" / "config.gin").read_text()
    assert "budget_mixture" in config and "LoRAConfig.rank = %LORA_RANK" in config
