"""Hugging Face ``datasets`` and TFDS as chat data: materialised once to JSONL, then read.

Both loaders write the split to ``<cache>/hub/<key>.jsonl`` (reused on later runs) and the
matching :mod:`formats` reader turns rows into ``{id, lang, messages}``, so validation, error
messages (``file:line`` of the cached file) and skipping behave exactly as for local files.
``datasets`` works offline from local files and its own cache (``HF_DATASETS_OFFLINE=1``).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from collections.abc import Iterable

import numpy as np

from polyglot_jax.data import vocab


def _cache_path(*key: object) -> pathlib.Path:
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:16]
    return vocab.cache_dir() / "hub" / f"{digest}.jsonl"


def _write_rows(rows: Iterable[dict], path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def hf_split(
    path_or_name: str,
    split: str = "train",
    name: str | None = None,
    data_files: str | list[str] | dict | None = None,
) -> pathlib.Path:
    """A ``datasets.load_dataset`` split as a local JSONL file (materialised once).

    Args:
      path_or_name: a hub name (``"databricks/databricks-dolly-15k"``) or a builder such as
        ``"json"``/``"parquet"`` with ``data_files``.
      split: the split to read.
      name: the dataset configuration.
      data_files: local files for the ``json``/``parquet``/``csv`` builders.
    """
    path = _cache_path("hf", path_or_name, split, name, data_files)
    if path.exists():
        return path
    import datasets

    ds = datasets.load_dataset(path_or_name, name, data_files=data_files, split=split)
    return _write_rows(iter(ds), path)


def tfds_split(name: str, split: str = "train", data_dir: str | None = None) -> pathlib.Path:
    """A TFDS split as a local JSONL file (strings decoded, materialised once)."""
    path = _cache_path("tfds", name, split, data_dir)
    if path.exists():
        return path
    import tensorflow_datasets as tfds

    ds = tfds.load(name, split=split, data_dir=data_dir, download=False)
    return _write_rows(tfds.as_numpy(ds), path)
