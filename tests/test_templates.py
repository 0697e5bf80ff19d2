import pytest

from polyglot_jax.data import templates

CHAT = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "Bye"},
    {"role": "assistant", "content": "Ciao"},
]


def test_guanaco_text_and_targets():
    segments = templates.render(CHAT[:2])
    assert "".join(t for t, _ in segments) == "### Human: Hi\n### Assistant: Hello\n"
    assert [t for t, target in segments if target] == ["Hello\n"]


@pytest.mark.parametrize(
    ("loss_on", "targets"),
    [("last_assistant", ["Ciao\n"]), ("all_assistant", ["Hello\n", "Ciao\n"])],
)
def test_loss_on_multi_turn(loss_on, targets):
    segments = templates.render(CHAT, loss_on=loss_on)
    assert [t for t, target in segments if target] == targets


def test_guanaco_text_is_the_release_text_and_prompt():
    # The Polyglots release: raw openassistant-guanaco text for training, and the prompt file
    # "### Human: {{ instruction }}### Assistant:" for generation.
    text = templates.render(CHAT, template="guanaco_text", loss_on="all")
    assert (
        "".join(t for t, _ in text)
        == "### Human: Hi### Assistant: Hello### Human: Bye### Assistant: Ciao"
    )
    assert all(target for _, target in text)
    prompt = templates.render(CHAT[:1], template="guanaco_text", add_generation_prompt=True)
    assert "".join(t for t, _ in prompt) == "### Human: Hi### Assistant:"
    answer = templates.render(CHAT[:2], template="guanaco_text", loss_on="last_assistant")
    assert [t for t, target in answer if target] == [" Hello"]


def test_loss_on_all_marks_every_segment():
    assert all(target for _, target in templates.render(CHAT, loss_on="all"))


def test_generation_prompt_drops_the_answer_and_ends_with_the_assistant_prefix():
    segments = templates.render(CHAT[:2], add_generation_prompt=True)
    assert "".join(t for t, _ in segments) == "### Human: Hi\n### Assistant: "
    assert not any(target for _, target in segments)


def test_unknown_template_and_loss_are_errors():
    with pytest.raises(ValueError, match="unknown chat template 'nope'"):
        templates.render(CHAT, template="nope")
    with pytest.raises(ValueError, match="loss_on"):
        templates.render(CHAT, loss_on="everything")


def test_alpaca_llama2_and_chatml_layouts():
    chat = [{"role": "system", "content": "Be brief."}, *CHAT[:2]]
    text = lambda name: "".join(t for t, _ in templates.render(chat, template=name))  # noqa: E731
    assert text("llama2") == "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello "
    assert text("chatml") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello<|im_end|>\n"
    )
    alpaca = "".join(t for t, _ in templates.render(CHAT[:2], template="alpaca"))
    assert alpaca.startswith("Below is an instruction")
    assert alpaca.endswith("### Instruction:\nHi\n\n### Response:\nHello\n\n")
    for name in ("llama2", "chatml", "alpaca"):
        targets = [t for t, target in templates.render(chat, template=name) if target]
        assert len(targets) == 1 and targets[0].startswith("Hello")


def test_gin_selects_the_template_for_a_run():
    import gin

    gin.parse_config(["chat_format.template = 'chatml'", "chat_format.loss_on = 'all'"])
    assert templates.chat_format() == ("chatml", "all")
    assert templates.render(CHAT[:2])[0][0].startswith("<|im_start|>user")


def test_a_builtin_template_starts_with_the_tokenizers_bos(sentencepiece_dir):
    """Llama's tokenizer adds <s>: it begins the example as the decoder's first input, never
    predicted, and no SeqIO start id (0 is <unk> for Llama) is inserted."""
    import seqio

    from polyglot_jax.data import chat_tasks, preprocessors, vocab

    llama = vocab.load_vocabulary(sentencepiece_dir)
    record = {"id": "x", "lang": "it", "messages": CHAT}
    chat_tasks.add_chat_task("test_bos_first", lambda split: [record], ["train"], llama)
    (ex,) = (
        seqio.get_mixture_or_task("test_bos_first")
        .get_dataset({"targets": 256}, "train", shuffle=False, num_epochs=1)
        .as_numpy_iterator()
    )
    (row,) = seqio.get_dataset(
        "test_bos_first",
        {"targets": 256},
        dataset_split="train",
        shuffle=False,
        num_epochs=1,
        feature_converter=preprocessors.ChatFeatureConverter(pack=True),
    ).as_numpy_iterator()
    seqio.TaskRegistry.remove("test_bos_first")
    ids, targets = templates.encode(llama, templates.render(CHAT), "guanaco")
    assert ids[0] == llama.bos_id == 1 and not targets[0]
    assert ex["targets"].tolist() == [*ids, llama.eos_id]
    assert ex["loss_mask"][0] == preprocessors.START
    n = len(ids)
    assert row["decoder_input_tokens"][:n].tolist() == ids
    assert row["decoder_target_tokens"][:n].tolist() == [*ids[1:], llama.eos_id]
    assert row["decoder_positions"][:n].tolist() == list(range(n))
