"""Reference-based metrics and summary statistics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sacrebleu


def chrf(hypothesis: str, reference: str) -> float:
    """Sentence chrF (0-100) of one response against one reference (sacrebleu defaults)."""
    return float(sacrebleu.sentence_chrf(hypothesis, [reference]).score)


def bootstrap_ci(
    values: Sequence[float], num_samples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` interval of the mean."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, (num_samples, data.size))].mean(axis=1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))
