"""Accelerator time of a study's runs: device-seconds per run and stage, and their price.

Every stage that runs on accelerators (train, infer, benchmarks) records, when it ends, the
devices its process used (:func:`record_devices`: platform, device kind and the global device
count, in the run's ``study_state.json`` under ``devices``); the runner records each stage's
wall-clock interval beside it (``intervals``). Device-seconds are the interval's length times
the device count. A price per device-hour may be given in the price table
(:mod:`~polyglot_jax.studies.costs`) under ``devices``, matched like the models: by the exact
device kind, else by the longest listed name it starts with::

  {"devices": {"NVIDIA H100": 2.5, "TPU v5 lite": 1.2, "cpu": 0.0}}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax

from polyglot_jax.studies import costs
from polyglot_jax.studies.plan import read_state, write_state

ON_ACCELERATOR = ("train", "infer", "benchmarks")


def describe_devices() -> dict[str, Any]:
    """This process's devices: ``platform`` (cpu/gpu/tpu), ``kind`` (the first device's
    ``device_kind``), ``count`` (every process's devices) and ``processes``."""
    device = jax.local_devices()[0]
    return {
        "platform": device.platform,
        "kind": device.device_kind,
        "count": jax.device_count(),
        "processes": jax.process_count(),
    }


def record_devices(run_dir: Any, stage: str) -> None:
    """Writes the devices ``stage`` ran on into the run's ``study_state.json`` (process 0 of
    a multi-host stage only: the count is global)."""
    if stage not in ON_ACCELERATOR or jax.process_index() != 0:
        return
    devices = {**read_state(run_dir).get("devices", {}), stage: describe_devices()}
    write_state(run_dir, devices=devices)


@dataclasses.dataclass(frozen=True)
class ComputeRow:
    """One accelerator stage of one run.

    Attributes:
      run: the run's name.
      stage: the stage (train, infer, benchmarks).
      node: where it ran (``local``, a Ray node's address).
      seconds: wall-clock seconds of the stage.
      kind: the device kind (``unknown`` when the stage recorded none).
      count: the devices it used (0 when unknown).
      cost: device-hours times the price table's price for ``kind`` (None: not priced).
    """

    run: str
    stage: str
    node: str
    seconds: float
    kind: str
    count: int
    cost: float | None

    @property
    def device_seconds(self) -> float:
        return self.seconds * self.count


def _price(prices: dict[str, float], kind: str) -> float | None:
    if kind in prices:
        return prices[kind]
    names = [name for name in prices if kind.startswith(name)]
    return prices[max(names, key=len)] if names else None


def compute_rows(
    runs: Sequence[tuple[str, Any]], device_prices: dict[str, float]
) -> list[ComputeRow]:
    """The accelerator stages of ``runs`` (``(name, run_dir)``), in run then stage order."""
    rows = []
    for name, run_dir in runs:
        state = read_state(run_dir)
        devices = state.get("devices", {})
        for stage in ON_ACCELERATOR:
            interval = state.get("intervals", {}).get(stage)
            if not interval:
                continue
            began, ended, node = (*interval, "local")[:3]
            used = devices.get(stage, {})
            kind, count = str(used.get("kind", "unknown")), int(used.get("count", 0))
            seconds = max(0.0, float(ended) - float(began))
            price = _price(device_prices, kind) if count else None
            cost = None if price is None else seconds * count / 3600 * price
            rows.append(ComputeRow(name, stage, str(node), seconds, kind, count, cost))
    return rows


def markdown(rows: Sequence[ComputeRow], prices: costs.Prices) -> str:
    """The accelerator section of a report: one table and the device-hours per kind."""
    lines = ["## Accelerator time", ""]
    if not rows:
        return "\n".join([*lines, "No accelerator stage has recorded its time yet.", ""])
    lines += [
        "Wall-clock seconds of each stage (the runner's record) times the devices it used; "
        f"prices per device-hour from `{prices.source}` under `devices`.",
        "",
        f"| run | stage | node | seconds | devices | device-seconds | cost ({prices.currency}) |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        devices = f"{r.count} × {r.kind}" if r.count else "unknown"
        cost = "n/a" if r.cost is None else f"{r.cost:.4f}"
        lines.append(
            f"| {r.run} | {r.stage} | {r.node} | {r.seconds:.1f} | {devices} "
            f"| {r.device_seconds:.1f} | {cost} |"
        )
    hours: dict[str, float] = {}
    for r in rows:
        hours[r.kind] = hours.get(r.kind, 0.0) + r.device_seconds / 3600
    lines += ["", "Device-hours: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(hours.items()))]
    return "\n".join([*lines, ""])


def section(runs: Sequence[tuple[str, Any]], prices: str | os.PathLike | None = None) -> str:
    """The accelerator section of ``runs`` (``(name, run_dir)``)."""
    table = costs.load_prices(prices)
    return markdown(compute_rows(runs, table.devices), table)
