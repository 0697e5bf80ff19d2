"""What one run of a study asks a Ray cluster for: a TPU slice, GPU hosts or CPUs.

A :class:`Request` is made from the flags of ``polyglot-jax study run --cluster=ray``:

- ``--slice=v4-32``: one TPU slice (``ray.util.tpu.SlicePlacementGroup``), one task per host,
  each with the host's chips (``v4-32``: topology 2x2x4, 4 hosts of 4 chips);
- ``--gpus_per_host=8 --hosts=2``: one bundle of GPUs per host, the hosts spread one per node;
- ``--cpus_per_run=1``: CPUs on one node (smoke runs, tests).

The hosts of a run start together; each gets :func:`host_env`, the coordinator address of
host 0 (on a TPU slice ``auto``: JAX reads the pod from the TPU metadata), so that
``jax.distributed`` initialises as on a pod.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from polyglot_jax.errors import ConfigError

# TPU pod type -> topology (the default shapes Cloud TPU creates). v4/v5p count TensorCores
# (2 per chip), v5litepod/v6e count chips.
_CUBE = {
    8: "2x2x1",
    16: "2x2x2",
    32: "2x2x4",
    64: "2x4x4",
    128: "4x4x4",
    256: "4x4x8",
    512: "4x8x8",
    1024: "8x8x8",
    2048: "8x8x16",
    4096: "8x16x16",
}
_PLANE = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
TOPOLOGIES: dict[str, dict[int, str]] = {
    "v4": _CUBE,
    "v5p": _CUBE,
    "v5litepod": _PLANE,
    "v6e": _PLANE,
}
DEFAULT_PORT = 8476  # the coordinator's port on host 0


@dataclasses.dataclass(frozen=True)
class Request:
    """The resources of one run: ``hosts`` tasks, each with ``per_host``.

    Attributes:
      kind: ``tpu``, ``gpu`` or ``cpu``.
      hosts: tasks started together, one per host.
      per_host: the Ray resources of each host's task (e.g. ``{"CPU": 1, "TPU": 4}``).
      topology: the TPU topology (``2x2x4``), or None.
      version: the TPU generation (``v4``), or None.
      label: how the progress lines name it (``v4-32``, ``2x8 GPU``, ``1 CPU``).
    """

    kind: str
    hosts: int
    per_host: dict[str, float]
    topology: str | None = None
    version: str | None = None
    label: str = ""

    @property
    def bundles(self) -> list[dict[str, float]]:
        """The placement group's bundles: one per host."""
        return [dict(self.per_host) for _ in range(self.hosts)]

    @property
    def strategy(self) -> str:
        """How the bundles are placed: one host per node when there are several."""
        return "STRICT_SPREAD" if self.hosts > 1 else "PACK"

    def task_options(self) -> dict[str, Any]:
        """The ``.options()`` of each host's task (resources only)."""
        per_host = dict(self.per_host)
        options: dict[str, Any] = {"num_cpus": per_host.pop("CPU", 0)}
        if "GPU" in per_host:
            options["num_gpus"] = per_host.pop("GPU")
        if per_host:
            options["resources"] = per_host
        return options

    def placement_group(self, name: str) -> Any:
        """Reserves the run's hosts (None: a single CPU or GPU host needs no group).

        Returns:
          A ``SlicePlacementGroup`` (TPU), a ``PlacementGroup``, or None.
        """
        if self.kind == "tpu":
            from ray.util import tpu

            assert self.topology is not None and self.version is not None
            return tpu.SlicePlacementGroup(self.topology, self.version, name=name)
        if self.hosts == 1:
            return None
        from ray.util import placement_group

        return placement_group(self.bundles, strategy=self.strategy, name=name)


def tpu_request(pod_type: str) -> Request:
    """The request of one TPU slice of ``pod_type`` (``v4-32``, ``v5litepod-16``, ``v6e-8``).

    Raises:
      ConfigError: a type with no known topology (the known ones are named).
    """
    match = re.fullmatch(r"(v4|v5p|v5litepod|v6e)-(\d+)", pod_type.strip().lower())
    topology = TOPOLOGIES[match.group(1)].get(int(match.group(2))) if match else None
    if match is None or topology is None:
        known = ", ".join(f"{v}-{min(t)}..{v}-{max(t)}" for v, t in TOPOLOGIES.items())
        raise ConfigError(f"--slice {pod_type!r}: unknown TPU slice type (known: {known})")
    from ray.util import tpu

    version = match.group(1)
    hosts, per_host = tpu.get_tpu_worker_resources(topology=topology, accelerator_type=version)
    return Request("tpu", hosts, dict(per_host), topology, version, pod_type)


def request(
    slice_type: str | None = None,
    gpus_per_host: int = 0,
    hosts: int = 1,
    cpus_per_run: float = 1.0,
) -> Request:
    """The request of one run from the study's flags (a slice wins over GPUs over CPUs).

    Raises:
      ConfigError: an unknown slice type, or counts below 1.
    """
    if hosts < 1 or gpus_per_host < 0 or cpus_per_run <= 0:
        raise ConfigError(
            f"--hosts must be >= 1, --gpus_per_host >= 0 and --cpus_per_run > 0; got "
            f"{hosts}, {gpus_per_host}, {cpus_per_run}"
        )
    if slice_type:
        return tpu_request(slice_type)
    if gpus_per_host:
        per_host = {"CPU": 1.0, "GPU": float(gpus_per_host)}
        return Request("gpu", hosts, per_host, label=f"{hosts}x{gpus_per_host} GPU")
    return Request("cpu", hosts, {"CPU": float(cpus_per_run)}, label=f"{cpus_per_run:g} CPU")


def host_env(coordinator: str, hosts: int, index: int) -> dict[str, str]:
    """The environment of host ``index`` of a multi-host run (empty for a single host).

    ``coordinator`` is ``IP:PORT`` of host 0 (see
    :func:`~polyglot_jax.training.multihost.resolve`), or ``auto`` on a TPU slice: JAX finds
    the pod, its coordinator and each host's process id (its TPU worker id) by itself.
    """
    if hosts == 1:
        return {}
    if coordinator == "auto":
        return {"JAX_COORDINATOR_ADDRESS": "auto"}
    return {
        "JAX_COORDINATOR_ADDRESS": coordinator,
        "JAX_NUM_PROCESSES": str(hosts),
        "JAX_PROCESS_ID": str(index),
    }


def parse_cluster(value: str) -> str | None:
    """The Ray address of ``--cluster`` (``ray`` → None: a local ``ray.init()``).

    Raises:
      ConfigError: not ``ray``, ``ray://HOST:PORT`` or ``ray:auto``.
    """
    if value == "ray":
        return None
    if value == "ray:auto":
        return "auto"
    match = re.fullmatch(r"ray://([A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})", value)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(
            f"--cluster {value!r}: expected ray (a local cluster), ray:auto or ray://HOST:PORT"
        )
    return value
