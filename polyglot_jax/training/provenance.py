"""``<run>/provenance.json``: what a run was trained on, recorded when it starts.

The record names the training mixture and its chat datasets, the pinned source of each
dataset that ``data fetch`` downloads (repository and revision), the SHA-256 of every data file
the mixture's tasks read, the project version (and the git commit of a checkout) and the
installed package versions (as ``pip freeze`` lists them). It is written atomically on process
0; a resumed run rewrites it and logs a warning when a data file changed since the previous
start.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import pathlib
from typing import Any

import seqio

from polyglot_jax import storage
from polyglot_jax.data import chat_tasks, fetch_sources, pipeline, study_data
from polyglot_jax.errors import RunDirError

log = logging.getLogger(__name__)

PROVENANCE = "provenance.json"
PROJECT = "polyglot_jax"
CHUNK = 1 << 20


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file (local or ``gs://``), read in chunks."""
    digest = hashlib.sha256()
    with storage.as_path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def task_names(mixture_or_task_name: str) -> list[str]:
    """The tasks of a mixture (a task: itself)."""
    found = pipeline.get_mixture_or_task(mixture_or_task_name)
    if isinstance(found, seqio.Mixture):
        return sorted(t.name for t in found.tasks)
    return [found.name]


def _files_of(dataset: chat_tasks.ChatDataset, split: str, lang: str) -> list[Any]:
    if dataset.name in study_data.DATASETS:
        return list(study_data.files(dataset.name, split, lang))
    return [dataset.files[(split, lang)]]


def _datasets_in(fn: Any, depth: int = 0) -> list[chat_tasks.ChatDataset]:
    """The chat datasets a task's records function reads (found in its closure or partial)."""
    if isinstance(fn, chat_tasks.ChatDataset):
        return [fn]
    if depth > 3 or fn is None:
        return []
    inner = [getattr(fn, "func", None), *getattr(fn, "args", ()), getattr(fn, "__self__", None)]
    cells = getattr(fn, "__closure__", None) or ()
    inner += [c.cell_contents for c in cells if c.cell_contents is not fn]
    return [d for x in inner if x is not None for d in _datasets_in(x, depth + 1)]


def data_files(mixture_or_task_name: str) -> dict[str, list[dict[str, str]]]:
    """``{dataset: [{"split", "lang", "path"}, ...]}`` of the files the mixture's tasks read.

    A task's chat dataset is the one its records function reads (registered datasets and
    recipe mixtures alike); the languages are those of its tasks (``<name>_<lang>`` or
    ``<mixture>.<lang>``). Tasks with no chat dataset (no file list known) are left out.
    """
    out: dict[str, list[dict[str, str]]] = {}
    seen = set()
    for name in task_names(mixture_or_task_name):
        task = seqio.TaskRegistry.get(name)
        lang = name.rpartition(".")[2] if "." in name else name.rpartition("_")[2]
        records_fn = getattr(task.source, "_records_fn", None)
        for dataset in _datasets_in(records_fn):
            for split, file_lang in sorted(dataset.files):
                if file_lang != lang or (dataset.name, split, lang) in seen:
                    continue
                seen.add((dataset.name, split, lang))
                for path in _files_of(dataset, split, lang):
                    row = {"split": split, "lang": lang, "path": os.fspath(path)}
                    out.setdefault(dataset.name, []).append(row)
    return out


def pins(datasets: list[str]) -> dict[str, dict[str, str]]:
    """The pinned source of each dataset ``data fetch`` downloads: ``{split: repo@revision}``."""
    out = {}
    for name in datasets:
        sources = fetch_sources.SOURCES.get(name)
        if sources:
            out[name] = {split: f"{s.repo}@{s.revision}/{s.path}" for split, s in sources.items()}
    return out


def packages() -> dict[str, str]:
    """Installed distributions and their versions, like ``pip freeze``."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def project_version() -> str:
    """The installed version of the project ("unknown" when it is not installed)."""
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def source_commit() -> str | None:
    """The git commit of the project's checkout (None: not run from a git checkout)."""
    git = pathlib.Path(__file__).resolve().parents[2] / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0]
    except OSError:
        return None
    return None


def collect(mixture_or_task_name: str) -> dict[str, Any]:
    """The provenance record of a run trained on ``mixture_or_task_name``."""
    files = data_files(mixture_or_task_name)
    for rows in files.values():
        for row in rows:
            row["sha256"] = sha256(row["path"])
    return {
        "mixture_or_task_name": mixture_or_task_name,
        "tasks": task_names(mixture_or_task_name),
        "datasets": sorted(files),
        "pins": pins(sorted(files)),
        "data_files": files,
        "project_version": project_version(),
        "source_commit": source_commit(),
        "packages": packages(),
    }


def _hashes(record: dict[str, Any]) -> dict[str, str]:
    rows = [r for rs in record.get("data_files", {}).values() for r in rs]
    return {r["path"]: r.get("sha256", "") for r in rows}


def record(run_dir: str | os.PathLike, mixture_or_task_name: str) -> dict[str, Any]:
    """Writes ``<run_dir>/provenance.json`` atomically; returns the record.

    A previous record (a resumed run) whose data files differ is reported in the log.
    """
    path = storage.as_path(run_dir) / PROVENANCE
    value = collect(mixture_or_task_name)
    if path.exists():
        previous = storage.read_json_object(path, RunDirError)
        changed = sorted(p for p, h in _hashes(value).items() if _hashes(previous).get(p, h) != h)
        if changed:
            log.warning("%s: data files changed since the run started: %s", run_dir, changed)
    storage.write_json(path, value)
    return value


def read(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """A run's provenance record, or None when it has none."""
    path = storage.as_path(run_dir) / PROVENANCE
    return storage.read_json_object(path, RunDirError) if path.exists() else None
