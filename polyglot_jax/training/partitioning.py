"""Device mesh and logical-axis sharding rules.

The mesh has axes ``(data, fsdp, model)``; gin sets their sizes (``-1`` takes the remaining
devices). Logical axis names on parameters and activations map to mesh axes through rules in
the T5X style (a tuple of ``(logical, mesh axis or None)`` pairs, first match wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import gin
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from polyglot_jax.errors import ConfigError

MESH_AXES = ("data", "fsdp", "model")
AxisRules = tuple[tuple[str, str | tuple[str, ...] | None], ...]


@gin.configurable
def standard_logical_axis_rules() -> AxisRules:
    """Data parallel over ``data`` and ``fsdp``; parameters sharded over ``fsdp`` and ``model``."""
    return (
        ("batch", ("data", "fsdp")),
        ("length", None),
        ("act_embed", None),
        ("act_mlp", "model"),
        ("act_heads", "model"),
        ("act_kv", None),
        ("act_vocab", "model"),
        ("vocab", "model"),
        ("embed", "fsdp"),
        ("mlp", "model"),
        ("heads", "model"),
        ("kv_heads", None),
        ("kv", None),
    )


@gin.configurable
def create_mesh(
    data: int = -1, fsdp: int = 1, model: int = 1, devices: Sequence[jax.Device] | None = None
) -> Mesh:
    """A ``(data, fsdp, model)`` mesh over ``devices`` (default: all devices).

    Raises:
      ValueError: when the sizes do not multiply to the device count.
    """
    devices = list(devices if devices is not None else jax.devices())
    sizes = [data, fsdp, model]
    if sizes.count(-1) > 1:
        raise ConfigError(f"create_mesh: at most one axis may be -1, got {sizes}")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if len(devices) % known:
            raise ConfigError(f"create_mesh: {len(devices)} devices not divisible by {known}")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise ConfigError(
            f"create_mesh: data*fsdp*model = {sizes} needs {int(np.prod(sizes))} devices, "
            f"found {len(devices)}"
        )
    return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES)


def logical_to_sharding(tree: Any, mesh: Mesh, rules: AxisRules) -> Any:
    """``NamedSharding`` for every leaf of a (boxed, abstract) pytree from its logical axes."""
    specs = nn.get_partition_spec(tree)
    return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh, rules: AxisRules) -> NamedSharding:
    """Sharding of a ``[batch, length]`` input array."""
    spec = nn.logical_to_mesh_axes(("batch", "length"), rules)
    return NamedSharding(mesh, PartitionSpec(*spec))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def shard_batch(batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
    """Places this process's slice of a batch on the mesh as global arrays."""
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()
    }
