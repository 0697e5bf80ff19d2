"""lm-evaluation-harness against ``polyglot-jax serve``: XCOPA through ``local-completions``.

A tiny random Llama with a Llama-style SentencePiece tokenizer is saved as a Hugging Face
folder. ``polyglot-jax eval`` scores XCOPA on it; then the folder is served and
lm-evaluation-harness's own ``xcopa_<lang>`` tasks (its prompts and connectors; only the data
files are pointed at ``--data_dir``, since nothing is downloaded) score it through
``/v1/completions`` with ``echo`` and ``logprobs``. The table compares accuracy and every
choice's log-likelihood. lm-evaluation-harness is not a dependency of the project:

  pip install "lm-eval[api]>=0.4.5,<0.5"
  python benchmarks/lm_eval_xcopa.py [--languages et,sw,zh --data_dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile

import lm_eval
import numpy as np
from lm_eval.tasks import TaskManager
from random_llama import tiny_llama

from polyglot_jax import cli
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.serving import app, engine, service


def task_yaml(folder: pathlib.Path, data_dir: pathlib.Path, lang: str, split: str) -> str:
    """The harness's ``xcopa_<lang>`` on local files, evaluated on ``split``; returns its name."""
    original = pathlib.Path(lm_eval.__file__).parent / "tasks" / "xcopa" / f"default_{lang}.yaml"
    name = f"xcopa_{lang}_local"
    files = {
        "validation": str(data_dir / "xcopa" / lang / f"val.{lang}.jsonl"),
        "test": str(data_dir / "xcopa" / lang / f"test.{lang}.jsonl"),
    }
    body = {
        "include": str(original),
        "task": name,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": files},
        "test_split": "test" if split == "test" else None,  # the harness prefers test
    }
    (folder / f"{name}.yaml").write_text(json.dumps(body))  # JSON is YAML
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--languages", default="et,sw,zh")
    parser.add_argument(
        "--data_dir", default=str(pathlib.Path(__file__).parents[2] / "shared/data")
    )
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    args = parser.parse_args()
    languages, data_dir = args.languages.split(","), pathlib.Path(args.data_dir).absolute()

    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "model").mkdir()
        model_dir = tiny_llama(root / "model")
        out = root / "ours"
        argv = ["eval", f"--checkpoint_path={model_dir}", "--benchmarks=xcopa"]
        argv += [f"--languages={args.languages}", f"--split={args.split}"]
        argv += [f"--data_dir={data_dir}", f"--output_dir={out}"]
        assert cli.main(argv) == 0
        ours = json.loads((out / "metrics.json").read_text())
        our_scores: dict[str, list] = {lang: [] for lang in languages}  # per item, in file order
        for line in (out / "structured.jsonl").read_text().splitlines():
            row = json.loads(line)
            our_scores[row["lang"]].append(row["scores"])

        names = [task_yaml(root, data_dir, lang, args.split) for lang in languages]
        batcher = engine.Engine(ChatModel.load(str(model_dir)), max_batch=8)
        served = service.Served(batcher, "tiny", batcher.max_length)
        with app.ServerThread(served) as server:
            model_args = (
                f"base_url={server.url}/completions,model=tiny,tokenizer={model_dir},"
                "tokenizer_backend=huggingface,num_concurrent=8,max_retries=1"
            )
            theirs = lm_eval.simple_evaluate(
                model="local-completions",
                model_args=model_args,
                tasks=names,
                task_manager=TaskManager(include_path=str(root)),
                log_samples=True,
            )

    print(f"XCOPA {args.split}, tiny random Llama: polyglot-jax eval vs lm-evaluation-harness")
    print("| language | items | ours acc | harness acc | same choice | max abs diff, log-lik |")
    print("|---|---|---|---|---|---|")
    for lang, name in zip(languages, names, strict=True):
        samples = sorted(theirs["samples"][name], key=lambda s: s["doc_id"])
        harness = np.asarray([[float(r[0]) for r in s["filtered_resps"]] for s in samples])
        mine = np.asarray(our_scores[lang])
        same = float(np.mean(harness.argmax(1) == mine.argmax(1)))
        acc = theirs["results"][name]["acc,none"]
        our_acc = ours[f"xcopa_{lang}"]["accuracy"]
        diff = float(np.abs(harness - mine).max())
        row = [lang, len(samples), f"{our_acc:.1f}", f"{acc * 100:.1f}", f"{same:.3f}"]
        print("| " + " | ".join(map(str, row)) + f" | {diff:.1e} |")


if __name__ == "__main__":
    main()
