"""``polyglot-jax doctor CHECKPOINT``: checks a model's chat framing before training or serving.

Renders one conversation through the chat template (default: the ChatModel's, which ``infer``
and ``serve`` use) as training encodes it, and prints one table: BOS present exactly once, the
answer's last trained token a stop token, EOS distinct from pad (or padding masked), a
non-empty assistant loss mask, token ids within the model's embeddings, the stop tokens, the
template of training and of serving, and tokenizer fertility per ``--languages`` on
``--prompts``. Exits 1 with one ``doctor: FAIL`` line per failed check.

  polyglot-jax doctor /ckpt/pinch40 --languages=en,de,zh
  polyglot-jax doctor /models/Llama-2-7b-hf --template=llama2
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils
from polyglot_jax.runtime import doctor


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the doctor's table; 0 when every check passed, else 1."""
    parser = gin_utils.ArgumentParser(
        prog="polyglot-jax doctor", description=__doc__.split("\n")[0]
    )
    parser.add_argument("checkpoint", help="run directory, checkpoint_<step> or HF folder")
    parser.add_argument("--template", help="chat template to render with (default: the model's)")
    parser.add_argument("--loss_on", help="loss selection (default: the run's)")
    parser.add_argument("--languages", default="", help="comma-separated fertility languages")
    parser.add_argument("--prompts", default=doctor.PROMPTS_DIR, help="test_<lang>.jsonl folder")
    parser.add_argument("--mixture", help="vocabulary of a run that records none")
    args = parser.parse_args(argv)
    languages = [lang for lang in args.languages.split(",") if lang]
    report = doctor.diagnose(
        args.checkpoint, args.template, languages, args.prompts, args.mixture, args.loss_on
    )
    print(f"# doctor {report.model} (template {report.template})\n")
    if report.rendered:
        print(f"{report.rendered}\n")
    print(report.table())
    for line in report.failures:
        print(f"doctor: FAIL {line}", file=sys.stderr)
    return 1 if report.failures else 0
