"""Seeds of a study: run names, SEED in training and decoding, per-seed pairwise baselines,
and a quick study with two seeds whose report has the significance and judge tables."""

import json

import jax
import pytest

from polyglot_jax.errors import ConfigError
from polyglot_jax.studies import catalog, grid, runner
from polyglot_jax.studies.plan import Options, Planner
from polyglot_jax.testing import mock_server, study_fixtures


def test_default_runs_keep_their_names_and_seeds_suffix_them(tmp_path):
    study = catalog.STUDIES["pinch"]
    plain = grid.select(study, ["share_50"], quick=True)
    assert [c.name for c in plain] == ["mono_en", "share_50"]
    assert all(c.seed is None and "SEED" not in c.overrides for c in plain)
    seeded = grid.select(study, ["share_50"], quick=True, seeds=(0, 1))
    names = [c.name for c in seeded]
    assert names == ["mono_en_seed0", "mono_en_seed1", "share_50_seed0", "share_50_seed1"]
    assert [grid.unseeded(c) for c in seeded[::2]] == plain

    planner = Planner(study, Options(root=str(tmp_path), quick=True, judge="openai:m@http://x"))
    run = seeded[3]
    assert "--gin.SEED=1" in planner.train_argv(run) and "--gin.SEED=1" in planner.infer_argv(run)
    judge = planner.judge_argv(run, "pairwise")
    assert judge[judge.index("--baseline") + 1] == str(tmp_path / "mono_en_seed1" / "infer")
    assert [s.note for s in planner.stages(seeded[1]) if s.name == "judge"] == [
        "the pairwise baseline itself"
    ]
    report = planner.report_stage(seeded).argv
    assert "--conditions=mono_en,share_50" in report and "--seeds=0,1" in report
    assert "--seeds" not in " ".join(planner.report_stage(plain).argv)
    assert "SEED" not in " ".join(planner.train_argv(plain[1]))


def test_bad_seeds_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--seeds"):
        Options(root=str(tmp_path), seeds=(1, 1))


@pytest.mark.slow
def test_pinch_quick_with_two_seeds_reports_significance_and_the_judge(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    data_dir = tmp_path / "data"
    study_fixtures.write_fixture_data(data_dir, "quick")
    with mock_server.MockChatServer() as server:
        options = Options(
            root=str(tmp_path / "runs"),
            quick=True,
            data_dir=str(data_dir),
            judge=f"openai:mock@{server.base_url}",
            seeds=(0, 1),
        )
        summary = runner.run(catalog.STUDIES["pinch"], options, ["share_50"])
        assert server.requests == 48  # 12 items x both orders x 2 seeds
    root = tmp_path / "runs"
    for name in ("mono_en_seed0", "mono_en_seed1", "share_50_seed0", "share_50_seed1"):
        assert (root / name / "infer" / "decoding.json").exists()
    assert "SEED = 1" in (root / "share_50_seed1" / "config.gin").read_text()
    rows = [json.loads(x) for x in (root / "share_50_seed1" / "judge" / "pairwise.jsonl").open()]
    assert all(len(r["verdicts"]) == 2 for r in rows if r["status"] == "ok")
    # The study's tables show each condition once, pooled over the seeds.
    assert (
        "| share_50 | multilingual share | 50 |" in summary
        and "_seed" not in summary.split("## Spread across seeds")[0]
    )
    assert "## Spread across seeds" in summary and "| share_50 | Language agreement" in summary
    assert "## Paired differences and their significance" in summary
    assert "| share_50 | mono_en | Language agreement (%) | group: all | 24 |" in summary
    assert "| share_50 | 0.5 | Pairwise win rate vs baseline (%) |" in summary
    assert "## Judge diagnostics: answer order (pairwise)" in summary
    assert "| script: Latin |" in summary
    assert "## Judge diagnostics: score vs. answer length" in summary
    assert "## Costs" in summary and "| share_50_seed1 | en | judge | mock |" in summary
    kind = f"{jax.device_count()} × {jax.devices()[0].device_kind}"
    assert "## Accelerator time" in summary and "| share_50_seed1 | train | local |" in summary
    assert kind in summary.split("| share_50_seed1 | infer | local |")[1].splitlines()[0]
