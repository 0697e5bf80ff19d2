"""Cloud TPU runs: create a TPU VM (or queued resource), install, train on all workers, fetch
logs, tear down. Every action prints the exact ``gcloud`` commands; ``--dry_run`` only prints.

  polyglot-jax tpu create --name=pj --zone=us-central2-b --accelerator=v4-32
  polyglot-jax tpu install --name=pj --zone=us-central2-b
  polyglot-jax tpu train --name=pj --zone=us-central2-b -- \\
      --gin_file=models/llama2_7b.gin --gin_file=mix_pinch.gin --gin.MODEL_DIR=\\"gs://b/pinch\\"
  polyglot-jax tpu logs --name=pj --zone=us-central2-b --accelerator=v4-32
  polyglot-jax tpu delete --name=pj --zone=us-central2-b

``install`` copies this checkout (``git archive HEAD``) to every worker and installs it with
``jax[tpu]``; ``train`` starts the same command on every worker with
``JAX_COORDINATOR_ADDRESS=auto`` so that :mod:`polyglot_jax.training.multihost` lets JAX find
the pod.

Every value that ends up on a ``gcloud`` command line (name, zone, project, accelerator, runtime
version) must be a plain identifier, so that a value such as
``--name=--impersonate-service-account=...`` cannot smuggle a flag into the command.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.errors import ConfigError, JobFailedError

REMOTE_DIR = "~/polyglot_jax"
REMOTE_LOG = "~/polyglot_jax_train.log"

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_identifier(flag: str, value: str) -> str:
    """Returns ``value`` if it is a plain identifier (letters, digits, ``-``, ``_``, ``.``).

    Args:
      flag: the flag the value came from, named in the error.
      value: what the user gave; it must start with a letter or digit.

    Raises:
      ConfigError: ``value`` could be read as an option or carries other characters.
    """
    if not _IDENTIFIER.fullmatch(value):
        raise ConfigError(
            f"{flag} {value!r}: expected a plain name (letters, digits, '-', '_', '.', "
            f"starting with a letter or digit)"
        )
    return value


def _check_local_dir(flag: str, value: str) -> str:
    """A local folder for ``gcloud ... scp``: no leading ``-`` (an option), no ``:`` (a host)."""
    if not value or value.startswith("-") or ":" in value:
        raise ConfigError(
            f"{flag} {value!r}: expected a local folder (not starting with '-', without ':')"
        )
    return value


def hosts_of(accelerator: str) -> int:
    """Worker VMs of a TPU slice (``v4-32`` → 4, ``v5litepod-16`` → 4, ``v3-8`` → 1).

    Raises:
      ValueError: an accelerator type this does not know.
    """
    match = re.fullmatch(r"(v2|v3|v4|v5p|v5litepod|v6e)-(\d+)", accelerator)
    if not match:
        raise ConfigError(
            f"unknown TPU accelerator type {accelerator!r} (e.g. v4-32, v5litepod-16)"
        )
    family, size = match.group(1), int(match.group(2))
    if family in ("v5litepod", "v6e"):  # size counts chips; 8-chip hosts alone, else 4 per host
        return 1 if size <= 8 else size // 4
    return max(1, size // 8)  # size counts TensorCores: 8 per host


def _gcloud_tpu(
    args: argparse.Namespace, group: str, verb: str, positional: Sequence[str], *flags: str
) -> list[str]:
    """``gcloud compute tpus GROUP VERB POSITIONAL... --zone [--project] FLAGS...``."""
    cmd = ["gcloud", "compute", "tpus", group, verb, *positional, f"--zone={args.zone}"]
    return cmd + ([f"--project={args.project}"] if args.project else []) + list(flags)


def _ssh(args: argparse.Namespace, command: str, worker: str = "all") -> list[str]:
    return _gcloud_tpu(
        args, "tpu-vm", "ssh", [args.name], f"--worker={worker}", f"--command={command}"
    )


def create_commands(args: argparse.Namespace) -> list[list[str]]:
    if args.queued:
        cmd = _gcloud_tpu(
            args,
            "queued-resources",
            "create",
            [args.name],
            f"--node-id={args.name}",
            f"--accelerator-type={args.accelerator}",
            f"--runtime-version={args.version}",
        )
        return [cmd + (["--spot"] if args.spot else [])]
    cmd = _gcloud_tpu(
        args,
        "tpu-vm",
        "create",
        [args.name],
        f"--accelerator-type={args.accelerator}",
        f"--version={args.version}",
    )
    return [cmd + (["--spot"] if args.spot else [])]


def install_commands(args: argparse.Namespace) -> list[list[str]]:
    archive = "/tmp/polyglot_jax.tar.gz"
    setup = (
        f"mkdir -p {REMOTE_DIR} && tar -xzf /tmp/polyglot_jax.tar.gz -C {REMOTE_DIR} && "
        f"pip install -q -e '{REMOTE_DIR}' 'jax[tpu]' "
        "-f https://storage.googleapis.com/jax-releases/libtpu_releases.html"
    )
    return [
        ["git", "archive", "--format=tar.gz", f"--output={archive}", "HEAD"],
        _gcloud_tpu(args, "tpu-vm", "scp", [archive, f"{args.name}:{archive}"], "--worker=all"),
        _ssh(args, setup),
    ]


def train_commands(args: argparse.Namespace, train_args: Sequence[str]) -> list[list[str]]:
    if not train_args:
        raise ConfigError("train: give the training flags after --, e.g. -- --gin_file=...")
    train = shlex.join(["python", "-m", "polyglot_jax.train", *train_args])
    command = f"cd {REMOTE_DIR} && JAX_COORDINATOR_ADDRESS=auto {train} > {REMOTE_LOG} 2>&1"
    return [_ssh(args, command)]


def logs_commands(args: argparse.Namespace) -> list[list[str]]:
    return [
        _gcloud_tpu(
            args,
            "tpu-vm",
            "scp",
            [f"{args.name}:{REMOTE_LOG}", f"{args.log_dir}/worker_{worker}.log"],
            f"--worker={worker}",
        )
        for worker in range(hosts_of(args.accelerator))
    ]


def delete_commands(args: argparse.Namespace) -> list[list[str]]:
    if args.queued:
        return [_gcloud_tpu(args, "queued-resources", "delete", [args.name], "--force", "--quiet")]
    return [_gcloud_tpu(args, "tpu-vm", "delete", [args.name], "--quiet")]


def parser() -> argparse.ArgumentParser:
    p = gin_utils.ArgumentParser(prog="polyglot-jax tpu", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=["create", "install", "train", "logs", "delete"])
    p.add_argument("--name", required=True, help="TPU VM (and queued resource) name")
    p.add_argument("--zone", required=True)
    p.add_argument("--project")
    p.add_argument("--accelerator", default="v4-8", help="accelerator type, e.g. v4-32")
    p.add_argument("--version", default="tpu-ubuntu2204-base", help="TPU VM runtime version")
    p.add_argument("--queued", action="store_true", help="use a queued resource")
    p.add_argument("--spot", action="store_true", help="spot capacity")
    p.add_argument("--log_dir", default="tpu_logs", help="where logs lands locally")
    p.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    return p


def commands(argv: Sequence[str]) -> tuple[list[list[str]], bool]:
    """The commands an invocation runs, and whether it is a dry run."""
    argv = list(argv)
    train_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    for flag in ("name", "zone", "project", "accelerator", "version"):
        if getattr(args, flag) is not None:
            check_identifier(f"--{flag}", getattr(args, flag))
    _check_local_dir("--log_dir", args.log_dir)
    hosts_of(args.accelerator)  # validates the type before anything runs
    if args.action == "train":
        return train_commands(args, train_args), args.dry_run
    build = {
        "create": create_commands,
        "install": install_commands,
        "logs": logs_commands,
        "delete": delete_commands,
    }
    return build[args.action](args), args.dry_run


def run_commands(cmds: Sequence[Sequence[str]], dry_run: bool) -> int:
    """Prints each command; runs it unless ``dry_run``. Stops at the first failure."""
    for cmd in cmds:
        print(shlex.join(cmd), flush=True)
        if not dry_run:
            result = subprocess.run(list(cmd), check=False)
            if result.returncode:
                raise JobFailedError(f"{cmd[0]} exited with {result.returncode}: {shlex.join(cmd)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    cmds, dry_run = commands(sys.argv[1:] if argv is None else argv)
    return run_commands(cmds, dry_run)
