"""``polyglot-jax sweep``: a grid of training runs (:mod:`polyglot_jax.launch.sweep`)."""

import sys

from polyglot_jax.cli import common
from polyglot_jax.launch.sweep import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(common.run(main))
