"""How a study is run: the flags of ``polyglot-jax study run``, as one frozen value."""

from __future__ import annotations

import ast
import dataclasses

from polyglot_jax.errors import ConfigError
from polyglot_jax.studies import slices


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
      seeds: run each condition once per seed (runs ``<condition>_seed<s>``, ``SEED = s`` in
        training and decoding); empty: once, with the gin files' seed.
      cluster: ``ray`` or ``ray://HOST:PORT``: run the grid on Ray
        (:mod:`~polyglot_jax.studies.cluster`); None: in this process.
      slice: each run's TPU slice on Ray (``v4-32``).
      gpus_per_host: each run's GPUs per host on Ray (0: none).
      hosts: each run's hosts on Ray (GPU runs).
      cpus_per_run: each run's CPUs on Ray (without a slice or GPUs).
      max_retries: times Ray runs a stage again whose worker died.
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
    seeds: tuple[int, ...] = ()
    cluster: str | None = None
    slice: str | None = None
    gpus_per_host: int = 0
    hosts: int = 1
    cpus_per_run: float = 1.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        """Refuses settings that would fail only at a later stage, hours into a study."""
        if isinstance(self.judge_concurrency, bool) or self.judge_concurrency < 1:
            raise ConfigError(f"--judge_concurrency must be >= 1, got {self.judge_concurrency}")
        if self.benchmark_limit is not None and self.benchmark_limit < 1:
            raise ConfigError(f"--benchmark_limit must be >= 1, got {self.benchmark_limit}")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ConfigError(f"--seeds must be distinct integers >= 0, got {self.seeds}")
        if self.max_retries < 0:
            raise ConfigError(f"--max_retries must be >= 0, got {self.max_retries}")
        if self.cluster is not None:
            slices.parse_cluster(self.cluster)
            slices.request(self.slice, self.gpus_per_host, self.hosts, self.cpus_per_run)
        for binding in self.bindings:
            name, _, value = binding.partition("=")
            if not _gin_value(value.strip()):
                raise ConfigError(
                    f"--gin.{name.strip()}={value.strip()}: not a value gin reads (a number, a "
                    f'quoted string such as \\"abc\\", a list, None, @configurable or %MACRO)'
                )


def _gin_value(text: str) -> bool:
    """Whether ``text`` is a Python literal or a gin reference (``@fn()``, ``%MACRO``)."""
    if text.startswith(("@", "%")):
        return True
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return True
