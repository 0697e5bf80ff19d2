"""The study report shows each paper's finding: scores by language group, every facet of the
zero-shot judge, bars visible at a score of 0, the share curve's 0 % point and integer k."""

import json
import math

import matplotlib.pyplot as plt
import pytest
from etils import epath
from matplotlib.patches import Rectangle

from polyglot_jax.evaluation import report
from polyglot_jax.evaluation.judges.protocols import FACETS
from polyglot_jax.studies import catalog, figures, groups


def table_from(tmp_path, protocol, rows):
    """The report's table of hand-written judge rows: ``(run, lang, score or None, extra)``."""
    lines = [
        {"run": run, "lang": lang, "item_id": f"{run}/{lang}/{i}", **extra}
        | ({"status": "ok", "score": score} if score is not None else {"status": "failed"})
        for i, (run, lang, score, extra) in enumerate(rows)
    ]
    path = tmp_path / f"{protocol}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return report.score_table(report.load_judgments([path]))


def single(run, scores):
    return [(run, lang, s, {}) for lang, values in scores.items() for s in values]


POLYGLOTS_SCORES = {  # lora_k1 is tuned on en, lora_k3 on en, es and ru
    "lora_k1": {"en": [4, 6], "es": [2, 3, 4], "de": [1], "ca": [5, 5], "is": [2, 4]},
    "lora_k3": {"en": [3], "es": [6, 4], "is": [None, 1]},
}


@pytest.fixture()
def polyglots(tmp_path):
    study = catalog.STUDIES["polyglots"]
    rows = [r for run, scores in POLYGLOTS_SCORES.items() for r in single(run, scores)]
    conditions = [study.condition("lora_k1"), study.condition("lora_k3")]
    return study, conditions, table_from(tmp_path, "single", rows)


def test_group_means_are_the_means_of_their_languages_means(polyglots):
    study, conditions, table = polyglots
    means = groups.group_means(study, conditions, table, "single_score")
    # By hand: per-language means en 5, es 3, de 1, ca 5, is 3 (lora_k1); en 3, es 5, is 1.
    assert means["lora_k1"] == {
        "all": (pytest.approx(3.4), 10),
        "English": (5.0, 2),
        "tuned": (2.0, 4),  # es, de
        "zero-shot": (5.0, 2),  # ca
        "unseen": (3.0, 2),  # is
        "tuned (run)": (5.0, 2),  # en
        "unseen (run)": (3.0, 8),  # es, de, ca, is
    }
    k3 = means["lora_k3"]
    assert k3["all"] == (3.0, 4) and k3["tuned"] == (5.0, 2) and k3["unseen"] == (1.0, 1)
    assert math.isnan(k3["zero-shot"][0]) and k3["zero-shot"][1] == 0
    assert k3["tuned (run)"] == (4.0, 3) and k3["unseen (run)"] == (1.0, 1)
    lines = groups.tables(study, conditions, table, ["single_score"])
    assert (
        "| run | all | English | tuned | zero-shot | unseen | tuned (run) | unseen (run) |" in lines
    )
    assert (
        "| lora_k3 | 3.00 (n=4) | 3.00 (n=1) | 5.00 (n=2) | - | 1.00 (n=1) | 4.00 (n=3) "
        "| 1.00 (n=1) |"
    ) in lines


def test_the_k_axis_has_integer_ticks_and_the_rubric_its_full_scale(polyglots):
    study, conditions, table = polyglots
    fig, metrics = figures.figure(study, conditions, table)
    ax = fig.axes[metrics.index("single_score")]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3"]
    assert all(float(t).is_integer() for t in ax.get_xticks())
    low, high = ax.get_ylim()
    assert low == 1 and 6 <= high < 7 and list(ax.get_yticks()) == [1, 2, 3, 4, 5, 6]
    plt.close(fig)
    grouped = groups.figure(study, conditions, table, metrics)
    titles = [ax.get_title() for ax in grouped.axes if ax.get_title()]
    assert titles == ["English", "tuned", "zero-shot", "unseen"]  # one panel per group
    bars = [p for p in grouped.axes[1].patches if isinstance(p, Rectangle)]
    assert len(bars) == 3  # es and de, a bar per k (lora_k3 has no de)
    plt.close(grouped)


def test_the_zero_shot_report_lists_and_draws_all_six_facets(tmp_path):
    study = catalog.STUDIES["zero_shot"]
    condition = study.conditions[0]
    rows = [
        (condition.name, lang, 2.0, {f: 1 + (i + j) % 3 for j, f in enumerate(FACETS)})
        for lang in ("en", "fr")
        for i in range(2)
    ]
    table = table_from(tmp_path, "facets", rows)
    assert table[(condition.name, "en")]["facets_fluency"] == pytest.approx(2.5)
    text = figures.write(study, [condition], table, epath.Path(tmp_path / "out"))
    assert "Mean of six facets (1-3), mean" in text
    assert "Selected on the non-English prompts (facets_score)." in text
    for facet in FACETS:
        title = f"Facet: {facet.replace('_', ' ')} (1-3)"
        assert f"{title}, mean" in text and f"### {title}" in text
    fig, metrics = figures.figure(study, [condition], table)
    assert metrics == ["facets_score", *(f"facets_{f}" for f in FACETS)]
    assert all(ax.get_ylim()[0] == 1 for ax in fig.axes if ax.get_visible())
    plt.close(fig)


def test_a_zero_score_is_a_visible_labelled_bar(tmp_path):
    study = catalog.STUDIES["better_alpaca"]
    conditions = [study.condition("english_only_lora"), study.condition("downsampled_lora")]
    rows = single("english_only_lora", {"en": [3, 2], "fi": [0, 0]})
    rows += single("downsampled_lora", {"en": [2], "fi": [1, 3]})
    table = table_from(tmp_path, "single", rows)
    fig, metrics = figures.figure(study, conditions, table)
    ax = fig.axes[metrics.index("single_score")]
    assert ax.get_ylim()[0] == 0 and 3 <= ax.get_ylim()[1] < 4  # gated 1-3: 0 to 3
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert len(bars) == 1 and bars[0].get_height() > 0  # english_only_lora on fi
    labels = [t for t in ax.texts if t.get_text() == "0"]
    assert len(labels) == 1 and labels[0].get_position()[0] == pytest.approx(
        bars[0].get_center()[0]
    )
    assert any(line.get_segments() for line in ax.collections)  # the intervals' error bars
    plt.close(fig)


def test_the_share_curve_has_the_english_only_point_at_zero(tmp_path):
    study = catalog.STUDIES["pinch"]
    rows = [
        (run, lang, score, {})
        for run, score in (("mono_en", 0.5), ("share_1", 0.5), ("share_2", 1.0), ("share_50", 1.0))
        for lang in ("en", "sw")
    ]
    table = table_from(tmp_path, "pairwise", rows)
    names = ("mono_en", "share_1", "share_2", "share_50")
    fig, _ = figures.figure(study, [study.condition(n) for n in names], table)
    ax = fig.axes[0]
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2, 50]
    assert ax.get_xscale() == "symlog" and list(ax.get_xticks()) == [0, 1, 2, 50]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\nmono_en", "1", "2", "50"]
    plt.close(fig)
