"""Judging: ``python -m polyglot_jax.judge --outputs=RUN/infer ...``.

The T5X-style entry point; the command lives in :mod:`polyglot_jax.cli.judge`.
"""

import sys

from polyglot_jax.cli import common
from polyglot_jax.cli.judge import main

if __name__ == "__main__":
    sys.exit(common.run(main))
