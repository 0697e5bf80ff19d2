"""End to end: the quick demo (train → infer → judge → report), then resume behaviour."""

import json
import subprocess
import sys

import pytest

from polyglot_jax.data import demo_build
from polyglot_jax.evaluation import report
from polyglot_jax.evaluation.judges import language
from polyglot_jax.inference import infer
from polyglot_jax.inference.config import InferConfig
from polyglot_jax.runtime import decoding
from polyglot_jax.runtime.chat_model import ChatModel

LANGS = demo_build.DEMO_LANGUAGES


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "polyglot_jax.cli", "demo", "--quick", "--output_dir", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"report: {out / 'report' / 'report.md'}" in proc.stdout
    assert "step 20/20" in proc.stderr  # progress lines
    return out


@pytest.mark.parametrize("run", ["demo_en_only", "demo_pinch"])
def test_demo_writes_checkpoints_outputs_and_judgments(demo_dir, run):
    run_dir = demo_dir / run
    assert (run_dir / "checkpoint_20").is_dir() and (run_dir / "config.gin").exists()
    lines = [
        json.loads(x)
        for f in sorted((run_dir / "infer").glob("*.jsonl"))
        for x in f.read_text().splitlines()
    ]
    assert {r["lang"] for r in lines} == set(LANGS) and len(lines) == 10 * len(LANGS)
    for r in lines:
        assert set(r) >= {"id", "lang", "prompt", "response", "num_tokens", "finish_reason"}
        assert r["finish_reason"] in ("eos", "length") and 0 <= r["num_tokens"] <= 16
    judgments = report.load_judgments([run_dir / "judge"])
    assert len(judgments) == len(lines)
    assert all(j["run"] == run and 0 <= j["chrf"] <= 100 for j in judgments)


def test_report_tables_and_heatmaps(demo_dir):
    folder = demo_dir / "report"
    text = (folder / "report.md").read_text()
    assert "| demo_en_only |" in text and "| demo_pinch |" in text
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if "| demo_pinch | " in line}
    for lang in LANGS:  # nothing failed; every mean covers the 10 prompts
        assert rows[lang].startswith(f"| demo_pinch | {lang} | 0 | ") and "n=10 |" in rows[lang]
    for png in ("lang_agree.png", "chrf.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in text


def test_infer_resumes_a_partial_file(demo_dir, tmp_path, demo_tasks):
    run_dir = demo_dir / "demo_pinch"
    model = ChatModel.load(run_dir)
    import seqio

    task = seqio.get_mixture_or_task("demo_uniform.fi")
    from polyglot_jax.data import chat_tasks

    records = chat_tasks.task_records(task, "validation")
    path = tmp_path / "fi.jsonl"
    assert infer.generate_records(model, records[:4], path, max_new_tokens=8) == 4
    kept = path.read_text().splitlines()
    path.write_text("\n".join(kept) + "\n" + kept[0][:20])  # a line cut by an interrupted run
    assert infer.generate_records(model, records, path, max_new_tokens=8) == 6
    lines = path.read_text().splitlines()
    assert lines[:4] == kept
    assert sorted(json.loads(x)["id"] for x in lines) == sorted(r["id"] for r in records)


def test_langid_agrees_on_reference_answers():
    records = []
    for lang in LANGS:
        for r in demo_build.build()[f"eval.{lang}.jsonl"]:
            answer = r["messages"][-1]["content"]
            records.append({"id": r["id"], "lang": lang, "response": answer, "reference": answer})
    judgments = language.judge_records(records, "references")  # every language is a candidate
    summary = language.summarize(judgments)
    assert all(row["chrf"] == 100.0 for row in summary.values())
    # Among all ~75 languages lingua knows, the shortest references (arithmetic such as "62 minus
    # 13 equals 49.", 7 words or fewer, mostly digits) can look like a neighbour; every longer
    # reference is identified as its own language.
    wrong = [r for r, j in zip(records, judgments, strict=True) if not j["lang_agree"]]
    assert all(len(r["response"].split()) <= 7 for r in wrong), wrong
    assert len(wrong) < len(records) / 5


def test_infer_answers_shared_oasst_prompt_files(demo_dir, tmp_path, demo_tasks, shared_data):
    files = [str(shared_data / "oasst_prompts" / f"test_{lang}.jsonl") for lang in ("fi", "hi")]
    config = InferConfig(
        str(demo_dir / "demo_pinch"),
        "demo_uniform",
        output_dir=str(tmp_path),
        max_new_tokens=4,
        prompt_files=files,
    )
    result = infer.infer(config, progress=False)
    lines = {p.stem: [json.loads(x) for x in p.read_text().splitlines()] for p in result.files}
    assert len(lines["test_fi"]) == 50 and {r["lang"] for r in lines["test_fi"]} == {"fi"}
    assert len(lines["test_hi"]) == 50  # the repaired Hindi file: every line is a prompt


def test_two_hosts_with_several_samples_equal_one_host(demo_dir, tmp_path, demo_tasks):
    sampling = decoding.Sampling(
        temperature=0.8, top_p=0.9, frequency_penalty=0.2, stop_strings=("###",), num_samples=2
    )
    kwargs = dict(
        checkpoint_path=str(demo_dir / "demo_pinch"),
        mixture_or_task_name="demo_uniform",
        languages=["sw"],
        max_new_tokens=6,
        batch_size=3,
        sampling=sampling,
        seed=7,
    )
    single = infer.infer(InferConfig(output_dir=str(tmp_path / "one"), **kwargs), progress=False)
    for index in range(2):
        two = InferConfig(output_dir=str(tmp_path / "two"), shard=(index, 2), **kwargs)
        infer.infer(two, progress=False)
    merged = infer.merge_parts(tmp_path / "two", "demo_uniform.sw", 2)
    expected = single.files[0].read_text()
    assert merged.read_text() == expected
    lines = [json.loads(x) for x in expected.splitlines()]
    assert len(lines) == 20 and {r["sample"] for r in lines} == {0, 1}
    assert len({(r["id"], r["seed"]) for r in lines}) == 20
    settings = json.loads((tmp_path / "one" / "decoding.json").read_text())
    assert settings["top_p"] == 0.9 and settings["num_samples"] == 2
    assert settings["stop_strings"] == ["###"]


def test_infer_gin_sampling_macros(demo_dir, tmp_path, demo_tasks):
    from polyglot_jax import cli

    argv = [
        "infer",
        "--gin_file=runs/infer.gin",
        f'--gin.CHECKPOINT_PATH="{demo_dir / "demo_pinch"}"',
        '--gin.MIXTURE_OR_TASK_NAME="demo_uniform.he"',
        f'--gin.INFER_OUTPUT_DIR="{tmp_path}"',
        "--gin.MAX_NEW_TOKENS=4",
        "--gin.TEMPERATURE=0.7",
        "--gin.TOP_P=0.9",
        "--gin.REPETITION_PENALTY=1.2",
        "--gin.NUM_SAMPLES=2",
    ]
    assert cli.main(argv) == 0
    lines = [json.loads(x) for x in (tmp_path / "demo_uniform.he.jsonl").read_text().splitlines()]
    assert len(lines) == 20 and {r["sample"] for r in lines} == {0, 1}
    settings = json.loads((tmp_path / "decoding.json").read_text())
    assert (settings["temperature"], settings["top_p"], settings["repetition_penalty"]) == (
        0.7,
        0.9,
        1.2,
    )
    assert cli.main([*argv[:-1], "--gin.NUM_SAMPLES=0"]) == 2  # bad value: one-line error
