"""Human calibration of the judge: export a sample, import labels, agreement, provenance."""

import csv
import io
import json
import math
import types

import pytest

from polyglot_jax.cli import judge as judge_cli
from polyglot_jax.data import prompt_sets
from polyglot_jax.errors import ConfigError, DataError
from polyglot_jax.evaluation.benchmarks import registry
from polyglot_jax.evaluation.judges import calibration
from polyglot_jax.studies import calibration_section


def _table(a_yes_b_yes: int, a_yes_b_no: int, a_no_b_yes: int, a_no_b_no: int):
    pairs = (
        [("Y", "Y")] * a_yes_b_yes
        + [("Y", "N")] * a_yes_b_no
        + [("N", "Y")] * a_no_b_yes
        + [("N", "N")] * a_no_b_no
    )
    return [a for a, _ in pairs], [b for _, b in pairs]


def test_cohen_kappa_textbook_examples():
    # The two 2x2 tables of Wikipedia's "Cohen's kappa" article: p_o 0.70, p_e 0.50 -> 0.40;
    # p_o 0.60, p_e 0.54 -> 0.1304.
    assert calibration.cohen_kappa(*_table(20, 5, 10, 15)) == pytest.approx(0.4)
    assert calibration.cohen_kappa(*_table(45, 15, 25, 15)) == pytest.approx(0.1304, abs=1e-4)
    assert calibration.cohen_kappa(["A", "B", "C"], ["A", "B", "C"]) == pytest.approx(1.0)
    assert math.isnan(calibration.cohen_kappa(["A", "A"], ["A", "A"]))
    assert math.isnan(calibration.cohen_kappa([], []))


def test_spearman():
    assert calibration.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert calibration.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(calibration.spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(calibration.spearman([1], [1]))


def _run(root, name, protocol, langs=("fi", "de"), n=6, scores=None):
    """A run folder with infer outputs and a judge output (``ok`` rows, one failed)."""
    infer, judged = root / name / "infer", root / name / "judge"
    infer.mkdir(parents=True)
    judged.mkdir(parents=True)
    records, rows = [], []
    for lang in langs:
        for i in range(n):
            records.append(
                {"id": str(i), "lang": lang, "prompt": f"q{i} {lang}", "response": f"a{i}"}
            )
            score = scores(i) if scores else float(1 + i % 6)
            rows.append(
                {
                    "run": name,
                    "item_id": f"{name}/{lang}/{i}",
                    "lang": lang,
                    "status": "ok",
                    "score": score,
                }
            )
    rows.append(
        {
            "run": name,
            "item_id": f"{name}/fi/x",
            "lang": "fi",
            "status": "failed",
            "reason": "timeout",
        }
    )
    (infer / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (judged / f"{protocol}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return judged


def _read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_export_import_single(tmp_path, capsys):
    judged = _run(tmp_path, "pinch", "single")
    out = tmp_path / "sample.csv"
    argv = ["export", str(judged), "--protocol=single", "--per_language=4", f"--output={out}"]
    assert judge_cli.main([*argv, "--seed=3", f"--html={tmp_path / 's.html'}"]) == 0
    assert "8 items (de 4, fi 4)" in capsys.readouterr().out
    rows = _read_csv(out)
    assert [r["language"] for r in rows] == ["de"] * 4 + ["fi"] * 4
    assert all(r["label"] == "" and r["allowed"] == "an integer 1-6" for r in rows)
    assert rows[0]["prompt"].startswith("q") and rows[0]["answer"].startswith("a")
    assert "answer_b" not in rows[0]
    assert "<table>" in (tmp_path / "s.html").read_text()
    again = tmp_path / "again.csv"
    calibration.export_sample(judged, "single", again, 4, seed=3)
    assert again.read_text() == out.read_text()  # seeded
    # Annotators agree with the judge's ranking; one row left empty.
    for r in rows:
        r["label"] = str(1 + int(r["item_id"].rsplit("/", 1)[1]) % 6)
    rows[0]["label"] = ""
    _write_csv(out, rows)
    assert judge_cli.main(["import", str(out), str(judged), "--protocol=single"]) == 0
    printed = capsys.readouterr().out
    assert "7 labels stored, 1 rows unlabelled, 0 bad rows skipped" in printed
    assert "spearman=1.000" in printed
    stored = [json.loads(x) for x in (judged / "human_single.jsonl").read_text().splitlines()]
    assert len(stored) == 7 and all(r["label"] == r["judge"] for r in stored)


def test_import_bad_rows_name_file_and_line(tmp_path, capsys):
    judged = _run(tmp_path, "pinch", "mtbench", langs=("fi",))
    out = tmp_path / "sample.csv"
    calibration.export_sample(judged, "mtbench", out, 5)
    rows = _read_csv(out)
    assert rows[0]["allowed"] == "an integer 1-10"
    for r in rows:
        r["label"] = "7"
    rows[1]["label"] = "11"
    rows[2]["prompt"] = "two\nlines"  # a quoted field over two lines: later line numbers shift
    rows[3]["label"] = "good"
    _write_csv(out, rows)
    with pytest.raises(DataError, match=rf"^{out}:3: label '11' is not an integer 1-10$"):
        calibration.read_labels(out, "mtbench")
    rows[1]["label"] = "7"
    _write_csv(out, rows)
    with pytest.raises(DataError, match=rf"{out}:6: label 'good'"):
        judge_cli.main(["import", str(out), str(judged), "--protocol=mtbench"])
    assert (
        judge_cli.main(["import", str(out), str(judged), "--protocol=mtbench", "--skip_bad"]) == 0
    )
    assert "4 labels stored, 0 rows unlabelled, 1 bad rows skipped" in capsys.readouterr().out
    rows[3]["item_id"] = "pinch/fi/nope"
    rows[3]["label"] = "3"
    _write_csv(out, rows)
    with pytest.raises(DataError, match=r"has not scored, e\.g\. pinch/fi/nope"):
        calibration.import_labels(out, judged, "mtbench")


def test_pairwise_kappa_and_study_root(tmp_path):
    verdict = {0: 1.0, 1: 0.0, 2: 0.5}
    for name in ("pinch", "multi"):
        _run(tmp_path, name, "pairwise", langs=("fi",), n=6, scores=lambda i: verdict[i % 3])
    base = tmp_path / "mono" / "infer"
    base.mkdir(parents=True)
    base.joinpath("x.jsonl").write_text(
        "".join(
            json.dumps({"id": str(i), "lang": "fi", "response": f"b{i}"}) + "\n" for i in range(6)
        )
    )
    out = tmp_path / "sample.csv"
    with pytest.raises(ConfigError, match="--baseline"):
        calibration.export_sample(tmp_path, "pairwise", out, 20)
    counts = calibration.export_sample(tmp_path, "pairwise", out, 20, baseline=[base])
    assert counts == {"fi": 12}  # both runs of the study root
    rows = _read_csv(out)
    assert rows[0]["allowed"].startswith("A (answer A is better)")
    assert all(r["answer_b"].startswith("b") for r in rows)
    for r in rows:  # the human agrees except on ties, which they call wins
        r["label"] = "ABA"[int(r["item_id"].rsplit("/", 1)[1]) % 3]
    _write_csv(out, rows)
    counts, table = calibration.import_labels(out, tmp_path, "pairwise")
    assert counts["labelled"] == 12
    judge = ["A", "B", "C"] * 4
    human = ["A", "B", "A"] * 4
    assert table == [
        {
            "lang": "fi",
            "n": 12,
            "statistic": "kappa",
            "value": pytest.approx(calibration.cohen_kappa(judge, human)),
            "exact": pytest.approx(2 / 3),
        }
    ]
    for name in ("pinch", "multi"):
        assert (tmp_path / name / "judge" / "human_pairwise.jsonl").exists()
    study = types.SimpleNamespace(judging=types.SimpleNamespace(protocol="pairwise"))
    conditions = [types.SimpleNamespace(name="pinch"), types.SimpleNamespace(name="multi")]
    text = "\n".join(calibration_section.lines(tmp_path, conditions, study))
    assert "## Judge against human labels" in text and "| fi | 12 |" in text
    assert "Cohen's kappa" in text


def test_facets_columns_and_labels(tmp_path):
    judged = _run(tmp_path, "pinch", "facets", langs=("fi",), n=2)
    out = tmp_path / "sample.csv"
    calibration.export_sample(judged, "facets", out, 2)
    rows = _read_csv(out)
    facet_columns = [f"label_{f}" for f in ("language", "fluency", "helpfulness")]
    assert all(c in rows[0] for c in facet_columns)
    for r in rows:
        for key in r:
            if key.startswith("label_"):
                r[key] = "2"
    rows[1]["label_fluency"] = "4"
    _write_csv(out, rows)
    with pytest.raises(DataError, match=r":3: label_fluency '4' is not an integer 1-3"):
        calibration.read_labels(out, "facets")


def test_section_without_labels_shows_provenance_only(tmp_path):
    study = types.SimpleNamespace(judging=types.SimpleNamespace(protocol="single"))
    text = "\n".join(calibration_section.lines(tmp_path, [], study))
    assert "human labels" not in text
    assert "| xcopa | benchmark | human | CC BY 4.0 | |" in text
    assert "| xcsqa | benchmark | machine |" in text
    assert "| oasst_test | prompt set | human | CC BY-NC 4.0 |" in text


def test_registry_provenance():
    assert (registry.get("xnli").translation, registry.get("xnli").license) == (
        "human",
        "CC BY-NC 4.0",
    )
    assert registry.get("xquad").license == "CC BY-SA 4.0"
    for entry in [*registry.BENCHMARKS.values(), *prompt_sets.PROVENANCE.values()]:
        assert entry.translation in ("human", "machine", "unknown") and entry.license


def test_judge_command_line_unchanged():
    args = judge_cli.parse(["--outputs", "run/infer", "--protocol=single", "--judge=openai:m"])
    assert args.outputs == ["run/infer"] and args.protocol == "single"
    with pytest.raises(ConfigError, match="polyglot-jax judge export"):
        judge_cli.main(["export", "x", "--protocol=single"])  # --output is required


def test_pairwise_judge_verdict_is_before_the_language_gate():
    gated_win = {"verdicts": "AB", "score": 0.0}
    assert calibration._judge_label(gated_win, "pairwise") == "A"
    assert calibration._judge_label({"verdicts": "AA", "score": 0.5}, "pairwise") == "C"
    assert calibration._judge_label({"score": 0.0}, "pairwise") == "B"


def test_top_level_command(tmp_path):
    from polyglot_jax import cli

    judged = _run(tmp_path, "pinch", "single", langs=("fi",), n=3)
    out = tmp_path / "s.csv"
    argv = ["judge", "export", str(judged), "--protocol=single", f"--output={out}"]
    assert cli.main(argv) == 0
    assert len(_read_csv(out)) == 3


def test_formula_like_text_is_shown_as_text(tmp_path):
    judged = _run(tmp_path, "pinch", "single", langs=("fi",), n=1)
    infer = tmp_path / "pinch" / "infer" / "x.jsonl"
    record = {"id": "0", "lang": "fi", "prompt": "-1+1?", "response": "=HYPERLINK(x)"}
    infer.write_text(json.dumps(record) + "\n")
    out, page = tmp_path / "s.csv", tmp_path / "s.html"
    calibration.export_sample(judged, "single", out, 1, html_output=page)
    (row,) = _read_csv(out)
    assert (row["prompt"], row["answer"]) == ("'-1+1?", "'=HYPERLINK(x)")
    assert "<td>=HYPERLINK(x)</td>" in page.read_text()
