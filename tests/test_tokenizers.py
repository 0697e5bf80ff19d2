"""Hugging Face tokenizers as SeqIO vocabularies: ids equal ``transformers.AutoTokenizer``'s."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tokenizers
import transformers
from tokenizers import decoders, models, pre_tokenizers, trainers

from polyglot_jax.data import demo_build, sources, vocab

TEXTS = [
    "Hello! How are you?",
    "Сколько будет 36 плюс 96?",
    "كم يساوي 43 زائد 20؟",
    "你好！我很好，谢谢。",
    "पानी 100 डिग्री सेल्सियस पर उबलता है।",
    "Kolik je 5 plus 3?  Double  spaces\nand a newline.",
    "Emoji 🙂 and an unseen script: ᚠᚢᚦ",
]


def multilingual_texts(shared_data: pathlib.Path) -> list[str]:
    """:data:`TEXTS` and the first five OASST test prompts of every shared language."""
    texts = list(TEXTS)
    for path in sorted((shared_data / "oasst_prompts").glob("test_*.jsonl")):
        lang = path.stem.split("_")[1]
        texts += [
            r["messages"][0]["content"]
            for r in sources.read_prompts_jsonl(path, lang, skip_bad=True)
        ][:5]
    return texts


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    """A byte-level BPE tokenizer (the Falcon / BLOOM / Pythia kind) trained on the demo data."""
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [
        m["content"]
        for p in sorted(demo_build.DEMO_DIR.glob("train.*.jsonl"))
        for r in sources.read_jsonl(p)
        for m in r["messages"]
    ]
    tok.train_from_iterator(corpus, trainer)
    out = tmp_path_factory.mktemp("bpe")
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|pad|>",
            }
        )
    )
    return out


def test_ids_match_autotokenizer(bpe_dir, shared_data):
    ours = vocab.load_vocabulary(bpe_dir)
    reference = transformers.AutoTokenizer.from_pretrained(bpe_dir)
    for text in multilingual_texts(shared_data):
        expected = reference(text, add_special_tokens=False)["input_ids"]
        assert ours.encode(text) == expected, text
        assert ours.decode(expected) == reference.decode(expected, skip_special_tokens=True)
    assert ours.eos_id == reference.eos_token_id


def test_encode_tf_matches_encode_for_scalars_and_vectors(bpe_dir):
    ours = vocab.load_vocabulary(bpe_dir)
    ragged = ours.encode_tf(tf.constant(TEXTS))
    assert isinstance(ragged, tf.RaggedTensor)
    assert ragged.to_list() == [ours.encode(t) for t in TEXTS]
    assert ours.encode_tf(tf.constant(TEXTS[1])).numpy().tolist() == ours.encode(TEXTS[1])
    ids = tf.constant(np.array([ours.encode(TEXTS[0])], np.int32))
    assert ours.decode_tf(ids).numpy()[0].decode() == TEXTS[0]


def test_sentencepiece_model_directory(tmp_path):
    sp = vocab.demo_vocabulary()
    model = pathlib.Path(sp.sentencepiece_model_file).read_bytes()
    (tmp_path / "tokenizer.model").write_bytes(model)
    loaded = vocab.load_vocabulary(tmp_path)
    assert loaded.encode(TEXTS[1]) == sp.encode(TEXTS[1])


def test_missing_tokenizer_and_eos_are_named(tmp_path, bpe_dir):
    with pytest.raises(FileNotFoundError, match=r"no tokenizer\.model or tokenizer\.json"):
        vocab.load_vocabulary(tmp_path)
    (tmp_path / "tokenizer.json").write_bytes((bpe_dir / "tokenizer.json").read_bytes())
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ValueError, match="no eos_token"):
        vocab.load_vocabulary(tmp_path)


def test_a_chat_task_tokenizes_with_a_hugging_face_vocabulary(bpe_dir):
    import seqio

    from polyglot_jax.data import chat_tasks, preprocessors, templates

    ours = vocab.load_vocabulary(bpe_dir)
    record = {
        "id": "x",
        "lang": "ru",
        "messages": [
            {"role": "user", "content": TEXTS[1]},
            {"role": "assistant", "content": "132."},
        ],
    }
    chat_tasks.add_chat_task("test_hf_vocab", lambda split: [record], ["train"], ours)
    (ex,) = (
        seqio.get_mixture_or_task("test_hf_vocab")
        .get_dataset({"targets": 128}, "train", shuffle=False)
        .as_numpy_iterator()
    )
    segments = templates.render(record["messages"])
    assert ex["targets"].tolist() == [t for s, _ in segments for t in ours.encode(s)] + [
        ours.eos_id
    ]
    targets = ex["targets"][ex["loss_mask"] == preprocessors.TARGET].tolist()
    assert targets == [*ours.encode("132.\n"), ours.eos_id]
    seqio.TaskRegistry.remove("test_hf_vocab")


def test_sentencepiece_ids_match_autotokenizer(sentencepiece_dir, shared_data):
    ours = vocab.load_vocabulary(sentencepiece_dir)
    reference = transformers.AutoTokenizer.from_pretrained(sentencepiece_dir)
    for text in multilingual_texts(shared_data):
        expected = reference(text, add_special_tokens=False)["input_ids"]
        assert ours.encode(text) == expected, text
        assert ours.decode(expected) == reference.decode(expected, skip_special_tokens=True)
    assert ours.eos_id == reference.eos_token_id


@pytest.mark.parametrize("packer", ["best_fit", "seqio"])
def test_eos_id_zero_survives_packing_and_is_trained(bpe_dir, packer):
    """GPT-NeoX style tokenizers put <|endoftext|> at id 0, SeqIO's padding id."""
    import seqio

    from polyglot_jax.data import chat_tasks, preprocessors

    ours = vocab.load_vocabulary(bpe_dir)
    assert ours.eos_id == 0
    records = list(sources.read_jsonl(demo_build.DEMO_DIR / "train.fi.jsonl"))[:6]
    chat_tasks.add_chat_task(f"test_eos_zero_{packer}", lambda split: records, ["train"], ours)
    rows = list(
        seqio.get_dataset(
            f"test_eos_zero_{packer}",
            {"targets": 256},
            dataset_split="train",
            shuffle=False,
            num_epochs=1,
            feature_converter=preprocessors.ChatFeatureConverter(pack=True, packer=packer),
        ).as_numpy_iterator()
    )
    segments = sum(len(set(r["decoder_segment_ids"][r["decoder_segment_ids"] > 0])) for r in rows)
    trained_eos = sum(
        int(((r["decoder_target_tokens"] == 0) & (r["decoder_loss_weights"] == 1)).sum())
        for r in rows
    )
    assert segments == trained_eos == len(records)


def test_bos_and_pad_follow_the_tokenizer(bpe_dir, sentencepiece_dir, tmp_path):
    demo = vocab.demo_vocabulary()
    assert (demo.bos_id, demo.pad_id, demo.eos_id, demo.info.decoder_start_id) == (None, 0, 1, 0)
    llama = vocab.load_vocabulary(sentencepiece_dir)  # config silent: the model's bos piece
    assert (llama.bos_id, llama.eos_id, llama.info.decoder_start_id) == (1, 2, None)
    bpe = vocab.load_vocabulary(bpe_dir)  # a GPT-style post-processor adds nothing
    reference = transformers.AutoTokenizer.from_pretrained(bpe_dir)
    assert bpe.bos_id is None and bpe.pad_id == reference.pad_token_id
    for name in ("tokenizer.model", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((sentencepiece_dir / name).read_bytes())
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "add_bos_token": False}))
    assert vocab.load_vocabulary(tmp_path).bos_id is None


def test_post_processor_bos_equals_autotokenizer(bpe_dir, tmp_path):
    """A Llama 3 style tokenizer.json: TemplateProcessing puts a BOS before every text."""
    from tokenizers import processors

    tok = tokenizers.Tokenizer.from_file(str(bpe_dir / "tokenizer.json"))
    bos = tok.token_to_id("<|pad|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|pad|> $A", special_tokens=[("<|pad|>", bos)]
    )
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    ours = vocab.load_vocabulary(tmp_path)
    reference = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert ours.bos_id == bos == reference(TEXTS[0])["input_ids"][0]
    from polyglot_jax.runtime.chat_model import encode_messages

    prompt = encode_messages(ours, [{"role": "user", "content": TEXTS[0]}], "guanaco")
    assert prompt[0] == bos and prompt[1:] == ours.encode("### Human: " + TEXTS[0] + "\n") + (
        ours.encode("### Assistant: ")
    )
