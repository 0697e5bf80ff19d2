"""One evaluation flow for ``polyglot-jax eval`` and a study's benchmark stage.

:func:`prepare` registers each (benchmark, language) task and reads every data file before a
model is loaded, so a missing or malformed file fails in seconds; :func:`evaluate` scores a
loaded :class:`~polyglot_jax.runtime.chat_model.ChatModel` on them and writes
``<out>/<task>.jsonl`` (one line per item), ``structured.jsonl`` (the rows ``polyglot-jax
report`` reads, each with its run name) and ``metrics.json``, last, since it marks the stage
complete. Every file is written atomically.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Mapping, Sequence

import seqio
from etils import epath

from polyglot_jax import storage
from polyglot_jax.errors import MissingFileError
from polyglot_jax.evaluation.benchmarks import registry, scoring
from polyglot_jax.runtime.chat_model import ChatModel

log = logging.getLogger(__name__)

Tasks = list[tuple[seqio.Task, str]]  # (task, split)


def prepare(
    tasks: Mapping[str, Sequence[str]],
    data_dir: str | pathlib.Path,
    options: registry.Options | None = None,
    split: str | None = None,
) -> Tasks:
    """Each benchmark language's task and split, every file read and checked.

    Args:
      tasks: benchmark → languages (:func:`registry.parse_tasks`).
      data_dir: the benchmark data folder (``../shared/data``).
      options: scoring options (XQuAD normalisation).
      split: the split of every task (None: each benchmark's own).

    Raises:
      MissingFileError: the data folder or one of its files is missing.
      ConfigError: an unknown benchmark, a language it lacks, or a missing split.
    """
    benchmarks = registry.check_tasks(tasks)
    if not pathlib.Path(data_dir).is_dir():
        raise MissingFileError(f"benchmark data folder {data_dir} does not exist (--data_dir)")
    options = options or registry.Options()
    prepared = [
        (scoring.register_task(b.name, lang, data_dir, options), split or b.split)
        for b, langs in benchmarks
        for lang in langs
    ]
    for task, task_split in prepared:
        scoring.check_split(task, task_split)
        scoring.task_items(task, task_split)
    return prepared


def evaluate(
    model: ChatModel,
    tasks: Tasks,
    out_dir: str | epath.Path,
    run: str,
    batch_size: int = 16,
    max_new_tokens: int = 32,
    limit: int | None = None,
) -> dict[str, dict[str, float]]:
    """Scores ``model`` on each task; returns task → metrics (also in ``metrics.json``).

    Args:
      model: the loaded model.
      tasks: :func:`prepare`'s tasks.
      out_dir: where the files go.
      run: the run's name in the report's rows.
      batch_size: requests per forward pass.
      max_new_tokens: answer length of generative tasks.
      limit: only the first items of each task (smoke runs).
    """
    out = storage.as_path(out_dir)
    results, rows = {}, []
    for task, split in tasks:
        metrics, task_rows = scoring.run_task(
            task.name, split, model, batch_size, max_new_tokens, limit
        )
        scoring.write_rows(out / f"{task.name}.jsonl", task_rows)
        results[task.name] = metrics
        rows += [{**row, "run": run} for row in task_rows]
        shown = ", ".join(f"{k} {v:.1f}" for k, v in metrics.items())
        log.info("%s %s %s: %s", run, task.name, split, shown)
    scoring.write_rows(out / "structured.jsonl", rows)
    storage.write_json(out / "metrics.json", results)  # last: it marks the stage complete
    return results
