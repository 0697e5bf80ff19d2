"""Training: ``python -m polyglot_jax.train --gin_file=... --gin.MACRO=value``.

The T5X-style entry point; the command lives in :mod:`polyglot_jax.cli.train`.
"""

import sys

from polyglot_jax.cli import common
from polyglot_jax.cli.train import main

if __name__ == "__main__":
    sys.exit(common.run(main))
