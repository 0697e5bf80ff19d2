"""Reports: ``python -m polyglot_jax.report JUDGE_DIR ... --output_dir=DIR``.

The T5X-style entry point; the command lives in :mod:`polyglot_jax.cli.report`.
"""

import sys

from polyglot_jax.cli import common
from polyglot_jax.cli.report import main

if __name__ == "__main__":
    sys.exit(common.run(main))
