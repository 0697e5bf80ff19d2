"""Judge diagnostics: pairwise order flips and first-position share, score vs. length."""

import math

import pytest
from scipy import stats

from polyglot_jax.evaluation import judge_diagnostics, report


def _pairwise(lang, verdicts):
    return [
        {"run": "r", "lang": lang, "pairwise_score": 0.5, "verdicts": v, "id": str(i)}
        for i, v in enumerate(verdicts)
    ]


def test_flip_rate_and_first_position_share_per_language_and_script():
    rows = _pairwise("de", ["AB", "BA", "AA", "CC"]) + _pairwise("ru", ["AA", "AA"])
    rows.append({"run": "r", "lang": "de", "failed": "judge"})  # no verdicts: left out
    by = {r["scope"]: r for r in judge_diagnostics.position_rows(rows)}
    # de: AA flips (the first answer wins in both orders); decisive verdicts A,B,B,A,A,A.
    assert by["de"]["items"] == 4 and by["de"]["flip_rate"] == pytest.approx(25.0)
    assert by["de"]["first_share"] == pytest.approx(100 * 4 / 6)
    assert by["ru"]["flip_rate"] == 100.0 and by["ru"]["first_share"] == 100.0
    assert by["script: Latin"]["items"] == 4 and by["script: Cyrillic"]["items"] == 2
    assert math.isnan(judge_diagnostics.position_rows(_pairwise("de", ["CC"]))[0]["first_share"])


def test_length_correlation_joins_answers_by_prompt():
    scores, tokens = [1, 2, 2, 3, 5, 4], [10, 20, 25, 30, 50, 45]
    judgments = [
        {"run": "r", "lang": "fr", "id": str(i), "sample": 0, "single_score": s}
        for i, s in enumerate(scores)
    ]
    judgments.append({"run": "r", "lang": "fr", "id": "0", "sample": 1, "single_score": 6})
    answers = [
        {"run": "r", "lang": "fr", "id": str(i), "surface_tokens": t, "surface_chars": 100 - t}
        for i, t in enumerate(tokens)
    ]
    rows = judge_diagnostics.length_rows(judgments, answers)
    fr = next(r for r in rows if r["scope"] == "fr")
    expected = stats.spearmanr(tokens, scores)
    assert fr["items"] == 6 and fr["tokens"] == pytest.approx(expected.statistic)
    assert fr["chars"] == pytest.approx(-expected.statistic)
    text = "\n".join(judge_diagnostics.lines(judgments, answers))
    assert "score vs. answer length" in text and "| single_score | script: Latin | 6 |" in text
    assert judge_diagnostics.lines([], []) == []


def test_load_judgments_keeps_the_prompt_and_the_verdicts(tmp_path):
    path = tmp_path / "pairwise.jsonl"
    path.write_text(
        '{"run": "k1", "item_id": "k1/de/7#sample2", "lang": "de", "status": "ok", '
        '"score": 1.0, "verdicts": "AB"}\n'
    )
    (row,) = report.load_judgments([path])
    assert row["id"] == "7" and row["sample"] == 2 and row["verdicts"] == "AB"


def test_english_gap_pairs_the_same_prompt_across_languages():
    en = [5, 4, 5, 3, 4]
    de = [4, 4, 3, 3, 2]  # gaps 1, 0, 2, 0, 2: mean 1.0
    judgments = [
        {"run": "r", "lang": lang, "id": f"alpaca_eval/{i}", "sample": 0, "single_score": s}
        for lang, values in (("en", en), ("de", de))
        for i, s in enumerate(values)
    ]
    judgments.append({"run": "r", "lang": "de", "id": "x", "sample": 0, "single_score": 1})
    judgments.append({"run": "q", "lang": "de", "id": "alpaca_eval/0", "single_score": 1})
    rows = {r["scope"]: r for r in judge_diagnostics.english_gap_rows(judgments)}
    assert rows["de"]["items"] == 5  # unpaired prompts and other runs' rows are left out
    assert rows["de"]["gap"] == pytest.approx(1.0)
    assert rows["de"]["english"] == pytest.approx(4.2) and rows["de"]["language"] == 3.2
    # Exact sign-flip test over the three non-zero gaps (1, 2, 2): only the all-positive
    # and all-negative patterns of 2**5 reach |mean| >= 1.0, each with 4 zero-sign copies.
    assert rows["de"]["p"] == pytest.approx(8 / 32)
    assert rows["all others"]["items"] == 5
    assert "English vs. the same prompts" in "\n".join(judge_diagnostics.lines(judgments, []))
    not_parallel = [j for j in judgments if j["lang"] == "de"]
    assert judge_diagnostics.english_gap_rows(not_parallel) == []
