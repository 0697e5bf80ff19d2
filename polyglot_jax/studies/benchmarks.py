"""A study run's structured benchmarks, as ``polyglot-jax eval`` scores them.

Writes ``<run>/structured/<task>.jsonl``, ``metrics.json`` and ``structured.jsonl`` (the rows
the report reads) through the benchmark registry and scoring functions. The vocabulary is the
one the study's data was encoded with: the base model's tokenizer, or the demo vocabulary for a
run trained from scratch.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Mapping, Sequence

from etils import epath

from polyglot_jax import storage
from polyglot_jax.data import vocab
from polyglot_jax.errors import MissingFileError
from polyglot_jax.evaluation.benchmarks import registry, scoring
from polyglot_jax.inference import model as model_lib
from polyglot_jax.training import runs

log = logging.getLogger(__name__)


def evaluate_run(
    run_dir: epath.Path,
    tasks: Mapping[str, Sequence[str]],
    data_dir: str,
    base: str | None = None,
    limit: int | None = None,
    split: str | None = None,
) -> epath.Path:
    """Scores ``run_dir`` on each benchmark of ``tasks`` in its languages (benchmark →
    languages) and ``split`` (None: each benchmark's own, X-CSQA's labelled validation split);
    returns ``structured/metrics.json``.

    Raises:
      MissingFileError: the benchmark data folder or one of its files is missing.
      ConfigError: a benchmark that does not support a language.
    """
    benchmarks = registry.check_tasks(tasks)
    if not pathlib.Path(data_dir).is_dir():
        raise MissingFileError(f"benchmark data folder {data_dir} does not exist")
    registered = [
        (scoring.register_task(b.name, lang, data_dir, registry.Options()), split or b.split)
        for b, langs in benchmarks
        for lang in langs
    ]
    for task, task_split in registered:  # every file is read (and checked) before the model loads
        scoring.check_split(task, task_split)
        scoring.task_items(task, task_split)
    model = model_lib.LanguageModel.load(run_dir, model_lib.inference_mesh((1, -1, 1)))
    vocabulary = runs.load_vocabulary(base) if base else vocab.demo_vocabulary()
    out = run_dir / "structured"
    results, rows = {}, []
    for task, task_split in registered:
        metrics, task_rows = scoring.run_task(
            task.name, task_split, model, None, vocabulary, limit=limit
        )
        scoring.write_rows(out / f"{task.name}.jsonl", task_rows)
        results[task.name] = metrics
        rows += [{**row, "run": run_dir.name} for row in task_rows]
        log.info("%s %s: %s", run_dir.name, task.name, metrics)
    scoring.write_rows(out / "structured.jsonl", rows)
    storage.write_json(out / "metrics.json", results)  # last: it marks the stage complete
    return out / "metrics.json"
