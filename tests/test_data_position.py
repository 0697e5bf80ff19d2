"""The training stream's position: saved mid-stream, restored without re-reading the data."""

import numpy as np
import pytest

from polyglot_jax.data import pipeline, templates


def _batches(seed=1):
    return pipeline.train_batches("demo_pinch", {"targets": 64}, batch_size=4, seed=seed)


def _count_renders(monkeypatch) -> list[int]:
    calls: list[int] = []
    render = templates.render

    def counting(*args, **kwargs):
        calls.append(1)
        return render(*args, **kwargs)

    monkeypatch.setattr(templates, "render", counting)
    return calls


def test_restored_stream_continues_where_it_was_saved(tmp_path, demo_tasks, monkeypatch):
    first = _batches()
    for _ in range(7):
        next(first)
    first.save(tmp_path / "position")
    expected = [next(first) for _ in range(5)]

    calls = _count_renders(monkeypatch)
    resumed = _batches()
    resumed.restore(tmp_path / "position")
    got = [next(resumed) for _ in range(5)]
    for a, b in zip(expected, got, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not calls, "restoring re-rendered examples that were already consumed"

    fresh = _batches()
    next(fresh)
    assert calls, "the render counter does not see the pipeline"


def test_position_of_another_pipeline_is_refused(tmp_path, demo_tasks):
    first = _batches()
    next(first)
    first.save(tmp_path / "position")
    other = pipeline.train_batches("demo_en_only", {"targets": 32}, batch_size=2, seed=1)
    with pytest.raises(ValueError, match="cannot restore the data position"):
        other.restore(tmp_path / "position")
    with pytest.raises(ValueError, match="missing: cannot restore the data position"):
        other.restore(tmp_path / "missing")
