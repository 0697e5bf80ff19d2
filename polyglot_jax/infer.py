"""Inference: ``python -m polyglot_jax.infer --gin_file=runs/infer.gin ...``.

The T5X-style entry point; the command lives in :mod:`polyglot_jax.cli.infer`.
"""

import sys

from polyglot_jax.cli import common
from polyglot_jax.cli.infer import main

if __name__ == "__main__":
    sys.exit(common.run(main))
