"""Shared plumbing of the entry points: gin flags and one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import tempfile
import types
from collections.abc import Callable, Iterator, Sequence

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


# What TensorFlow and XLA's C++ code writes to stderr while they load, whatever
# TF_CPP_MIN_LOG_LEVEL says: absl's notice, INFO and WARNING lines ("Could not find cuda
# drivers", "oneDNN custom operations are on", CPU features) and the CUDA plugins' double
# registration errors.
NATIVE_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] Unable to register cu\w+ factory.*"
    r"|To enable the following instructions: .*"
)


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True) -> Iterator[None]:
    """Holds back the :data:`NATIVE_NOISE` lines that native libraries write to stderr.

    Everything written to the stderr file descriptor meanwhile goes to a temporary file; on exit
    the lines that are not noise are written to stderr, in order. A stderr without a file
    descriptor (a test's capture) is left alone.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        enabled = False
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if not NATIVE_NOISE.fullmatch(line.rstrip("\r\n"))]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs another loader inside :func:`quiet_native_logs`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with quiet_native_logs():
            self.loader.exec_module(module)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, once, and loads it with its native start-up lines held."""

    NAME = "tensorflow"

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.NAME:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_import() -> None:
    """Holds back TensorFlow's native start-up lines (:data:`NATIVE_NOISE`) when it is imported.

    TensorFlow writes them while it loads, before its log level applies, so they are filtered
    at the first ``import tensorflow`` of the process, whoever imports it. Nothing happens when
    TensorFlow is already imported.
    """
    if _QuietImport.NAME in sys.modules:
        return
    if not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


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


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """``--quantization`` and ``--dtype``: how ``ChatModel.load`` stores the weights."""
    from polyglot_jax.models.config import INFERENCE_DTYPES, WEIGHT_QUANTIZATIONS

    parser.add_argument(
        "--quantization",
        default="none",
        choices=WEIGHT_QUANTIZATIONS,
        help="int8: weight-only int8 projection kernels (a scale per output channel)",
    )
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=INFERENCE_DTYPES,
        help="weights and activations (auto: bfloat16 on a GPU or TPU, the checkpoint's on CPU)",
    )


def mesh_shape(value: str) -> tuple[int, int, int]:
    """``--mesh_shape "D,F,M"`` as sizes of the (data, fsdp, model) mesh axes (-1 fills)."""
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3:
        raise ConfigError(f"--mesh_shape {value!r}: expected three integers data,fsdp,model")
    return sizes  # type: ignore[return-value]
