"""Report: correlation of per-language scores with registry language features."""

import numpy as np
import pytest
from scipy.stats import rankdata

from polyglot_jax import languages
from polyglot_jax.evaluation import report


def table_of(scores: dict[str, float]) -> dict:
    rows = {}
    for lang, value in scores.items():
        row = {m: float("nan") for m in report.METRICS}
        row["chrf"] = value
        rows[("run", lang)] = row
    return rows


def test_correlations_match_numpy_on_tier_and_script():
    langs = ["en", "fi", "sw", "zh", "hi", "qu"]
    rng = np.random.RandomState(0)
    scores = {lang: 10.0 * languages.get(lang).tier + rng.rand() for lang in langs}
    rows = {r["feature"]: r for r in report.correlations(table_of(scores))}
    tiers = np.array([languages.get(lang).tier for lang in langs], float)
    values = np.array(list(scores.values()))
    assert rows["resource tier"]["pearson"] == pytest.approx(np.corrcoef(tiers, values)[0, 1])
    assert rows["resource tier"]["spearman"] == pytest.approx(
        np.corrcoef(rankdata(tiers), rankdata(values))[0, 1]  # average ranks for ties
    )
    latin = np.array([languages.get(lang).script == "Latin" for lang in langs], float)
    assert rows["Latin script"]["pearson"] == pytest.approx(np.corrcoef(latin, values)[0, 1])
    assert all(r["n"] == 6 and r["metric"] == "chrf" for r in rows.values())


def test_too_few_languages_or_constant_scores_give_no_correlation():
    assert report.correlations(table_of({"en": 1.0, "fi": 2.0, "sw": 3.0})) == []
    assert report.correlations(table_of({"en": 1.0, "fi": 1.0, "sw": 1.0, "zh": 1.0})) == []
