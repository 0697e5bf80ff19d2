"""Surface metrics of answers (length, repeated 4-grams, answers cut at the limit) from infer
output files, per (run, language) in the report."""

import csv
import json

import pytest

from polyglot_jax import cli
from polyglot_jax.errors import DataError
from polyglot_jax.evaluation import report, surface


def infer_record(i: int, lang: str, response: str, num_tokens: int, reason: str) -> dict:
    """A line as ``infer`` writes it (``inference/infer.py``)."""
    return {
        "id": f"q{i}",
        "lang": lang,
        "prompt": "Frage?",
        "response": response,
        "reference": None,
        "num_tokens": num_tokens,
        "finish_reason": reason,
        "sample": 0,
        "seed": 1234 + i,
    }


def write_infer(run_dir, lang: str, records: list[dict]):
    folder = run_dir / "infer"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"oasst_test_{lang}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return folder


def reference_rep(words: list[str], n: int = 4) -> float:
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams)


def test_words_and_repetition():
    assert surface.words("Das ist gut, sehr gut.") == ["Das", "ist", "gut,", "sehr", "gut."]
    assert surface.words("我爱 北京 ok") == ["我", "爱", "北", "京", "ok"]
    assert surface.words("สวัสดี") == list("สวัสดี")  # Thai: no spaces between words
    text = "a b c d a b c d a b"
    assert surface.repetition_rate(text) == pytest.approx(reference_rep(text.split()))
    assert surface.repetition_rate("one two three four five") == 0.0
    assert surface.repetition_rate("too short") is None
    assert surface.repetition_rate("好" * 10) == pytest.approx(6 / 7)  # 7 4-grams, 1 distinct


def test_report_adds_surface_metrics_per_run_and_language(tmp_path):
    loop = "der Hund der Hund der Hund der Hund"
    de = [
        infer_record(0, "de", "Ein Hund bellt laut im Garten.", 10, "eos"),
        infer_record(1, "de", loop, 64, "length"),
        infer_record(2, "de", "Ja.", 3, "eos"),
    ]
    zh = [infer_record(i, "zh", "狗在花园里叫。" * (i + 1), 8 * (i + 1), "eos") for i in range(2)]
    a = write_infer(tmp_path / "run_a", "de", de)
    write_infer(tmp_path / "run_a", "zh", zh)
    b = write_infer(tmp_path / "run_b", "de", [infer_record(0, "de", loop, 64, "length")])
    rows = surface.surface_rows([a, b])
    assert {r["run"] for r in rows} == {"run_a", "run_b"} and len(rows) == 6

    out = tmp_path / "report"
    assert cli.main(["report", "--outputs", str(a), str(b), f"--output_dir={out}"]) == 0
    with (out / "scores.csv").open() as f:
        table = {(r["run"], r["lang"]): r for r in csv.DictReader(f)}
    de_a = table[("run_a", "de")]
    assert float(de_a["surface_tokens"]) == pytest.approx((10 + 64 + 3) / 3)
    assert float(de_a["surface_chars"]) == pytest.approx(sum(len(r["response"]) for r in de) / 3)
    assert float(de_a["surface_cut"]) == pytest.approx(100 / 3)
    sentence = ["Ein", "Hund", "bellt", "laut", "im", "Garten."]
    rep = [reference_rep(sentence), reference_rep(loop.split())]
    assert float(de_a["surface_rep4"]) == pytest.approx(100 * sum(rep) / 2)  # "Ja." has none
    assert float(table[("run_b", "de")]["surface_cut"]) == 100.0
    zh_rep = [reference_rep(list("狗在花园里叫。" * k)) for k in (1, 2)]
    assert float(table[("run_a", "zh")]["surface_rep4"]) == pytest.approx(50 * sum(zh_rep))
    text = (out / "report.md").read_text()
    assert "## Answers cut at the length limit (%)" in text and "| run_b | 100.0 | 100.0 |" in text
    assert (out / "surface_rep4.png").exists()


def test_surface_metrics_join_judge_rows(tmp_path):
    run = tmp_path / "run_a"
    outputs = write_infer(run, "de", [infer_record(0, "de", "Ein Hund.", 4, "eos")])
    (run / "judge").mkdir()
    judged = {"run": "run_a", "id": "q0", "lang": "de", "lang_agree": 1.0, "chrf": 40.0}
    (run / "judge" / "judgments.jsonl").write_text(json.dumps(judged) + "\n")
    path = report.write_report([run / "judge"], tmp_path / "report", outputs=[outputs])
    text = path.read_text()
    assert (
        "| run_a | de | 0 | 100.0 [100.0, 100.0], n=1 | 40.0 [40.0, 40.0], n=1 | "
        "4.0 [4.0, 4.0], n=1 |" in text
    )
    assert "## Answer length (tokens)" in text and "## Language agreement (%)" in text


def test_bad_infer_lines_and_missing_inputs_are_one_line_errors(tmp_path, capsys):
    folder = write_infer(tmp_path / "run", "de", [infer_record(0, "de", "ok", 1, "eos")])
    with (folder / "oasst_test_de.jsonl").open("a") as f:
        f.write(json.dumps({"id": "q1", "lang": "de"}) + "\n")
    with pytest.raises(DataError, match=r"oasst_test_de.jsonl:2: missing field\(s\) response"):
        surface.surface_rows([folder])
    assert cli.main(["report", "--outputs", str(folder)]) == 2
    assert "oasst_test_de.jsonl:2: missing field(s) response" in capsys.readouterr().err
    assert cli.main(["report"]) == 2
    assert "nothing to report" in capsys.readouterr().err
