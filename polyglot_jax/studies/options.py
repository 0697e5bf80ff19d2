"""How a study is run: the flags of ``polyglot-jax study run``, as one frozen value."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Options:
    """How a study is run (the flags of ``polyglot-jax study run``).

    Attributes:
      root: parent folder of the runs (``<root>/<condition>``) and of the report.
      base: the Hugging Face base model (``INITIAL_CHECKPOINT_PATH``, ``VOCABULARY_PATH``).
      model: the model file (default: the study's, or ``models/tiny.gin`` with ``quick``).
      judge: ``openai:MODEL@URL`` or ``local:CHECKPOINT`` (None: language ID only).
      data_dir: the study datasets' folder (``DATA_DIR``; None: ``$POLYGLOT_JAX_DATA_DIR``).
      benchmark_data: the structured benchmarks' folder.
      benchmarks: run the structured benchmarks.
      benchmark_limit: first N items of each benchmark task.
      quick: the study's quick conditions at the tiniest size.
      bindings: extra ``NAME=VALUE`` gin bindings, each given to every stage that takes
        ``NAME`` (:meth:`Planner.stage_bindings`).
      judge_concurrency: judge requests in flight.
      allow_partial: report a study whose judge or benchmark stages left failed items (with a
        warning) instead of stopping before the report.
      pretraining_shares: TSV of the base model's pretraining share per language for the
        report's correlations (:mod:`~polyglot_jax.evaluation.analysis`; None: Llama 2's).
    """

    root: str
    base: str | None = None
    model: str | None = None
    judge: str | None = None
    data_dir: str | None = None
    benchmark_data: str = "../shared/data"
    benchmarks: bool = True
    benchmark_limit: int | None = None
    quick: bool = False
    bindings: tuple[str, ...] = ()
    judge_concurrency: int = 16
    allow_partial: bool = False
    pretraining_shares: str | None = None
