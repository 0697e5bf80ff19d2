"""Data pipeline throughput on the demo data, before and after rendering + tokenizing in one step.

Before: the old three-step path kept as the reference (``tests/chat_path_reference.py``:
records to ``tf.data``, to Python to render, to TensorFlow to tokenize, to Python to pack).
After: :class:`preprocessors.EncodeChat` (render and tokenize in one Python call per batch of
conversations) and :class:`preprocessors.ChatFeatureConverter` on untrimmed examples, as
``pipeline.train_batches`` reads them. Both run in the same process, alternating, so a busy
machine slows both alike; each number is the best of ``--repeats`` fresh pipelines (nothing
cached between them), timing the iteration of a built pipeline, counted in TensorFlow.

One task holds the 816 training conversations of the 12 demo languages, ``--copies`` times.
Three setups: the demo SentencePiece vocabulary with the ``guanaco`` template, a Llama-style
tokenizer folder (:mod:`polyglot_jax.testing.tokenizers`) with the ``llama2`` template, and the
same folder with its own Jinja chat template (``tokenizer``). Two numbers each, examples/s:

- tokenize: one pass of the task's preprocessed examples (``Task.get_dataset``): the
  render + tokenize work alone.
- packed: one pass through the feature converter (best-fit packing to ``--length`` tokens),
  counting packed examples: what training reads on its first epoch.

  python benchmarks/data_pipeline.py [--repeats 3 --length 512 --copies 8]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

import gin
import seqio
import tensorflow as tf

from polyglot_jax.data import chat_tasks, demo_build, preprocessors, sources, templates, vocab

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import chat_path_reference as reference  # the old path, kept for comparison

# A Llama 2 style chat template (system message folded into the first user turn).
LLAMA2_JINJA = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)


def llama_folder(root: pathlib.Path) -> pathlib.Path:
    """A Llama-style SentencePiece tokenizer folder with a chat template."""
    from polyglot_jax.testing import tokenizers

    folder = tokenizers.llama_style_sentencepiece(root / "llama")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(bos_token="<s>", eos_token="</s>", chat_template=LLAMA2_JINJA)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def demo_records(copies: int) -> list[dict]:
    """The demo conversations of all languages, ``copies`` times (distinct ids)."""
    return [
        {**r, "id": f"{r['id']}-{k}"}
        for k in range(copies)
        for lang in demo_build.DEMO_LANGUAGES
        for r in sources.read_jsonl(demo_build.DEMO_DIR / f"train.{lang}.jsonl")
    ]


def tokenize_rate(task: str) -> float:
    """Examples per second of one pass over the task's preprocessed examples (built first)."""
    ds = seqio.get_mixture_or_task(task).get_dataset(None, "train", shuffle=False, num_epochs=1)
    start = time.perf_counter()
    n = int(ds.reduce(0, lambda count, _: count + 1))  # counted in TF: no Python per example
    return n / (time.perf_counter() - start)


def packed_rate(task: str, length: int, old: bool) -> float:
    """Examples per second of one packed pass over the task (built first)."""
    converter = reference.ReferenceConverter() if old else preprocessors.ChatFeatureConverter()
    ds = seqio.get_dataset(
        task,
        {"targets": length},
        converter,
        dataset_split="train",
        shuffle=False,
        num_epochs=1,
        trim_output_features=old,  # as the old and the new train_batches read them
    )
    start = time.perf_counter()
    n = int(ds.reduce(0, lambda count, row: count + tf.reduce_max(row["decoder_segment_ids"])))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--copies", type=int, default=8, help="passes over the demo data")
    args = parser.parse_args()
    records = demo_records(args.copies)
    with tempfile.TemporaryDirectory() as tmp:
        llama = vocab.load_vocabulary(llama_folder(pathlib.Path(tmp)))
        setups = [
            ("demo SentencePiece, guanaco", vocab.demo_vocabulary(), "guanaco"),
            ("Llama folder, llama2", llama, "llama2"),
            ("Llama folder, tokenizer template", llama, "tokenizer"),
        ]
        print(f"{len(records)} examples a pass, best of {args.repeats} passes, examples/s")
        print("| setup | tokenize before | after | x | packed before | after | x |")
        print("|---|---|---|---|---|---|---|")
        for i, (label, vocabulary, template) in enumerate(setups):
            with gin.unlock_config():  # the old path reads the template from gin
                gin.bind_parameter("chat_format.template", template)
            old, new = f"bench_old_{i}", f"bench_new_{i}"
            reference.add_chat_task(old, lambda split: records, ["train"], vocabulary)
            chat_format = templates.ChatFormat(template, "all_assistant")
            chat_tasks.add_chat_task(new, lambda split: records, ["train"], vocabulary, chat_format)
            rates: dict[str, list[float]] = {k: [] for k in ("t_old", "t_new", "p_old", "p_new")}
            for _ in range(args.repeats):  # alternating: load on the machine hits both alike
                rates["t_old"].append(tokenize_rate(old))
                rates["t_new"].append(tokenize_rate(new))
                rates["p_old"].append(packed_rate(old, args.length, old=True))
                rates["p_new"].append(packed_rate(new, args.length, old=False))
            best = {k: max(v) for k, v in rates.items()}
            print(
                f"| {label} | {best['t_old']:,.0f} | {best['t_new']:,.0f} "
                f"| {best['t_new'] / best['t_old']:.1f} | {best['p_old']:,.0f} "
                f"| {best['p_new']:,.0f} | {best['p_new'] / best['p_old']:.1f} |"
            )


if __name__ == "__main__":
    main()
