"""Several roots of one study in one report: each root's model, and the runs renamed apart.

The papers compare base models (Polyglots: Llama 2 7B, 70B and Falcon 7B; Better Alpaca: BLOOM
and Pythia sizes); ``polyglot-jax study run`` trains one model per ``--root``. A report over
several roots labels each root by its model, read from what its runs recorded:

1. the model gin file of the run's recorded train command (``study_state.json``), e.g.
   ``models/llama2_7b.gin`` → ``llama2_7b``;
2. else the run's ``model_config.json``: its family and approximate size, e.g. ``llama_6.7b``;
3. else the root's folder name.

Two roots with the same label are told apart by their folder names. Every run is then named
``<label>/<run>`` and every series ``<label> <series>``, so each table has a row and each figure
a line or bar per model and condition.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Mapping, Sequence

from etils import epath

from polyglot_jax import storage
from polyglot_jax.errors import ConfigError
from polyglot_jax.models import DecoderConfig
from polyglot_jax.studies.grid import Condition, Study
from polyglot_jax.studies.plan import read_state

MODEL_CONFIG = "model_config.json"  # training.runs.MODEL_CONFIG; read without loading a model
LISTING = "study.json"  # written by the study runner: the study's name and its runs
OUTPUTS = ("judge", "structured")  # a run with either can be reported


def _model_file(command: str) -> str | None:
    files = [a.split("=", 1)[1] for a in shlex.split(command) if a.startswith("--gin_file=")]
    return files[0] if files else None  # the planner passes the model file first


def approximate_parameters(config: DecoderConfig) -> int:
    """The decoder's parameter count from its shapes (norms and biases left out)."""
    attention = (
        config.embed_dim * config.head_dim * (2 * config.num_heads + 2 * config.num_kv_heads)
    )
    mlp = (3 if config.activation == "swiglu" else 2) * config.embed_dim * config.mlp_dim
    embeddings = (1 if config.tie_embeddings else 2) * config.vocab_size * config.embed_dim
    return config.num_layers * (attention + mlp) + embeddings


def _size(parameters: int) -> str:
    if parameters >= 1e9:
        return f"{parameters / 1e9:.1f}b"
    return f"{parameters / 1e6:.0f}m" if parameters >= 1e6 else f"{parameters / 1e3:.0f}k"


def run_model(run_dir: epath.Path) -> str | None:
    """The model of one run (the module docstring's order), or None when it recorded none."""
    command = read_state(run_dir).get("commands", {}).get("train")
    if command and (model := _model_file(command)):
        return model.rsplit("/", 1)[-1].removesuffix(".gin")
    path = run_dir / MODEL_CONFIG
    if path.exists():
        try:
            config = DecoderConfig.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError, ConfigError):
            return None
        return f"{config.family}_{_size(approximate_parameters(config))}"
    return None


def check_root(study: Study, root: epath.Path, conditions: Sequence[Condition]) -> None:
    """Refuses a root of another study, or one without any of ``conditions``' outputs.

    Raises:
      ConfigError: one line naming the root.
    """
    listing = root / LISTING
    if listing.exists():
        other = json.loads(listing.read_text()).get("study")
        if other != study.name:
            raise ConfigError(f"root {root} holds study {other!r}, not {study.name!r}")
    if not any((root / c.name / folder).is_dir() for c in conditions for folder in OUTPUTS):
        raise ConfigError(
            f"root {root} has no judged or benchmarked run of study {study.name!r} "
            f"(looked for {', '.join(c.name for c in conditions[:3])}, ...)"
        )


def labels(study: Study, roots: Sequence[str], conditions: Sequence[Condition]) -> dict[str, str]:
    """``root → label`` (its model) for roots that each hold ``study``'s runs.

    Raises:
      ConfigError: a root given twice, of another study, or without the study's runs.
    """
    paths = [storage.as_path(r) for r in roots]
    if len({str(p) for p in paths}) != len(paths):
        raise ConfigError(f"a root is given twice: {', '.join(roots)}")
    found = {}
    for root, path in zip(roots, paths, strict=True):
        check_root(study, path, conditions)
        models = (run_model(path / c.name) for c in conditions)
        found[root] = next((m for m in models if m), None) or path.name
    counts = {label: list(found.values()).count(label) for label in found.values()}
    return {
        root: label if counts[label] == 1 else f"{label} ({storage.as_path(root).name})"
        for root, label in found.items()
    }


def relabel(condition: Condition, label: str) -> Condition:
    """``condition`` as run ``<label>/<name>`` in series ``<label> <series>``."""
    series = f"{label} {condition.series}".strip()
    return dataclasses.replace(condition, name=f"{label}/{condition.name}", series=series)


def relabel_rows(rows: Sequence[Mapping], label: str) -> list[dict]:
    """Judgment or answer rows with their run named ``<label>/<run>``."""
    return [{**row, "run": f"{label}/{row['run']}"} for row in rows]
