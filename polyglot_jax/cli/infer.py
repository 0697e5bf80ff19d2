"""Inference entry point: ``python -m polyglot_jax.infer --gin_file=runs/infer.gin ...``.

Example::

  python -m polyglot_jax.infer --gin_file=runs/infer.gin \\
      --gin.CHECKPOINT_PATH=\\"/tmp/pinch\\" --gin.MIXTURE_OR_TASK_NAME=\\"demo_uniform\\"

Writes one ``<task>.jsonl`` per task to ``INFER_OUTPUT_DIR`` (default ``<run>/infer``). One
``infer`` at a time may write to an output folder.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.cli import common
from polyglot_jax.inference import generate


def check_macros(args: gin_utils.GinArgs) -> None:
    """Rejects a ``--gin.NAME=...`` macro that none of the gin files binds (a typo).

    Gin accepts any new macro silently, so ``--gin.BATCH_SIZ=8`` would otherwise be ignored.

    Raises:
      GinError: names the unknown macro and the closest known one.
    """
    if not args.files:
        return
    search_paths = [*args.search_paths, *gin_utils.default_search_paths()]
    files = gin_utils.expand(args.files, search_paths)
    known = {key for f in files for key, _, _ in f.bindings if "." not in key and "/" not in key}
    for binding in args.bindings:
        name = binding.partition("=")[0].strip()
        if name.isidentifier() and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise gin_utils.GinError(
                f"unknown gin macro {name}: {', '.join(args.files)} does not define it{hint}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Parses gin flags and generates responses."""
    args = common.configure_gin(sys.argv[1:] if argv is None else argv)
    check_macros(args)
    result = generate.infer()
    print(f"wrote {result.generated} responses to {len(result.files)} files")
    for path in result.files:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
