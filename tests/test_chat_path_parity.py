"""Rendering and tokenizing in one step gives bitwise the examples and packed batches of the old
three-step path (``chat_path_reference``), for every chat template and loss selection, multi-turn
conversations, over-long examples, the demo SentencePiece vocabulary and two Hugging Face
tokenizer folders (a Llama-style ``tokenizer.model`` with BOS, a byte-level ``tokenizer.json``
with ChatML special tokens and no BOS)."""

from __future__ import annotations

import json

import chat_path_reference as reference
import gin
import numpy as np
import pytest
import seqio
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from polyglot_jax.data import (
    chat_tasks,
    demo_build,
    pipeline,
    preprocessors,
    recipes,
    sources,
    templates,
    vocab,
)

LLAMA2 = (
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
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LENGTH = 128  # a quarter of the conversations are longer: truncated
BATCH, BATCHES = 4, 3
# (template, loss_on, vocabulary): every template, every loss selection, three tokenizers.
CASES = [
    ("guanaco", "all_assistant", "demo"),
    ("guanaco_text", "all", "demo"),
    ("alpaca", "last_assistant", "demo"),
    ("plain", "all_assistant", "demo"),
    ("llama2", "last_assistant", "llama"),
    ("chatml", "all", "bpe"),
    ("guanaco", "all_assistant", "llama"),
    ("tokenizer", "all_assistant", "llama"),
    ("tokenizer", "last_assistant", "bpe"),
    ("tokenizer", "all", "llama"),
]


def conversations(lang: str) -> list[dict]:
    """Multi-turn conversations from the demo data: 1-4 exchanges, some with a system message,
    every fourth with a long answer."""
    demo = list(sources.read_jsonl(demo_build.DEMO_DIR / f"train.{lang}.jsonl"))
    out = []
    for i in range(24):
        messages = [{"role": "system", "content": "Answer briefly."}] if i % 3 == 0 else []
        for k in range(1 + i % 4):
            messages += [dict(m) for m in demo[(i + k) % len(demo)]["messages"]]
        if i % 4 == 1:
            messages[-1]["content"] = " ".join([messages[-1]["content"]] * 12)
        out.append({"id": f"{lang}-{i}", "lang": lang, "messages": messages})
    return out


@pytest.fixture(scope="module")
def vocabularies(sentencepiece_dir, tmp_path_factory) -> dict[str, seqio.Vocabulary]:
    llama = tmp_path_factory.mktemp("llama_chat")
    (llama / "tokenizer.model").write_bytes((sentencepiece_dir / "tokenizer.model").read_bytes())
    config = {"tokenizer_class": "LlamaTokenizer", "legacy": False, "chat_template": LLAMA2}
    (llama / "tokenizer_config.json").write_text(json.dumps(config))
    bpe = tmp_path_factory.mktemp("bpe_chatml")
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(
        [m["content"] for r in conversations("en") for m in r["messages"]], trainer
    )
    tok.save(str(bpe / "tokenizer.json"))
    config = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": CHATML}
    (bpe / "tokenizer_config.json").write_text(json.dumps(config))
    return {
        "demo": vocab.demo_vocabulary(),
        "llama": vocab.load_vocabulary(llama),
        "bpe": vocab.load_vocabulary(bpe),
    }


def bind(template: str, loss_on: str) -> None:
    """The run's chat format in gin, which the reference reads."""
    gin.parse_config([f"chat_format.template = {template!r}", f"chat_format.loss_on = {loss_on!r}"])


def register(name: str, vocabulary, chat_format, old: bool, langs=("en", "ru")) -> str:
    """A mixture of one task per language, registered with the old path or the new one."""
    tasks = []
    for lang in langs:
        records = conversations(lang)
        task = f"{name}_{lang}"
        if old:
            reference.add_chat_task(task, lambda split, r=records: r, ["train"], vocabulary)
        else:
            chat_tasks.add_chat_task(
                task, lambda split, r=records: r, ["train"], vocabulary, chat_format
            )
        tasks.append((task, len(records)))
    seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, tasks)
    return name


def examples(task: str) -> list[dict]:
    ds = seqio.get_mixture_or_task(task).get_dataset(None, "train", shuffle=False, num_epochs=1)
    return list(ds.as_numpy_iterator())


def unpacked(name: str, converter, trim: bool = False) -> list[dict]:
    """One pass of unpacked rows (as ``validation_batches`` reads them)."""
    ds = seqio.get_dataset(
        name,
        {"targets": LENGTH},
        converter,
        dataset_split="train",
        shuffle=False,
        num_epochs=1,
        trim_output_features=trim,
    )
    return list(ds.as_numpy_iterator())


def assert_same(old: list[dict], new: list[dict]) -> None:
    assert len(old) == len(new) > 0
    for a, b in zip(old, new, strict=True):
        assert sorted(a) == sorted(b)
        for key in a:
            x, y = np.asarray(a[key]), np.asarray(b[key])
            assert x.dtype == y.dtype, key
            np.testing.assert_array_equal(x, y, err_msg=key)


def take(batches, n: int = BATCHES) -> list[dict]:
    return [{k: np.asarray(v) for k, v in next(batches).items()} for _ in range(n)]


def marks_start(vocabulary) -> bool:
    info = getattr(vocabulary, "info", None)
    return info is not None and info.decoder_start_id is None


@pytest.mark.parametrize(("template", "loss_on", "vocabulary"), CASES)
def test_one_step_path_is_bitwise_equal_to_the_old_one(vocabularies, template, loss_on, vocabulary):
    bind(template, loss_on)
    vocabulary = vocabularies[vocabulary]
    old = register("parity_old", vocabulary, None, old=True)
    new = register("parity_new", vocabulary, templates.ChatFormat(template, loss_on), old=False)
    for lang in ("en", "ru"):
        assert_same(examples(f"{old}_{lang}"), examples(f"{new}_{lang}"))
    lengths = {"targets": LENGTH}
    shard = seqio.ShardInfo(0, 1)
    # The reference packs examples untrimmed, as train_batches now does.
    want = take(iter(reference.train_batches(old, lengths, BATCH, 3, trim_output_features=False)))
    assert_same(want, take(pipeline.train_batches(new, lengths, BATCH, 3, shard_info=shard)))
    old_converter = reference.ReferenceConverter(pack=False)
    assert_same(
        unpacked(old, old_converter), unpacked(new, preprocessors.ChatFeatureConverter(False))
    )
    if not marks_start(vocabulary):
        # As the old path shipped (SeqIO trims ``targets`` but not ``loss_mask``): the same. With
        # a START token it shifted loss weights after an over-long example (test_packing).
        assert_same(take(iter(reference.train_batches(old, lengths, BATCH, 3))), want)
        trimmed = unpacked(new, preprocessors.ChatFeatureConverter(False), trim=True)
        assert_same(unpacked(old, old_converter, trim=True), trimmed)


def test_a_task_without_a_format_follows_the_run_setting(vocabularies):
    bind("chatml", "last_assistant")
    old = register("parity_gin_old", vocabularies["demo"], None, old=True, langs=("fi",))
    new = register("parity_gin_new", vocabularies["demo"], None, old=False, langs=("fi",))
    assert_same(examples(f"{old}_fi"), examples(f"{new}_fi"))


def test_a_recipe_mixture_is_bitwise_equal(demo_tasks):
    bind("guanaco", "all_assistant")
    data, vocabulary = demo_tasks.DEMO, demo_tasks.VOCABULARY
    selection = recipes.pinch(data, "en", demo_tasks.OTHER_LANGUAGES, n_multilingual=22)
    recipes.register_mixture("parity_pinch_new", data, selection, vocabulary)
    tasks = []
    for lang, ids in selection.items():
        records = [r for r in data.records("train", lang) if r["id"] in set(ids)]
        reference.add_chat_task(
            f"parity_pinch_old.{lang}", lambda s, r=records: r, ["train"], vocabulary
        )
        tasks.append((f"parity_pinch_old.{lang}", len(ids)))
    seqio.MixtureRegistry.remove("parity_pinch_old")
    seqio.MixtureRegistry.add("parity_pinch_old", tasks)
    want = iter(reference.train_batches("parity_pinch_old", {"targets": 256}, 8, seed=0))
    got = pipeline.train_batches(
        "parity_pinch_new", {"targets": 256}, 8, 0, shard_info=seqio.ShardInfo(0, 1)
    )
    assert_same(take(want, 6), take(got, 6))
