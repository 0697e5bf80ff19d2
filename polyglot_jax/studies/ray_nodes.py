"""A Ray cluster on TPU VMs for ``polyglot-jax study run --cluster=ray``: the commands.

  python -m polyglot_jax.studies.ray_nodes head --name=pj-head --zone=us-central2-b
  python -m polyglot_jax.studies.ray_nodes workers --name=pj-a,pj-b --zone=us-central2-b \\
      --head=10.130.0.2
  python -m polyglot_jax.studies.ray_nodes stop --name=pj-head,pj-a,pj-b --zone=us-central2-b

(``tpu_scripts/ray_head.sh``, ``ray_workers.sh``, ``ray_stop.sh``.) ``head`` starts the Ray head
on worker 0 of a VM (install this checkout there first: ``tpu_scripts/install.sh``); ``workers``
joins every worker of each TPU VM (one slice each) to it; Ray finds each host's chips and its
slice by itself, so ``--slice=v4-32`` places a run on the hosts of one slice. Then, on the head,
``polyglot-jax study run NAME --cluster=ray:auto --slice=v4-32 ...`` (or from elsewhere
``--cluster=ray://HEAD_IP:10001``). Every command is printed; ``--dry_run`` only prints.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.errors import ConfigError
from polyglot_jax.launch import tpu as tpu_lib

RAY = f"cd {tpu_lib.REMOTE_DIR} && ray"


def _ssh(args: argparse.Namespace, name: str, worker: str, command: str) -> list[str]:
    cmd = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", name, f"--zone={args.zone}"]
    cmd += [f"--project={args.project}"] if args.project else []
    return [*cmd, f"--worker={worker}", f"--command={command}"]


def commands(argv: Sequence[str]) -> tuple[list[list[str]], bool]:
    """The commands of an invocation, and whether it is a dry run.

    Raises:
      ConfigError: a name, zone, project or head address that is not a plain value.
    """
    p = gin_utils.ArgumentParser(prog="ray_nodes", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=["head", "workers", "stop"])
    p.add_argument("--name", required=True, help="TPU VM names, comma-separated")
    p.add_argument("--zone", required=True)
    p.add_argument("--project")
    p.add_argument("--head", help="workers: the head's internal IP (or IP:PORT)")
    p.add_argument("--port", type=int, default=6379, help="the head's port")
    p.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(list(argv))
    names = [tpu_lib.check_identifier("--name", n) for n in args.name.split(",") if n]
    tpu_lib.check_identifier("--zone", args.zone)
    if args.project:
        tpu_lib.check_identifier("--project", args.project)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: expected 1..65535")
    if args.action == "head":
        if len(names) != 1:
            raise ConfigError("head: one --name (the VM whose worker 0 runs the head)")
        start = f"{RAY} start --head --port={args.port} --dashboard-host=0.0.0.0"
        return [_ssh(args, names[0], "0", start + " --disable-usage-stats")], args.dry_run
    if args.action == "stop":
        return [_ssh(args, n, "all", f"{RAY} stop") for n in names], args.dry_run
    if not args.head or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?", args.head):
        raise ConfigError(f"workers: --head {args.head!r}: expected the head's IP or IP:PORT")
    address = args.head if ":" in args.head else f"{args.head}:{args.port}"
    join = f"{RAY} start --address={address} --disable-usage-stats"
    return [_ssh(args, n, "all", join) for n in names], args.dry_run


def main(argv: Sequence[str] | None = None) -> int:
    """Prints (and unless ``--dry_run`` runs) the commands; the exit status."""
    try:
        cmds, dry_run = commands(sys.argv[1:] if argv is None else argv)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return tpu_lib.run_commands(cmds, dry_run)


if __name__ == "__main__":
    sys.exit(main())
