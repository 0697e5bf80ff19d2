"""``python -m polyglot_jax.cli COMMAND ...``: the same as ``polyglot-jax COMMAND ...``."""

import sys

from polyglot_jax.cli import main

if __name__ == "__main__":
    sys.exit(main())
