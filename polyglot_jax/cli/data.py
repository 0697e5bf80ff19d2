"""``polyglot-jax data describe MIXTURE``: examples and tokens per language of a mixture."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.cli import common
from polyglot_jax.data.describe import describe, format_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = gin_utils.ArgumentParser(prog="polyglot-jax data", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["describe"])
    parser.add_argument("mixture", help="a registered task or mixture name")
    parser.add_argument("--split", default="train")
    parser.add_argument("--length", type=int, default=512, help="packing length to check")
    parser.add_argument(
        "--module", action="append", default=["tasks"], help="module(s) that register the mixture"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for module in args.module:
        common.import_tasks(module)
    print(format_table(describe(args.mixture, args.split, args.length)))
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
