"""Inference entry point: ``python -m polyglot_jax.infer --gin_file=runs/infer.gin ...``.

Example::

  python -m polyglot_jax.infer --gin_file=runs/infer.gin \\
      --gin.CHECKPOINT_PATH=\\"/tmp/pinch\\" --gin.MIXTURE_OR_TASK_NAME=\\"demo_uniform\\"

Writes one ``<task>.jsonl`` per task to ``INFER_OUTPUT_DIR`` (default ``<run>/infer``). One
``infer`` at a time may write to an output folder.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from polyglot_jax.cli import common
from polyglot_jax.inference import infer


def main(argv: Sequence[str] | None = None) -> int:
    """Parses gin flags and generates responses."""
    common.configure_gin(sys.argv[1:] if argv is None else argv)
    result = infer.infer()
    print(f"wrote {result.generated} responses to {len(result.files)} files")
    for path in result.files:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
