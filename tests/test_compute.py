"""Accelerator time per run and stage: recorded devices, wall-clock intervals, device-hours."""

from __future__ import annotations

import json

import jax
import pytest

from polyglot_jax.errors import ConfigError
from polyglot_jax.studies import compute, costs
from polyglot_jax.studies.plan import read_state, write_state


def test_stages_record_their_devices_and_the_table_prices_them(tmp_path):
    run = tmp_path / "en_only"
    run.mkdir()
    write_state(run, intervals={"train": [100.0, 460.0, "10.0.0.2"], "judge": [460.0, 500.0]})
    compute.record_devices(run, "train")
    compute.record_devices(run, "judge")  # not an accelerator stage: nothing recorded
    devices = read_state(run)["devices"]
    assert list(devices) == ["train"]
    assert devices["train"]["count"] == jax.device_count()
    assert devices["train"]["platform"] == jax.devices()[0].platform
    write_state(run, devices={"train": {"kind": "NVIDIA H100 80GB HBM3", "count": 8}})
    write_state(run, intervals={**read_state(run)["intervals"], "infer": [500.0, 530.0]})
    (row, unknown) = compute.compute_rows(
        [("en_only", run)], {"NVIDIA H100": 2.5, "NVIDIA H100 80GB": 3.0}
    )
    assert (row.stage, row.node, row.seconds, row.count) == ("train", "10.0.0.2", 360.0, 8)
    assert row.device_seconds == 2880.0
    assert row.cost == pytest.approx(2880 / 3600 * 3.0)  # the longest matching name
    assert (unknown.stage, unknown.node, unknown.count, unknown.cost) == ("infer", "local", 0, None)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {}, "devices": {"NVIDIA H100": 2.5}}))
    text = compute.section([("en_only", run)], prices)
    assert (
        "| en_only | train | 10.0.0.2 | 360.0 | 8 × NVIDIA H100 80GB HBM3 | 2880.0 | 2.0000 |"
        in text
    )
    assert "| en_only | infer | local | 30.0 | unknown | 0.0 | n/a |" in text
    assert "NVIDIA H100 80GB HBM3 0.8000" in text
    assert "No accelerator stage" in compute.section([("x", tmp_path / "x")])


def test_device_prices_must_be_numbers(tmp_path):
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"models": {}, "devices": {"TPU v4": "cheap"}}))
    with pytest.raises(ConfigError, match="'devices' maps a device kind"):
        costs.load_prices(bad)
    assert costs.load_prices().devices["NVIDIA H100"] == 2.5
