"""A study's differences from its paper, read from ``gin_configs/studies/<study>/FIDELITY.md``.

Each FIDELITY table row names an element of the paper, its source, where it is set and its
status: ``same``, a ``deviation`` (with the reason) or ``assumed`` (neither the paper nor its
release says). The study report lists every row that is not ``same``, so no number is read
without the differences behind it.
"""

from __future__ import annotations

import importlib.resources

NOT_SAME = ("deviation", "assumed", "not ")


def rows(study: str) -> list[dict[str, str]]:
    """The FIDELITY table of ``study`` as dicts keyed by its header (none for the demo studies)."""
    path = importlib.resources.files("gin_configs") / "studies" / study / "FIDELITY.md"
    if not path.is_file():
        return []
    table = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    if not table:
        return []
    header, *body = table
    return [dict(zip(header, cells, strict=False)) for cells in body]


def lines(study: str) -> list[str]:
    """Markdown lines: each element whose status is not ``same``, with where it is set."""
    different = [
        row for row in rows(study) if any(word in row.get("status", "") for word in NOT_SAME)
    ]
    if not different:
        return []
    out = [
        "## Differences from the paper",
        "",
        f"From gin_configs/studies/{study}/FIDELITY.md (every element, its source and status):",
        "",
    ]
    out += [f"- {r['element']}: {r['status']} (here: {r['set here']})" for r in different]
    return out
