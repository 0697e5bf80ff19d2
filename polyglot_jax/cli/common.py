"""Shared plumbing of the entry points: gin flags and one-line errors."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from polyglot_jax import gin_utils
from polyglot_jax.errors import ConfigError, UserError

# Errors that are the user's input, not a bug: reported as one line, exit status 2. OSError
# covers paths the user named (missing, unreadable, a full disk); everything else is a bug and
# keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FloatingPointError, OSError)


def setup_logging() -> None:
    """Progress lines on stderr with a timestamp; library chatter kept at warning level."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True
    )
    for noisy in ("absl", "orbax", "jax", "tensorflow", "seqio", "clu"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def configure_gin(argv: Sequence[str]) -> gin_utils.GinArgs:
    """Parses and applies the gin flags of ``argv`` and logs the files; other arguments fail."""
    args = gin_utils.parse_args(argv)
    if args.rest:
        raise gin_utils.GinError(f"unknown arguments: {' '.join(args.rest)}")
    files = gin_utils.configure(args)
    shown = [str(f.path) for f in files if f.name == f.origin]
    logging.getLogger("polyglot_jax").info("gin files: %s", ", ".join(shown) or "none")
    return args


def run(main: Callable[[], int]) -> int:
    """Runs ``main`` and turns user errors into ``error: <one line>`` and exit status 2.

    Set ``POLYGLOT_JAX_TRACEBACK=1`` to see the full traceback instead.
    """
    setup_logging()
    try:
        return main()
    except USER_ERRORS as e:
        if os.environ.get("POLYGLOT_JAX_TRACEBACK"):
            raise
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2


def import_tasks(module: str) -> None:
    """Imports a module that registers SeqIO tasks (``--module``); a missing one is named."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise ConfigError(f"--module {module}: no such module") from None
        raise


def mesh_shape(value: str) -> tuple[int, int, int]:
    """``--mesh_shape "D,F,M"`` as sizes of the (data, fsdp, model) mesh axes (-1 fills)."""
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3:
        raise ConfigError(f"--mesh_shape {value!r}: expected three integers data,fsdp,model")
    return sizes  # type: ignore[return-value]
