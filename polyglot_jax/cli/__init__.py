"""``polyglot-jax``: one command with a subcommand per pipeline stage.

polyglot-jax demo [--quick]           the whole pipeline on the embedded demo data
polyglot-jax train --gin_file=...     same as python -m polyglot_jax.train
polyglot-jax infer --gin_file=...     same as python -m polyglot_jax.infer
polyglot-jax judge --outputs=...      same as python -m polyglot_jax.judge
polyglot-jax translate --input=...    parallel data by machine translation (cli.translate)
polyglot-jax eval --checkpoint_path=. XCOPA / XNLI / XQuAD (python -m polyglot_jax.cli.evaluate)
polyglot-jax report JUDGE_DIR ...     same as python -m polyglot_jax.report
polyglot-jax serve --checkpoint_path=. the model behind the OpenAI protocol (cli.serve)
polyglot-jax sweep --root=... --grid=. a grid of training runs (polyglot_jax.launch.sweep)
polyglot-jax tpu ACTION --name=...    Cloud TPU VMs (polyglot_jax.launch.tpu)
polyglot-jax study run NAME --root=.  a study's grid: train, infer, judge, report (cli.study)
polyglot-jax doctor CHECKPOINT        checks of the chat framing: BOS, EOS, loss mask (cli.doctor)

--verbose (before the command's own flags) also shows what TensorFlow and XLA print while they
load; so does setting TF_CPP_MIN_LOG_LEVEL yourself.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import gin

import polyglot_jax
from polyglot_jax.cli import common

COMMANDS = {
    "demo": "polyglot_jax.cli.demo",
    "train": "polyglot_jax.cli.train",
    "infer": "polyglot_jax.cli.infer",
    "judge": "polyglot_jax.cli.judge",
    "translate": "polyglot_jax.cli.translate",
    "eval": "polyglot_jax.cli.evaluate",
    "report": "polyglot_jax.cli.report",
    "serve": "polyglot_jax.cli.serve",
    "data": "polyglot_jax.cli.data",
    "sweep": "polyglot_jax.cli.sweep",
    "tpu": "polyglot_jax.cli.tpu",
    "study": "polyglot_jax.cli.study",
    "doctor": "polyglot_jax.cli.doctor",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatches ``argv[0]`` to the stage's ``main`` with the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, verbose = _without_verbose(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(
            f"error: unknown command {command!r}; choose from {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    gin.clear_config()  # a command run before in this process leaves gin locked
    if verbose and polyglot_jax.USER_TF_LOG_LEVEL is None:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    if not verbose and polyglot_jax.USER_TF_LOG_LEVEL is None:
        common.quiet_tensorflow_import()
    module = importlib.import_module(COMMANDS[command])
    return common.run(lambda: module.main(rest))


def _without_verbose(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--verbose`` (before a ``--`` that passes flags on), and whether given."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != "--verbose"] + argv[end:]
    return kept, len(kept) != len(argv)


if __name__ == "__main__":
    sys.exit(main())
