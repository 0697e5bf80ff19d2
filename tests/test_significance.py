"""Paired significance tests against textbook results."""

import itertools
import math

import numpy as np
import pytest

from polyglot_jax.evaluation import significance

# Darwin's Zea mays: cross- minus self-fertilised plant heights (eighths of an inch) of 15
# pairs, as Fisher (1935, The Design of Experiments, §21) tested them by randomisation: 1726 of
# the 2**15 sign patterns give a sum at least as far from 0 as the observed 314.
DARWIN = [49, -67, 8, 16, 6, 23, 28, 41, 14, 29, 56, 24, 75, 60, -48]

# Benjamini and Hochberg (1995, §4.1): 15 p-values of a myocardial infarction study.
BH_EXAMPLE = [
    0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
    0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000,
]  # fmt: skip


def _enumerated(d):
    observed = abs(sum(d))
    hits = sum(
        abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= observed - 1e-9
        for signs in itertools.product((1, -1), repeat=len(d))
    )
    return hits / 2 ** len(d)


def test_permutation_matches_fishers_exact_enumeration():
    p = significance.paired_permutation(DARWIN)
    assert p == pytest.approx(1726 / 2**15)  # 0.05267
    assert p == pytest.approx(_enumerated(DARWIN))


def test_permutation_small_and_degenerate_samples():
    assert significance.paired_permutation([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)
    assert significance.paired_permutation([0.0, 0.0]) == 1.0
    assert math.isnan(significance.paired_permutation([]))
    rng = np.random.default_rng(0)
    sampled = significance.paired_permutation(rng.normal(0.4, 1.0, 40))  # 2**40: sampled
    assert 0 < sampled < 0.05


def test_benjamini_hochberg_rejects_four_as_published():
    adjusted = significance.benjamini_hochberg(BH_EXAMPLE)
    assert sum(p < 0.05 for p in adjusted) == 4  # the paper's 4 discoveries at q = 0.05
    assert adjusted[:4] == pytest.approx([0.0015, 0.003, 0.0095, 0.035625])


def test_holm_rejects_three_on_the_same_example():
    adjusted = significance.holm(BH_EXAMPLE)
    assert sum(p < 0.05 for p in adjusted) == 3  # as Bonferroni in the paper
    assert adjusted[:4] == pytest.approx([15 * 0.0001, 14 * 0.0004, 13 * 0.0019, 12 * 0.0095])
    assert adjusted == sorted(adjusted) and max(adjusted) == 1.0
    assert significance.holm([0.01, math.nan, 0.04])[1] != significance.holm([0.01, 0.04])[1]
    assert significance.holm([0.01, math.nan, 0.04]) == pytest.approx(
        [0.02, math.nan, 0.04], nan_ok=True
    )


def test_bootstrap_interval_covers_the_mean():
    low, high = significance.bootstrap_interval(DARWIN)
    assert low < np.mean(DARWIN) < high and low > 0  # Darwin's mean, 20.9, clear of 0
    assert significance.bootstrap_interval([2.0, 2.0]) == (2.0, 2.0)


def test_compare_pairs_prompts_and_seeds_per_language_and_group():
    values = {
        "a_seed0": {("de", str(i), "0"): 1.0 for i in range(8)} | {("fi", "0", "0"): 0.0},
        "a_seed1": {("de", str(i), "0"): 1.0 for i in range(8)},
        "r_seed0": {("de", str(i), "0"): 0.0 for i in range(8)} | {("fi", "0", "0"): 0.0},
        "r_seed1": {("de", str(i), "0"): 0.0 for i in range(6)},  # two prompts unpaired
    }
    pairs = [("a_seed0", "r_seed0"), ("a_seed1", "r_seed1")]
    rows = significance.compare(values, pairs, "lang_agree", {"all": ["de", "fi"]}, scale=100)
    by = {r["scope"]: r for r in rows}
    assert by["de"]["n"] == 14 and by["de"]["difference"] == pytest.approx(100.0)
    assert by["de"]["p"] == pytest.approx(2 / 2**14) and by["de"]["holds"]
    assert by["fi"]["n"] == 1 and by["fi"]["p"] == 1.0 and not by["fi"]["holds"]
    assert by["de"]["p_holm"] == pytest.approx(2 * by["de"]["p"])
    assert by["group: all"]["n"] == 15
    pairwise = significance.compare({"a": {("de", "0", "0"): 1.0}}, [("a", None)], "pairwise_score")
    assert pairwise[0]["difference"] == pytest.approx(0.5)
