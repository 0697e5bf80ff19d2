"""``polyglot-jax tpu``: Cloud TPU VMs (:mod:`polyglot_jax.launch.tpu`)."""

import sys

from polyglot_jax.cli import common
from polyglot_jax.launch.tpu import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(common.run(main))
