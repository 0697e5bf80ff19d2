"""FIDELITY.md: every study's table parses, and its differences reach the study report."""

import pytest

from polyglot_jax.studies import catalog, fidelity

PAPER_STUDIES = ("polyglots", "pinch", "zero_shot", "better_alpaca")


@pytest.mark.parametrize("study", PAPER_STUDIES)
def test_every_row_has_a_source_a_place_and_a_status(study):
    table = fidelity.rows(study)
    assert len(table) >= 10
    for row in table:
        assert set(row) == {"element", "the study", "source", "set here", "status"}, row
        assert all(row.values()), row
        assert row["status"].startswith(("same", "deviation", "assumed", "1%", "counts", "chosen",
                                         "protocol", "see")), row  # fmt: skip


def test_the_report_lists_what_differs_and_nothing_that_is_the_same():
    lines = fidelity.lines("better_alpaca")
    assert lines[0] == "## Differences from the paper"
    assert any(line.startswith("- validation: deviation") for line in lines)
    assert any(line.startswith("- judge: assumed") for line in lines)
    assert not any(line.startswith("- LoRA recipe:") for line in lines)  # same as the release
    assert fidelity.lines("demo_pinch") == [] and catalog.STUDIES["demo_pinch"]


def test_the_dry_run_names_the_differences(capsys, tmp_path):
    from polyglot_jax import cli

    assert cli.main(["study", "run", "zero_shot", f"--root={tmp_path}", "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "# differences from the paper (gin_configs/studies/zero_shot/FIDELITY.md):" in out
    assert "#   learning-rate selection: deviation" in out
