"""``polyglot-jax doctor``: each framing mistake is caught by name."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from polyglot_jax.cli import main
from polyglot_jax.runtime import doctor


@pytest.fixture()
def make_run(tmp_path, random_run, tiny_config, sentencepiece_dir):
    """A random run whose recorded tokenizer is the Llama-style one, with config changes."""

    def make(name: str, config: dict | None = None, chat_format: dict | None = None, **kw):
        path = tmp_path / name
        random_run(
            path,
            dataclasses.replace(tiny_config, vocab_size=1024),
            chat_format or {"template": "guanaco", "loss_on": "all_assistant"},
        )
        folder = path / "tokenizer"
        folder.mkdir()
        shutil.copy(sentencepiece_dir / "tokenizer.model", folder)
        settings = {"tokenizer_class": "LlamaTokenizer", "legacy": False, **(config or {})}
        (folder / "tokenizer_config.json").write_text(json.dumps(settings))
        return path

    return make


def _by_name(report: doctor.Report) -> dict[str, doctor.Check]:
    return {c.name: c for c in report.checks}


def test_healthy_run_passes(make_run, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "test_en.jsonl").write_text(json.dumps({"prompt": "Hello there, my friend"}))
    report = doctor.diagnose(make_run("ok"), languages=["en", "de"], prompts=str(prompts))
    checks = _by_name(report)
    assert report.failures == [], report.table()
    assert checks["bos"].detail.startswith("'<s>'") or "id 1" in checks["bos"].detail
    assert "once, first" in checks["bos"].detail
    assert checks["end_of_turn"].status == doctor.OK
    assert "(id 2)" in checks["stop_ids"].detail
    assert "guanaco (chat_format.json)" in checks["template"].detail
    assert checks["fertility[en]"].status == doctor.INFO
    assert checks["fertility[de]"].status == doctor.SKIP
    assert "«" in report.rendered


def test_missing_bos_is_caught(make_run):
    report = doctor.diagnose(make_run("nobos", {"add_bos_token": False}))
    assert _by_name(report)["bos"].status == doctor.FAIL
    assert any(line.startswith("bos:") for line in report.failures)


def test_pad_equal_to_eos_is_named(make_run):
    report = doctor.diagnose(make_run("padeos", {"pad_token": "</s>"}))
    check = _by_name(report)["eos_pad"]
    assert check.status == doctor.WARN and "pad == EOS" in check.detail, report.table()
    assert report.failures == []


def test_template_that_masks_nothing_is_caught(make_run):
    silent = (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}\n{% endif %}"
        "{% endfor %}"
    )
    path = make_run(
        "silent",
        {"chat_template": silent},
        {"template": "tokenizer", "loss_on": "all_assistant"},
    )
    report = doctor.diagnose(path)
    assert _by_name(report)["assistant_mask"].status == doctor.FAIL
    assert any(line.startswith("assistant_mask:") for line in report.failures)


def test_cli_exits_nonzero_with_one_line_per_failure(make_run, capsys):
    path = make_run("cli", {"add_bos_token": False})
    assert main(["doctor", str(path), "--languages=en"]) == 1
    out, err = capsys.readouterr()
    assert "| bos | FAIL |" in out
    assert [line for line in err.splitlines() if line.startswith("doctor: FAIL")] == [
        line for line in err.splitlines() if "FAIL" in line
    ]
    assert "doctor: FAIL bos:" in err


def test_turn_that_ends_without_a_stop_token_is_caught(make_run):
    chatml = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    path = make_run(
        "chatml", {"chat_template": chatml}, {"template": "tokenizer", "loss_on": "all_assistant"}
    )
    report = doctor.diagnose(path)
    check = _by_name(report)["end_of_turn"]
    assert check.status == doctor.FAIL and "not a stop token" in check.detail, report.table()


def test_a_vocabulary_without_bos_passes(tmp_path, random_run, tiny_config, demo_tasks):
    config = dataclasses.replace(tiny_config, vocab_size=1024)
    chat_format = {"template": "guanaco", "loss_on": "all_assistant"}
    path = random_run(tmp_path / "demo", config, {**chat_format, "mixture_or_task_name": "demo_en"})
    report = doctor.diagnose(path)
    assert report.failures == [], report.table()
    assert _by_name(report)["bos"].detail.startswith("none")


def test_a_template_other_than_serves_is_caught(make_run):
    report = doctor.diagnose(make_run("other", {}), template="chatml")
    check = _by_name(report)["template"]
    assert check.status == doctor.FAIL and "infer/serve guanaco" in check.detail
