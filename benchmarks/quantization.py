"""The quality and speed cost of int8 weight-only quantization, side by side with the model.

Loads one checkpoint twice through ``ChatModel`` (``quantization="none"`` and ``"int8"``) and
prints, per XCOPA language, the mean absolute difference of every choice's log-likelihood,
both accuracies and the share of items whose predicted choice agrees; then, on the OASST test
prompts, the share of greedy answers that are identical and the mean share of their leading
tokens that agree; then weight bytes and the time of one greedy decode. With no
``--checkpoint`` a random 2-layer Llama with a Llama-style tokenizer is made (a check of the
mechanics: a trained model's numbers are the ones to report).

  python benchmarks/quantization.py [--checkpoint=/ckpt/llama2_7b_hf] [--languages=et,sw,zh]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
import time

import jax
import numpy as np
from random_llama import tiny_llama

from polyglot_jax.evaluation.benchmarks import scoring
from polyglot_jax.runtime import quantization
from polyglot_jax.runtime.chat_model import ChatModel

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def choice_rows(model: ChatModel, lang: str, data_dir: pathlib.Path, limit: int) -> list[dict]:
    scoring.register_task("xcopa", lang, data_dir)
    return scoring.run_task(f"xcopa_{lang}", "validation", model, limit=limit)[1]


def greedy(model: ChatModel, prompts: list[str], max_new_tokens: int) -> tuple[list, float]:
    """Greedy token answers of ``prompts`` and the seconds of the second (compiled) run."""
    encoded = [model.encode([{"role": "user", "content": p}]) for p in prompts]
    model.generate(encoded, max_new_tokens)  # compile
    start = time.perf_counter()
    out = model.generate(encoded, max_new_tokens)
    return out.tokens, time.perf_counter() - start


def prefix_share(a: list[int], b: list[int]) -> float:
    """The share of the longer answer's tokens before the first difference."""
    same = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    return same / max(len(a), len(b), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="run or Hugging Face folder (default: tiny random)")
    parser.add_argument("--data_dir", default=str(SHARED))
    parser.add_argument("--languages", default="et,sw,zh", help="XCOPA languages")
    parser.add_argument("--prompt_languages", default="fi,ru,hi", help="OASST test prompts")
    parser.add_argument("--limit", type=int, default=100, help="XCOPA items per language")
    parser.add_argument("--prompts", type=int, default=16, help="OASST prompts per language")
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--dtype", default="auto", help="ChatModel.load's dtype for both")
    args = parser.parse_args()
    data_dir = pathlib.Path(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or tiny_llama(
            pathlib.Path(tmp) / "tiny_llama", max_positions=512, scale=0.3
        )
        full = ChatModel.load(checkpoint, dtype=args.dtype)
        int8 = ChatModel.load(checkpoint, dtype=args.dtype, quantization="int8")
        print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
              f"checkpoint: {args.checkpoint or 'tiny random Llama'}")  # fmt: skip
        print("\n| XCOPA | items | mean abs Δ log-lik | acc (model) | acc (int8) | same choice |")
        print("|---|---:|---:|---:|---:|---:|")
        for lang in args.languages.split(","):
            a = choice_rows(full, lang, data_dir, args.limit)
            b = choice_rows(int8, lang, data_dir, args.limit)
            diff = np.abs(np.array([r["scores"] for r in a]) - np.array([r["scores"] for r in b]))
            picks = [
                (int(np.argmax(x["scores"])), int(np.argmax(y["scores"])))
                for x, y in zip(a, b, strict=True)
            ]
            acc = [
                100 * np.mean([p[k] == r["label"] for p, r in zip(picks, a, strict=True)])
                for k in (0, 1)
            ]
            same = 100 * np.mean([x == y for x, y in picks])
            cells = f"{diff.mean():.4f} | {acc[0]:.1f} | {acc[1]:.1f} | {same:.1f}%"
            print(f"| {lang} | {len(a)} | {cells} |")
        print("\n| OASST prompts | answers | identical | leading tokens agree |")
        print("|---|---:|---:|---:|")
        seconds = [0.0, 0.0]
        for lang in args.prompt_languages.split(","):
            path = data_dir / "oasst_prompts" / f"test_{lang}.jsonl"
            prompts = [json.loads(line)["prompt"] for line in path.open()][: args.prompts]
            ours, t_full = greedy(full, prompts, args.max_new_tokens)
            theirs, t_int8 = greedy(int8, prompts, args.max_new_tokens)
            seconds = [seconds[0] + t_full, seconds[1] + t_int8]
            same = 100 * np.mean([x == y for x, y in zip(ours, theirs, strict=True)])
            prefix = 100 * np.mean([prefix_share(x, y) for x, y in zip(ours, theirs, strict=True)])
            print(f"| {lang} | {len(prompts)} | {same:.1f}% | {prefix:.1f}% |")
        size = [quantization.weight_bytes(m.params) / 1e6 for m in (full, int8)]
        print("\n| | model | int8 | int8 / model |")
        print("|---|---:|---:|---:|")
        print(f"| weight MB | {size[0]:.2f} | {size[1]:.2f} | {size[1] / size[0]:.2f} |")
        ratio = seconds[1] / seconds[0]
        print(f"| greedy decode s | {seconds[0]:.2f} | {seconds[1]:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
