"""The tokenizer's own chat template: ids equal ``transformers``' ``apply_chat_template`` and the
loss covers exactly the assistant turns, for Llama 2, Qwen2 (ChatML) and Zephyr style templates."""

import json
import pathlib
import shutil

import numpy as np
import pytest
import seqio
import tokenizers
import transformers
from tokenizers import decoders, models, pre_tokenizers, trainers

from polyglot_jax.data import chat_tasks, demo_build, preprocessors, sources, templates, vocab
from polyglot_jax.errors import ConfigError, DataError
from polyglot_jax.runtime.chat_model import encode_messages

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
ZEPHYR = """{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{% generation %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endgeneration %}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}"""
# What each template writes after an assistant's content, up to its end-of-turn token.
CLOSING = {"llama2": " </s>", "llama2_sp": " </s>", "qwen2": "<|im_end|>", "zephyr": "</s>"}
ANSWERS = [
    "Sure. Here is a short answer, with numbers: 36 + 96 = 132.",
    "Конечно! Вот ответ на ваш вопрос.",
    "好的，我来解释一下。",
    "Tämä on vastaus: kyllä.  Kaksi välilyöntiä\nja rivinvaihto.",
]


def _corpus() -> list[str]:
    return [
        m["content"]
        for p in sorted(demo_build.DEMO_DIR.glob("train.*.jsonl"))
        for r in sources.read_jsonl(p)
        for m in r["messages"]
    ]


def _llama(sentencepiece_dir, out: pathlib.Path, template: str, legacy: bool, sp: bool):
    reference = transformers.AutoTokenizer.from_pretrained(
        sentencepiece_dir, legacy=legacy, add_bos_token=True
    )
    reference.chat_template = template
    reference.save_pretrained(out)
    config = json.loads((out / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(json.dumps({**config, "legacy": legacy}))
    if sp:
        shutil.copy(sentencepiece_dir / "tokenizer.model", out / "tokenizer.model")
    return out


def _qwen2(out: pathlib.Path) -> pathlib.Path:
    """A tiny byte-level BPE with Qwen2's pre-tokenizer and ChatML special tokens."""
    tok = tokenizers.Tokenizer(models.BPE())
    split = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(tokenizers.Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=700, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_corpus(), trainer)
    reference = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=special[1:],
    )
    reference.chat_template = QWEN2
    reference.save_pretrained(out)
    return out


@pytest.fixture(scope="module", params=["llama2", "llama2_sp", "qwen2", "zephyr"])
def case(request, sentencepiece_dir, tmp_path_factory):
    """``(name, model directory)``: Llama 2 via tokenizer.json and via tokenizer.model (legacy
    False), Qwen2's ChatML on a byte-level BPE, and Zephyr's template (legacy True)."""
    out = tmp_path_factory.mktemp(request.param)
    if request.param == "qwen2":
        return request.param, _qwen2(out)
    if request.param == "zephyr":
        return request.param, _llama(sentencepiece_dir, out, ZEPHYR, legacy=True, sp=True)
    sp = request.param == "llama2_sp"
    return request.param, _llama(sentencepiece_dir, out, LLAMA2, legacy=False, sp=sp)


@pytest.fixture(scope="module")
def conversations(shared_data) -> list[list[dict]]:
    """Multi-turn multilingual conversations: real OASST prompts, made-up answers."""
    prompts = {
        lang: [
            r["messages"][0]["content"]
            for r in sources.read_prompts_jsonl(
                shared_data / "oasst_prompts" / f"test_{lang}.jsonl", lang, skip_bad=True
            )
        ][:2]
        for lang in ("ru", "zh", "hi", "fi", "es")
    }
    langs = list(prompts)
    out = []
    for k, lang in enumerate(langs):
        other = langs[(k + 1) % len(langs)]
        out.append(
            [
                {"role": "user", "content": prompts[lang][0]},
                {"role": "assistant", "content": ANSWERS[k % len(ANSWERS)]},
                {"role": "user", "content": prompts[other][1]},
                {"role": "assistant", "content": ANSWERS[(k + 1) % len(ANSWERS)]},
            ]
        )
    out[0] = [{"role": "system", "content": "Answer in the language of the question."}, *out[0]]
    return out


def _reference_ids(reference, messages, **kwargs) -> list[int]:
    out = reference.apply_chat_template(messages, tokenize=True, **kwargs)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _runs(mask) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of True in ``mask``."""
    runs, start = [], None
    for i, flag in enumerate([*mask, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs


def test_ids_equal_apply_chat_template_and_the_loss_is_on_the_answers(case, conversations):
    name, model_dir = case
    ours = vocab.load_vocabulary(model_dir)
    assert isinstance(ours, vocab.SentencePieceVocabulary) == (name in ("llama2_sp", "zephyr"))
    reference = transformers.AutoTokenizer.from_pretrained(model_dir)
    for messages in conversations:
        segments = templates.render(messages, templates.TOKENIZER, "all_assistant", vocabulary=ours)
        ids, targets = templates.encode(ours, segments, templates.TOKENIZER)
        assert ids == _reference_ids(reference, messages), name
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        runs = _runs(targets)
        assert len(runs) == len(answers)
        for (start, end), answer in zip(runs, answers, strict=True):
            decoded = reference.decode(ids[start:end], skip_special_tokens=False)
            assert decoded.strip() == answer.strip() + CLOSING[name]
        prompt = encode_messages(ours, messages, templates.TOKENIZER)
        assert prompt == _reference_ids(reference, messages[:-1], add_generation_prompt=True)


def test_last_assistant_and_all(case, conversations):
    _, model_dir = case
    ours = vocab.load_vocabulary(model_dir)
    messages = conversations[1]
    render = lambda loss_on: templates.render(  # noqa: E731
        messages, templates.TOKENIZER, loss_on, vocabulary=ours
    )
    _, all_targets = templates.encode(ours, render("all_assistant"), templates.TOKENIZER)
    _, last = templates.encode(ours, render("last_assistant"), templates.TOKENIZER)
    assert _runs(last) == _runs(all_targets)[-1:]
    assert all(templates.encode(ours, render("all"), templates.TOKENIZER)[1])


def test_the_pipeline_trains_on_the_template_with_bos_as_first_input(case, conversations):
    import gin

    name, model_dir = case
    ours = vocab.load_vocabulary(model_dir)
    reference = transformers.AutoTokenizer.from_pretrained(model_dir)
    gin.parse_config(["chat_format.template = 'tokenizer'"])
    records = [{"id": str(i), "lang": "ru", "messages": m} for i, m in enumerate(conversations)]
    task = f"test_tokenizer_template_{name}"
    chat_tasks.add_chat_task(task, lambda split: records, ["train"], ours)
    examples = list(
        seqio.get_mixture_or_task(task)
        .get_dataset({"targets": 1024}, "train", shuffle=False, num_epochs=1)
        .as_numpy_iterator()
    )
    rows = list(
        seqio.get_dataset(
            task,
            {"targets": 1024},
            dataset_split="train",
            shuffle=False,
            num_epochs=1,
            feature_converter=preprocessors.ChatFeatureConverter(pack=False),
        ).as_numpy_iterator()
    )
    packed = list(
        seqio.get_dataset(
            task,
            {"targets": 1024},
            dataset_split="train",
            shuffle=False,
            num_epochs=1,
            feature_converter=preprocessors.ChatFeatureConverter(pack=True),
        ).as_numpy_iterator()
    )
    seqio.TaskRegistry.remove(task)
    firsts = sorted(ex["targets"][0] for ex in examples)
    starts = []
    for row in packed:
        seg = row["decoder_segment_ids"]
        for s in range(1, seg.max() + 1):
            inputs, targets = row["decoder_input_tokens"][seg == s], row["decoder_target_tokens"]
            np.testing.assert_array_equal(inputs[1:], targets[seg == s][:-1])
            starts.append(inputs[0])
    assert sorted(starts) == firsts
    for ex, row, record in zip(examples, rows, records, strict=True):
        expected = _reference_ids(reference, record["messages"])
        assert ex["targets"].tolist() == expected
        assert ex["loss_mask"][0] == preprocessors.START
        if name.startswith("llama2"):
            assert expected[0] == ours.bos_id == reference.bos_token_id
        n = len(expected) - 1
        assert row["decoder_input_tokens"][:n].tolist() == expected[:-1]
        assert row["decoder_target_tokens"][:n].tolist() == expected[1:]
        weights = row["decoder_loss_weights"][:n].astype(bool)
        np.testing.assert_array_equal(weights, ex["loss_mask"][1:] == preprocessors.TARGET)


def test_template_errors_are_user_errors(case):
    _, model_dir = case
    ours = vocab.load_vocabulary(model_dir)
    with pytest.raises(ConfigError, match="needs a Hugging Face tokenizer"):
        templates.render([{"role": "user", "content": "Hi"}], templates.TOKENIZER)
    if case[0].startswith("llama2"):
        bad = [{"role": "assistant", "content": "Hi"}, {"role": "assistant", "content": "Hi"}]
        with pytest.raises(DataError, match="roles must alternate"):
            templates.render(bad, templates.TOKENIZER, vocabulary=ours)


def test_tokenizer_template_is_a_run_setting():
    import gin

    gin.parse_config(["chat_format.template = 'tokenizer'"])
    assert templates.chat_format()[0] == "tokenizer"
    with pytest.raises(ConfigError, match="tokenizer"):
        templates.render([{"role": "user", "content": "Hi"}], "nope")
