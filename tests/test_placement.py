"""``placement``: its cache of jitted functions stays within its bound."""

from __future__ import annotations

import numpy as np

from polyglot_jax.runtime import placement


def _scaled(model: object, params: np.ndarray, x: np.ndarray, factor: int = 1) -> np.ndarray:
    """A stand-in for a decoding function: ``x * params * factor``, ``factor`` static."""
    del model
    return x * params * factor


def test_jit_cache_is_bounded() -> None:
    """More static settings than the bound: the cache holds at most the bound, the latest kept."""
    bound = placement.JIT_CACHE_SIZE
    assert placement._jitted.cache_info().maxsize == bound
    x = np.arange(3, dtype=np.float32)[:, None]  # [batch, 1]
    out = placement.run(_scaled, None, np.float32(2), [x], [], None, None, factor=3)
    np.testing.assert_array_equal(out, x * 6)
    for factor in range(bound + 8):  # jit wrappers are built lazily: nothing compiles here
        placement._jitted(_scaled, None, None, None, (2,), 0, 2, (("factor", factor),))
        assert placement._jitted.cache_info().currsize <= bound
    assert placement._jitted.cache_info().currsize == bound
    before = placement._jitted.cache_info().hits
    placement._jitted(_scaled, None, None, None, (2,), 0, 2, (("factor", bound + 7),))
    assert placement._jitted.cache_info().hits == before + 1  # the most recent one is kept
