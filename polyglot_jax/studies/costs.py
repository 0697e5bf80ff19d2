"""What the judge and translation requests cost: a table per run, language and stage.

Token counts come from the ``usage`` tables of the judge and translation cache files
(:mod:`polyglot_jax.clients.usage`: the API's ``usage`` of every answered request, stored with
the cached result). Prices come from a user-editable JSON file (:data:`EXAMPLE_PRICES` has a
few models with example prices, labelled as examples)::

  {"currency": "USD", "per_tokens": 1000000,
   "models": {"gpt-4o": {"input": 2.5, "output": 10.0}}}

A model is priced by its exact name, else by the longest listed name it starts with
(``gpt-4o-2024-08-06`` → ``gpt-4o``); an unlisted model's cost is shown as ``n/a``. Google
Translate reports the characters it bills (``google-translate/<model>``, priced per
``per_tokens`` characters); their count is marked ``characters`` in the table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

from polyglot_jax import storage
from polyglot_jax.clients import usage
from polyglot_jax.errors import ConfigError

EXAMPLE_PRICES = pathlib.Path(__file__).with_name("prices.example.json")
CACHE_FILES = "*.sqlite"  # judge and translation cache files under a run directory


@dataclasses.dataclass(frozen=True)
class Prices:
    """Prices per ``per_tokens`` tokens, by model.

    Attributes:
      models: ``{model: (input price, output price)}``.
      currency: the prices' currency.
      per_tokens: how many tokens a price is for.
      source: the file they were read from.
      example: whether they are the shipped example prices.
      devices: price per device-hour by device kind (:mod:`~polyglot_jax.studies.compute`).
    """

    models: dict[str, tuple[float, float]]
    currency: str = "USD"
    per_tokens: int = 1_000_000
    source: str = ""
    example: bool = False
    devices: dict[str, float] = dataclasses.field(default_factory=dict)

    def price(self, model: str) -> tuple[float, float] | None:
        """``(input, output)`` price of ``model``: its own, else the longest prefix's."""
        if model in self.models:
            return self.models[model]
        names = [name for name in self.models if model.startswith(name)]
        return self.models[max(names, key=len)] if names else None


def load_prices(path: str | os.PathLike | None = None) -> Prices:
    """A price table (default: the example one).

    Raises:
      ConfigError: the file is missing, not JSON, or a price is not a number (named).
    """
    path = pathlib.Path(path) if path else EXAMPLE_PRICES
    if not path.is_file():
        raise ConfigError(f"price table {path} does not exist")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"price table {path}: not JSON ({e})") from None
    models = value.get("models") if isinstance(value, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(f"price table {path}: expected an object with 'models'")
    table = {}
    for name, entry in models.items():
        prices = [entry.get(k) if isinstance(entry, dict) else None for k in ("input", "output")]
        if not all(isinstance(p, int | float) and p >= 0 for p in prices):
            raise ConfigError(f"price table {path}: {name!r} needs numeric 'input' and 'output'")
        table[name] = (float(prices[0]), float(prices[1]))
    devices = value.get("devices", {})
    if not isinstance(devices, dict) or not all(
        isinstance(p, int | float) and p >= 0 for p in devices.values()
    ):
        raise ConfigError(f"price table {path}: 'devices' maps a device kind to a price per hour")
    per_tokens = value.get("per_tokens", 1_000_000)
    if not isinstance(per_tokens, int) or per_tokens < 1:
        raise ConfigError(f"price table {path}: per_tokens must be a positive integer")
    return Prices(
        table,
        str(value.get("currency", "USD")),
        per_tokens,
        str(path),
        path == EXAMPLE_PRICES,
        {str(kind): float(price) for kind, price in devices.items()},
    )


@dataclasses.dataclass
class CostRow:
    """Requests, tokens and cost of one run, language, stage and model."""

    run: str
    lang: str
    stage: str
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    unit: str = "tokens"


def cost_rows(rows: Iterable[dict[str, Any]], prices: Prices) -> list[CostRow]:
    """Usage rows (:func:`usage.read`) summed per run, language, stage and model, and priced."""
    out: dict[tuple[str, str, str, str], CostRow] = {}
    for row in rows:
        key = (row["run"] or "", row["lang"] or "", row["stage"] or "", row["model"] or "")
        unit = "characters" if key[3].startswith(usage.CHARACTER_BILLED) else "tokens"
        entry = out.setdefault(key, CostRow(*key, unit=unit))
        entry.requests += 1
        entry.prompt_tokens += int(row["prompt_tokens"] or 0)
        entry.completion_tokens += int(row["completion_tokens"] or 0)
    for entry in out.values():
        price = prices.price(entry.model)
        if price is not None:
            spent = entry.prompt_tokens * price[0] + entry.completion_tokens * price[1]
            entry.cost = spent / prices.per_tokens
    return [out[k] for k in sorted(out)]


def usage_rows(folders: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """The usage rows of every cache file under ``folders`` (local folders; others are skipped)."""
    rows = []
    for folder in folders:
        if not storage.is_local(folder) or not os.path.isdir(folder):
            continue
        for path in sorted(pathlib.Path(folder).rglob(CACHE_FILES)):
            rows += usage.read(path)
    return rows


def markdown(rows: Sequence[CostRow], prices: Prices) -> str:
    """The cost section of a report: one table and the total."""
    lines = ["## Costs", ""]
    if not rows:
        return "\n".join([*lines, "No judge or translation request reported token usage.", ""])
    note = " (EXAMPLE prices: edit the file or pass your own)" if prices.example else ""
    lines += [
        f"Token usage from the API's `usage`; prices per {prices.per_tokens:,} tokens from "
        f"`{prices.source}`{note}.",
        "",
        f"| run | lang | stage | model | requests | prompt tokens | completion tokens "
        f"| cost ({prices.currency}) |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cost = "n/a" if r.cost is None else f"{r.cost:.4f}"
        unit = "" if r.unit == "tokens" else f" {r.unit}"
        lines.append(
            f"| {r.run} | {r.lang} | {r.stage} | {r.model} | {r.requests} "
            f"| {r.prompt_tokens}{unit} | {r.completion_tokens} | {cost} |"
        )
    priced = [r.cost for r in rows if r.cost is not None]
    unpriced = sorted({r.model for r in rows if r.cost is None})
    total = f"{sum(priced):.4f} {prices.currency}"
    lines += ["", f"Total: {total}" + (f" (not priced: {', '.join(unpriced)})" if unpriced else "")]
    return "\n".join([*lines, ""])


def section(folders: Sequence[str | os.PathLike], prices: str | os.PathLike | None = None) -> str:
    """The cost section of the runs under ``folders``."""
    table = load_prices(prices)
    return markdown(cost_rows(usage_rows(folders), table), table)
