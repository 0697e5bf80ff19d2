"""Training entry point: ``python -m polyglot_jax.train --gin_file=... --gin.MACRO=value``.

Example::

  python -m polyglot_jax.train --gin_file=models/tiny.gin --gin_file=runs/finetune.gin \\
      --gin.MODEL_DIR=\\"/tmp/pinch\\" --gin.MIXTURE_OR_TASK_NAME=\\"demo_pinch\\"

The gin files bind :class:`~polyglot_jax.training.config.TrainConfig` and
:class:`~polyglot_jax.training.config.DataConfig`, which :func:`polyglot_jax.training.loop.train`
takes; see ``gin_configs/runs/finetune.gin``.
On several hosts, run the same command on each with ``--coordinator_address=HOST:PORT
--num_processes=N --process_id=I`` (or the ``JAX_*`` variables; TPU pods need neither), see
:mod:`polyglot_jax.training.multihost`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from polyglot_jax.cli import common
from polyglot_jax.training import config, loop, multihost


def main(argv: Sequence[str] | None = None) -> int:
    """Parses gin flags and trains; ``MODEL_DIR/config.gin`` holds the operative config."""
    flags, rest = multihost.parse_flags(sys.argv[1:] if argv is None else argv)
    multihost.initialize(flags)
    common.configure_gin(rest)
    result = loop.train(*config.from_gin())
    print(
        f"trained {result.model_dir} to step {result.step}; config: {result.model_dir}/config.gin"
    )
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
