"""Multi-process start-up: ``jax.distributed.initialize`` from flags or the environment.

One process per host (GPU hosts, TPU VM workers, or several processes on one machine for tests).
The coordinator address, process count and process id come from, in order: the command-line
flags ``--coordinator_address``, ``--num_processes``, ``--process_id``; the environment
variables ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``; or JAX's own
cluster detection (TPU pods, SLURM, Open MPI) when ``JAX_COORDINATOR_ADDRESS`` is ``auto`` or a
TPU pod is detected. Without any of them the run is a single process and nothing is called.
CPU processes exchange collectives over gloo.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence

import jax

from polyglot_jax import gin_utils
from polyglot_jax.errors import ConfigError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ProcessFlags:
    """Where this process sits in a multi-process run (all None: decide from the environment)."""

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


def parse_flags(argv: Sequence[str]) -> tuple[ProcessFlags, list[str]]:
    """Takes the process flags out of ``argv``; returns them and the other arguments."""
    parser = gin_utils.ArgumentParser(prog="process flags", add_help=False)
    parser.add_argument("--coordinator_address")
    parser.add_argument("--num_processes", type=int)
    parser.add_argument("--process_id", type=int)
    known, rest = parser.parse_known_args(list(argv))
    return ProcessFlags(known.coordinator_address, known.num_processes, known.process_id), rest


def resolve(flags: ProcessFlags, environ: Mapping[str, str] | None = None) -> dict | None:
    """The ``jax.distributed.initialize`` keyword arguments, or None for a single process.

    Raises:
      ValueError: an incomplete or inconsistent setting (named).
    """
    env = os.environ if environ is None else environ
    address = flags.coordinator_address or env.get("JAX_COORDINATOR_ADDRESS")
    count = flags.num_processes or _int(env, "JAX_NUM_PROCESSES")
    index = flags.process_id if flags.process_id is not None else _int(env, "JAX_PROCESS_ID")
    if address == "auto" or (address is None and "TPU_WORKER_HOSTNAMES" in env):
        return {}  # JAX detects the cluster (TPU pod, SLURM, Open MPI)
    if address is None:
        if count not in (None, 1) or index not in (None, 0):
            raise ConfigError(
                f"num_processes={count} / process_id={index} need a coordinator address "
                f"(--coordinator_address or JAX_COORDINATOR_ADDRESS)"
            )
        return None
    if count is None or index is None:
        raise ConfigError(f"coordinator {address}: also set the process count and this process id")
    if not 0 <= index < count:
        raise ConfigError(f"process_id {index} is outside 0..{count - 1}")
    return {"coordinator_address": address, "num_processes": count, "process_id": index}


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None


def initialize(flags: ProcessFlags = ProcessFlags()) -> None:
    """Joins the multi-process run described by ``flags`` / the environment, if any."""
    kwargs = resolve(flags)
    if kwargs is None:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # only the CPU client uses it
    jax.distributed.initialize(**kwargs)
    log.info(
        "process %d of %d; %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
