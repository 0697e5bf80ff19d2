"""The judge stage and what it reports: judges, metrics, benchmarks and the report.

Language identification (:mod:`~polyglot_jax.evaluation.langid`), reference and surface metrics,
the judges (:mod:`~polyglot_jax.evaluation.judges`: the language judge and LLM judges with their
protocols), the structured benchmarks and the per-language report.
"""
