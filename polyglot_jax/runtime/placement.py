"""Jitted inference functions on a mesh: parameters by their logical axes, batches by rows.

Parameters take the shardings that training gives them (:func:`runs.abstract_params` through
``partitioning.logical_to_sharding``); arrays whose first axis is the batch are split over the
mesh axes of the logical ``batch`` axis, each process passing and getting back its own rows.
Without a mesh the same functions run on the default device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from polyglot_jax.models import Decoder
from polyglot_jax.training import partitioning, runs


def batch_sharding(mesh: Mesh, rules: partitioning.AxisRules, ndim: int) -> NamedSharding:
    """Sharding of a ``[batch, ...]`` array of rank ``ndim``: rows split as ``batch`` says."""
    spec = nn.logical_to_mesh_axes(("batch",) + (None,) * (ndim - 1), rules)
    return NamedSharding(mesh, PartitionSpec(*spec))


def batch_shards(mesh: Mesh | None, rules: partitioning.AxisRules | None) -> int:
    """Into how many parts ``mesh`` splits the rows of a batch (1 without a mesh)."""
    if mesh is None:
        return 1
    axes = batch_sharding(mesh, rules, 1).spec[0]
    axes = () if axes is None else (axes,) if isinstance(axes, str) else axes
    return int(np.prod([mesh.shape[a] for a in axes]))


def local_rows(rows: int, mesh: Mesh | None, rules: partitioning.AxisRules | None) -> int:
    """``rows`` rounded up to a multiple of this process's share of the batch shards."""
    multiple = max(1, batch_shards(mesh, rules) // jax.process_count()) if mesh else 1
    return max(multiple, -(-rows // multiple) * multiple)


def decode_options() -> dict[str, Any]:
    """XLA options for small-batch inference on CPU: plain Eigen dots instead of YNNPACK.

    A decode step is a chain of small [batch, embed] x [embed, n] dots; XLA:CPU's default
    YNNPACK dot fusions ran them ~1.3x slower than Eigen on 2 cores
    (``benchmarks/generate.py``). Other backends compile with their defaults.
    """
    if jax.default_backend() != "cpu":
        return {}
    return {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}


# How many jitted functions ``_jitted`` keeps: one per (function, model, mesh, argument ranks,
# static settings), each holding the executables compiled for it. A run needs a handful
# (generate, score, loss); a long-lived process that varies the static settings
# (``max_new_tokens``, ``k``, greedy or sampled, beams) or the model config would otherwise keep
# every one it ever built. Past the bound the least recently used is dropped, and compiled
# again if it comes back.
JIT_CACHE_SIZE = 32


@functools.lru_cache(maxsize=JIT_CACHE_SIZE)
def _jitted(
    fn: Callable,
    model: Decoder,
    mesh: Mesh | None,
    rules: partitioning.AxisRules | None,
    ranks: tuple[int, ...],
    num_replicated: int,
    out_rank: int | None,
    static: tuple[tuple[str, Any], ...],
) -> Any:
    """``fn`` bound to ``model`` and ``static``, jitted with the shardings of its arguments.

    Args:
      fn: the pure function (see :func:`run`).
      model: the decoder, passed as ``fn``'s first argument.
      mesh: the mesh, or None for the default device.
      rules: logical axis rules of ``mesh``.
      ranks: rank of each batched argument.
      num_replicated: how many arguments every device sees whole.
      out_rank: rank of the result, None for a replicated one.
      static: sorted ``(name, value)`` keyword arguments bound into ``fn``.
    """
    bound = functools.partial(fn, model, **dict(static))
    options = decode_options() or None
    if mesh is None:
        return jax.jit(bound, compiler_options=options)
    params = jax.tree.map(lambda a: a.sharding, runs.abstract_params(model, mesh, rules))
    rows = tuple(batch_sharding(mesh, rules, rank) for rank in ranks)
    whole = (partitioning.replicated(mesh),) * num_replicated
    return jax.jit(
        bound,
        in_shardings=(params, *rows, *whole),
        out_shardings=(
            partitioning.replicated(mesh)
            if out_rank is None
            else batch_sharding(mesh, rules, out_rank)
        ),
        compiler_options=options,
    )


def run(
    fn: Callable,
    model: Decoder,
    params: Any,
    batched: Sequence[np.ndarray],
    replicated: Sequence[Any],
    mesh: Mesh | None,
    rules: partitioning.AxisRules | None,
    out_rank: int | None = 2,
    **static: Any,
) -> Any:
    """``fn(model, params, *batched, *replicated, **static)``, jitted once per signature.

    Args:
      fn: a pure function returning ``[batch, ...]`` arrays (one, or a tuple) of rank at least
        ``out_rank``, or with ``out_rank=None`` a pytree every device holds whole (e.g. sums
        over the batch).
      model: the decoder (static).
      params: its parameters, placed on ``mesh`` with their logical-axis shardings.
      batched: host arrays whose first axis is the batch: this process's rows (a multiple of
        :func:`local_rows`'s share).
      replicated: arguments every device sees whole (scalars, small tables).
      mesh: the mesh, or None for the default device.
      rules: logical axis rules of ``mesh``.
      out_rank: rank of the result, None for a replicated one.
      static: hashable settings that select the compiled program.

    Returns:
      This process's rows of the result (all of a replicated one).
    """
    ranks = tuple(a.ndim for a in batched)
    key = tuple(sorted(static.items()))
    jitted = _jitted(fn, model, mesh, rules, ranks, len(replicated), out_rank, key)
    if mesh is None:
        return jax.tree.map(np.asarray, jitted(params, *map(jnp.asarray, batched), *replicated))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        placed = [
            jax.make_array_from_process_local_data(batch_sharding(mesh, rules, a.ndim), a)
            for a in batched
        ]
        out = jitted(params, *placed, *replicated)
    if out_rank is None:
        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), out)
    if jax.process_count() > 1:
        spec = batch_sharding(mesh, rules, out_rank).spec
        out = jax.tree.map(
            lambda x: multihost_utils.global_array_to_host_local_array(x, mesh, spec), out
        )
    return jax.tree.map(np.asarray, out)
