"""A study checks its chat framing once, before the first training stage."""

from __future__ import annotations

import pytest

from polyglot_jax.errors import ConfigError
from polyglot_jax.runtime import doctor
from polyglot_jax.studies import catalog, preflight
from polyglot_jax.studies.grid import select
from polyglot_jax.studies.plan import Options, Planner
from polyglot_jax.testing import study_fixtures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study_data")
    study_fixtures.write_fixture_data(folder, "quick")
    return folder


def _planner(tmp_path, data_dir):
    study = catalog.STUDIES["pinch"]
    options = Options(root=str(tmp_path / "root"), quick=True, data_dir=str(data_dir))
    return Planner(study, options), select(study, None, True)


def test_quick_study_framing_passes(tmp_path, data_dir):
    planner, conditions = _planner(tmp_path, data_dir)
    rendered, checks = preflight.framing(planner, conditions[0])
    assert "«" in rendered
    assert not [c for c in checks if c.status == doctor.FAIL], checks
    preflight.check_framing(planner, conditions)


def test_a_failed_check_stops_the_study(tmp_path, data_dir, monkeypatch):
    planner, conditions = _planner(tmp_path, data_dir)
    failed = [doctor.Check("assistant_mask", doctor.FAIL, "none of 9 tokens is in the loss mask")]
    monkeypatch.setattr(preflight, "framing", lambda *_: ("", failed))
    with pytest.raises(ConfigError, match="assistant_mask: none of 9 tokens"):
        preflight.check_framing(planner, conditions)
