"""``provenance.json``: the data files a run read, their hashes, pins and package versions."""

from __future__ import annotations

import hashlib
import json

from polyglot_jax.training import provenance


def test_record_hashes_every_file_the_mixture_reads(demo_tasks, tmp_path):
    value = provenance.record(tmp_path, "demo_pinch")
    written = json.loads((tmp_path / provenance.PROVENANCE).read_text())
    assert written == value
    assert value["datasets"] == ["demo"]
    rows = value["data_files"]["demo"]
    assert rows and {r["lang"] for r in rows} >= {"en"}
    for row in rows:
        with open(row["path"], "rb") as f:
            assert row["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert "jax" in {name.lower() for name in value["packages"]}
    assert value["project_version"]
    commit = value["source_commit"]
    assert commit is None or len(commit) == 40
    assert provenance.read(tmp_path) == value


def test_pins_name_the_fetched_revision():
    pins = provenance.pins(["lima", "not_fetched"])
    assert list(pins) == ["lima"]
    assert all("@" in source for source in pins["lima"].values())
