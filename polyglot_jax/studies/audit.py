"""The study report's sections on what a reviewer needs to trust it: provenance, costs and
contamination.

:func:`lines` gives them for the runs under a study root: each run's ``provenance.json``
(:mod:`~polyglot_jax.training.provenance`), the cost table of the judge and translation
requests and the accelerator time of the stages (:mod:`~polyglot_jax.studies.costs`,
:mod:`~polyglot_jax.studies.compute`; prices from ``$POLYGLOT_JAX_PRICES``, else
``<root>/prices.json``, else the example table) and the contamination check
(:mod:`~polyglot_jax.studies.contamination`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from polyglot_jax import storage
from polyglot_jax.studies import compute, contamination, costs
from polyglot_jax.studies.grid import Condition
from polyglot_jax.training import provenance

ENV_PRICES = "POLYGLOT_JAX_PRICES"
PRICES = "prices.json"
KEY_PACKAGES = ("jax", "flax", "optax", "seqio", "tensorflow")


def _data_digest(record: dict[str, Any]) -> tuple[int, str]:
    """The number of data files and one SHA-256 over their paths' hashes (12 characters)."""
    rows = [r for rs in record.get("data_files", {}).values() for r in rs]
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r["path"]):
        digest.update(f"{os.path.basename(row['path'])}:{row.get('sha256', '')}\n".encode())
    return len(rows), digest.hexdigest()[:12]


def provenance_lines(runs: Sequence[tuple[str, Any]]) -> list[str]:
    """The provenance section: one row per run (``(name, run_dir)``)."""
    lines = [
        "## Provenance",
        "",
        "From each run's `provenance.json`: data files (count and one hash over their SHA-256), "
        "pinned sources, project and key package versions.",
        "",
        "| run | datasets | data files | data hash | pins | version | packages |",
        "|---|---|---:|---|---|---|---|",
    ]
    for name, run_dir in runs:
        record = provenance.read(run_dir)
        if record is None:
            lines.append(f"| {name} | no provenance.json | | | | | |")
            continue
        count, digest = _data_digest(record)
        pins = "; ".join(
            f"{d}: {', '.join(sorted(set(v.values())))}" for d, v in record.get("pins", {}).items()
        )
        packages = {k.lower(): v for k, v in record.get("packages", {}).items()}
        shown = ", ".join(f"{p} {packages[p]}" for p in KEY_PACKAGES if p in packages)
        commit = record.get("source_commit")
        version = str(record.get("project_version", "?")) + (f" ({commit[:10]})" if commit else "")
        lines.append(
            f"| {name} | {', '.join(record.get('datasets', []))} | {count} | {digest} "
            f"| {pins or '-'} | {version} | {shown} |"
        )
    return [*lines, ""]


def prices_file(root: Any) -> str | None:
    """``$POLYGLOT_JAX_PRICES``, else ``<root>/prices.json`` when it exists, else None."""
    if os.environ.get(ENV_PRICES):
        return os.environ[ENV_PRICES]
    path = storage.as_path(root) / PRICES
    return os.fspath(path) if storage.is_local(path) and path.exists() else None


def lines(
    root: str | os.PathLike | Mapping[str, str], conditions: Sequence[Condition]
) -> list[str]:
    """Provenance, cost, accelerator and contamination sections of the runs under ``root``
    (none when no run folder is there), or of several roots (``{root: label}``, a report of
    several models: runs named ``<label>/<run>``, a contamination table per root; prices
    from ``$POLYGLOT_JAX_PRICES`` or the first root's ``prices.json``)."""
    labelled = dict(root) if isinstance(root, Mapping) else {os.fspath(root): ""}
    runs, checks = [], []
    for path, label in labelled.items():
        root_path = storage.as_path(path)
        prefix = f"{label}/" if label else ""
        found = [(prefix + c.name, root_path / c.name) for c in conditions]
        runs += [(name, run_dir) for name, run_dir in found if run_dir.is_dir()]
        checks.append((label, contamination.read(path)))
    if not runs:
        return []
    prices = prices_file(next(iter(labelled)))
    out = [
        *provenance_lines(runs),
        *costs.section([d for _, d in runs], prices).splitlines(),
        *compute.section(runs, prices).splitlines(),
        "",
    ]
    for label, result in checks:
        section = contamination.markdown(result).splitlines()
        if label:
            section[0] += f": {label}"
        out += [*section, ""]
    return out
