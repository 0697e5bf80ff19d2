"""The study report shows each paper's finding: scores by language group, every facet of the
zero-shot judge, bars visible at a score of 0, the share curve's 0 % point and integer k."""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from etils import epath
from matplotlib.patches import Rectangle

from polyglot_jax.cli import study as study_cli
from polyglot_jax.errors import ConfigError
from polyglot_jax.evaluation import analysis, report
from polyglot_jax.evaluation.judges.protocols import FACETS
from polyglot_jax.models import DecoderConfig
from polyglot_jax.studies import catalog, figures, groups, transfer
from polyglot_jax.studies import roots as study_roots


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


def write_run(root, run, protocol, scores, study="polyglots", model=None):
    """A fake run under ``root``: hand-written judgments and the model it records."""
    rows = [
        {"run": run, "lang": lang, "item_id": f"{run}/{lang}/{i}", "status": "ok", "score": s}
        for lang, values in scores.items()
        for i, s in enumerate(values)
    ]
    (root / run / "judge").mkdir(parents=True)
    (root / run / "judge" / f"{protocol}.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    if isinstance(model, str):  # the train command the runner records
        command = f"python -m polyglot_jax.train --gin_file=models/{model}.gin --gin.X=1"
        (root / run / "study_state.json").write_text(json.dumps({"commands": {"train": command}}))
    elif model is not None:  # a DecoderConfig
        (root / run / "model_config.json").write_text(json.dumps(model.to_dict()))
    (root / "study.json").write_text(json.dumps({"study": study, "runs": []}))


@pytest.fixture()
def two_roots(tmp_path):
    """Polyglots under two roots: Llama 2 7B (recorded train command) and a tiny Llama (only
    its model_config.json)."""
    llama, tiny = tmp_path / "llama", tmp_path / "tiny"
    for run, scores in POLYGLOTS_SCORES.items():
        scores = {lang: [s for s in values if s is not None] for lang, values in scores.items()}
        write_run(llama, run, "single", scores, model="llama2_7b")
        low = {lang: [max(1, s - 1) for s in values] for lang, values in scores.items()}
        write_run(tiny, run, "single", low, model=DecoderConfig())
    return llama, tiny


def test_a_report_of_two_roots_labels_and_draws_each_model(two_roots, tmp_path):
    study = catalog.STUDIES["polyglots"]
    conditions = [study.condition("lora_k1"), study.condition("lora_k3")]
    roots = [str(r) for r in two_roots]
    # 2 layers x (attention 128*32*12 + SwiGLU 3*128*384) + 2 untied 1024 x 128 tables
    assert study_roots.labels(study, roots, conditions) == {
        roots[0]: "llama2_7b",
        roots[1]: "llama_655k",
    }
    out = tmp_path / "out"
    argv = ["report", "polyglots", f"--roots={','.join(roots)}", f"--output_dir={out}"]
    assert study_cli.main(argv) == 0
    summary = (out / "study.md").read_text()
    assert "| llama2_7b/lora_k1 | llama2_7b lora | 1 |" in summary
    assert "| llama_655k/lora_k3 | llama_655k lora | 3 |" in summary
    assert f"Models: llama2_7b ({roots[0]}); llama_655k ({roots[1]})" in summary
    # Each root's runs in the provenance, cost and accelerator sections; a contamination table
    # per root.
    assert "| llama_655k/lora_k3 | no provenance.json |" in summary
    assert "## Accelerator time" in summary and "## Contamination: llama2_7b" in summary
    assert "## Contamination: llama_655k" in summary
    markdown = (out / "report.md").read_text()
    assert "| llama2_7b/lora_k3 | en |" in markdown and "| llama_655k/lora_k1 | en |" in markdown
    assert (out / "study.png").stat().st_size > 1000
    assert json.loads((out / "roots.json").read_text())[roots[1]] == "llama_655k"
    labelled = [study_roots.relabel(c, m) for m in ("llama2_7b", "llama_655k") for c in conditions]
    rows = [
        {**r, "run": f"{m}/{r['run']}"}
        for root, m in zip(two_roots, ("llama2_7b", "llama_655k"), strict=True)
        for run in POLYGLOTS_SCORES
        for r in report.load_judgments([root / run / "judge"])
    ]
    table = report.score_table(rows)
    fig, metrics = figures.figure(study, labelled, table)
    ax = fig.axes[metrics.index("single_score")]
    labels = [line.get_label() for line in ax.lines]
    assert labels == [
        "llama2_7b lora: all languages",
        "llama2_7b lora: non-English",
        "llama_655k lora: all languages",
        "llama_655k lora: non-English",
    ]
    assert list(ax.lines[2].get_xdata()) == [1, 3]
    plt.close(fig)


def test_roots_of_another_study_or_without_its_runs_are_refused(two_roots, tmp_path):
    llama, _ = two_roots
    write_run(tmp_path / "pinch", "mono_en", "pairwise", {"en": [1.0]}, study="pinch")
    out = f"--output_dir={tmp_path / 'out'}"
    with pytest.raises(ConfigError, match=r"holds study 'pinch', not 'polyglots'$"):
        study_cli.main(
            ["report", "polyglots", f"--root={llama}", f"--root={tmp_path / 'pinch'}", out]
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no judged or benchmarked run of study 'polyglots'"):
        study_cli.main(
            ["report", "polyglots", f"--root={llama}", f"--root={tmp_path / 'empty'}", out]
        )
    with pytest.raises(ConfigError, match="several roots need --output_dir"):
        study_cli.main(["report", "polyglots", f"--roots={llama},{tmp_path / 'empty'}"])


PINCH_MATRIX = {  # tuning language → evaluation language → pairwise score
    "en": {"en": 1.0, "fi": 0.5, "sw": 0.0},
    "fi": {"en": 0.5, "fi": 1.0, "sw": 0.5},
    "sw": {"en": 0.0, "fi": 0.5, "sw": 0.5},
}
SHARES = "# test shares\nlang\tshare_percent\nen\t90\nfi\t0.1\nsw\t0.001\n"


def test_pinch_diagonal_and_off_diagonal_means_and_share_correlation(tmp_path):
    study = catalog.STUDIES["pinch"]
    rows = [
        (f"mono_{tuned}", lang, score, {})
        for tuned, scores in PINCH_MATRIX.items()
        for lang, score in scores.items()
    ]
    table = table_from(tmp_path, "pairwise", rows)
    conditions = [study.condition(f"mono_{lang}") for lang in PINCH_MATRIX]
    (tmp_path / "shares.tsv").write_text(SHARES)
    share = analysis.language_features(tmp_path / "shares.tsv")[analysis.SHARE_FEATURE]
    found = transfer.transfer(conditions, table, "pairwise_score", share)
    assert found.runs == 3
    assert found.diagonal == pytest.approx((100 + 100 + 50) / 3)
    assert found.off_diagonal == pytest.approx((50 + 0 + 50 + 50 + 0 + 50) / 6)
    # Off-diagonal means per evaluation language: en (50 + 0) / 2, fi (50 + 50) / 2, sw 25.
    expected = np.corrcoef([math.log10(90), -1.0, -3.0], [25.0, 50.0, 25.0])[0, 1]
    assert found.share_r == pytest.approx(expected) and found.share_n == 3
    assert math.isnan(transfer.transfer(conditions, table, "pairwise_score").share_r)


def test_the_shares_file_reaches_the_study_report(tmp_path):
    root, shares = tmp_path / "pinch", tmp_path / "shares.tsv"
    shares.write_text(SHARES + "es\t0.2\n")
    for tuned, scores in PINCH_MATRIX.items():
        scores = {lang: [s] for lang, s in {**scores, "es": 0.25 * len(tuned)}.items()}
        write_run(root, f"mono_{tuned}", "pairwise", scores, study="pinch")
    argv = ["report", "pinch", f"--root={root}", f"--pretraining_shares={shares}"]
    argv.append("--conditions=mono_en,mono_fi,mono_sw")
    assert study_cli.main(argv) == 0
    summary = (root / "report" / "study.md").read_text()
    assert f"Pretraining shares: {shares}" in summary
    assert "## Tuning language vs. evaluation language" in summary
    assert f"with log10 of their pretraining share ({shares})." in summary
    assert "| monolingual | Pairwise win rate vs baseline (%) | 3 | 83.33 |" in summary
    assert f"- pretraining share (log10 %): {shares}" in (root / "report" / "report.md").read_text()


def test_each_model_s_share_curve_starts_at_its_own_english_only_run(tmp_path):
    study = catalog.STUDIES["pinch"]
    conditions = [study.condition(n) for n in ("mono_en", "share_1", "share_50")]
    models = {"palm_1b": 0.25, "llama2_7b": 0.75}  # each model's score on every item
    rows = [
        (f"{model}/{c.name}", lang, score, {})
        for model, score in models.items()
        for c in conditions
        for lang in ("en", "sw")
    ]
    table = table_from(tmp_path, "pairwise", rows)
    labelled = [study_roots.relabel(c, m) for m in models for c in conditions]
    fig, _ = figures.figure(study, labelled, table)
    lines = fig.axes[0].lines
    assert [line.get_label() for line in lines[::2]] == [
        "palm_1b multilingual share: all languages",
        "llama2_7b multilingual share: all languages",
    ]
    assert list(lines[0].get_xdata()) == [0, 1, 50] and set(lines[0].get_ydata()) == {25.0}
    assert list(lines[2].get_xdata()) == [0, 1, 50] and set(lines[2].get_ydata()) == {75.0}
    plt.close(fig)
