"""Sweeps: a grid of gin overrides expanded into runs with distinct ``MODEL_DIR``\\ s.

  polyglot-jax sweep --root=/ckpt/multi_k --grid='MULTI_K=[1, 2, 3, 4, 5, 6]' \\
      --grid='SEED=[0, 1]' -- --gin_file=models/tiny.gin --gin_file=mix_multi_k.gin

Each point of the product of the ``--grid`` axes becomes one training command: the flags after
``--`` plus ``--gin.NAME=VALUE`` for each axis and ``--gin.MODEL_DIR="<root>/<NAME=VALUE,...>"``.
Runs go one after another on this machine, or with ``--tpu=NAME --zone=ZONE`` on every worker of
a TPU VM (:mod:`polyglot_jax.launch.tpu`). A run that already finished resumes at its last step
and stops at once, so an interrupted sweep is started again with the same command.
``<root>/sweep.json`` lists every run and its overrides. ``--dry_run`` prints the commands.
"""

from __future__ import annotations

import ast
import itertools
import json
import pathlib
import re
import sys
from collections.abc import Sequence
from typing import Any

from polyglot_jax import gin_utils
from polyglot_jax.errors import ConfigError
from polyglot_jax.launch import tpu


def gin_literal(value: Any) -> str:
    """A Python value as gin source (strings quoted, lists and tuples recursively)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        inner = ", ".join(gin_literal(v) for v in value)
        return (
            f"[{inner}]"
            if isinstance(value, list)
            else f"({inner}{',' if len(value) == 1 else ''})"
        )
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{gin_literal(k)}: {gin_literal(v)}" for k, v in value.items()) + "}"
        )
    raise ConfigError(f"cannot write {value!r} as a gin value")


def parse_axis(spec: str) -> tuple[str, list[Any]]:
    """``"NAME=[v1, v2]"`` → ``("NAME", [v1, v2])`` (values are Python literals).

    Raises:
      ValueError: the spec is not ``NAME=<non-empty list literal>`` (the message quotes it).
    """
    name, eq, values = spec.partition("=")
    if not eq or not re.fullmatch(r"[A-Za-z_][\w.]*", name.strip()):
        raise ConfigError(f"--grid {spec!r}: expected NAME=[value, ...]")
    try:
        parsed = ast.literal_eval(values.strip())
    except (ValueError, SyntaxError):
        raise ConfigError(f"--grid {spec!r}: {values.strip()!r} is not a Python literal") from None
    if not isinstance(parsed, list | tuple) or not parsed:
        raise ConfigError(f"--grid {spec!r}: the values must be a non-empty list")
    return name.strip(), list(parsed)


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return re.sub(r"[^\w.+-]+", "_", text).strip("_") or "_"


def expand(axes: Sequence[tuple[str, list[Any]]], root: str) -> list[dict[str, Any]]:
    """Every grid point as ``{"name", "model_dir", "overrides"}`` in a stable order."""
    runs = []
    for point in itertools.product(*(values for _, values in axes)):
        overrides = {name: value for (name, _), value in zip(axes, point, strict=True)}
        name = ",".join(f"{k}={_slug(v)}" for k, v in overrides.items()) or "run"
        runs.append(
            {"name": name, "model_dir": f"{root.rstrip('/')}/{name}", "overrides": overrides}
        )
    names = [r["name"] for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError("two grid points map to the same run name; make the values distinct")
    return runs


def train_flags(run: dict[str, Any], base: Sequence[str]) -> list[str]:
    flags = list(base) + [f"--gin.{k}={gin_literal(v)}" for k, v in run["overrides"].items()]
    return [*flags, f"--gin.MODEL_DIR={gin_literal(run['model_dir'])}"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    base = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = gin_utils.ArgumentParser(prog="polyglot-jax sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="parent folder of the runs' MODEL_DIRs")
    parser.add_argument("--grid", action="append", default=[], help="NAME=[v1, v2, ...]")
    parser.add_argument("--tpu", help="TPU VM name: run each point on all of its workers")
    parser.add_argument("--zone", help="the TPU VM's zone")
    parser.add_argument("--project")
    parser.add_argument("--dry_run", action="store_true")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if not base:
        raise ConfigError("sweep: give the training flags after --, e.g. -- --gin_file=...")
    if args.tpu and not args.zone:
        raise ConfigError("sweep: --tpu needs --zone")
    for flag in ("tpu", "zone", "project"):
        if getattr(args, flag) is not None:
            tpu.check_identifier(f"--{flag}", getattr(args, flag))
    runs = expand([parse_axis(spec) for spec in args.grid], args.root)
    if not args.dry_run and "://" not in args.root:
        pathlib.Path(args.root).mkdir(parents=True, exist_ok=True)
        (pathlib.Path(args.root) / "sweep.json").write_text(json.dumps(runs, indent=2) + "\n")
    for i, run in enumerate(runs, start=1):
        print(f"# [{i}/{len(runs)}] {run['name']}", flush=True)
        flags = train_flags(run, base)
        if args.tpu:
            tpu_args = ["train", f"--name={args.tpu}", f"--zone={args.zone}"]
            tpu_args += [f"--project={args.project}"] if args.project else []
            cmds, _ = tpu.commands([*tpu_args, "--", *flags])
        else:
            cmds = [[sys.executable, "-m", "polyglot_jax.train", *flags]]
        tpu.run_commands(cmds, args.dry_run)
    return 0
