"""ChatModel: one rule for a model's vocabulary, its template and stop tokens, one loader.

The runs here are random (``random_run``): what matters is which vocabulary and template a
loaded model speaks, not what it says.
"""

import pathlib
import re
import shutil

import pytest

from polyglot_jax.data import templates, vocab
from polyglot_jax.errors import ConfigError, DataError, RunDirError
from polyglot_jax.models import DecoderConfig
from polyglot_jax.runtime import chat_model
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.training import runs

REPO = pathlib.Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "Kuinka monta kissaa? 42"}]


def _config(vocab_size: int) -> DecoderConfig:
    return DecoderConfig(
        vocab_size=vocab_size,
        embed_dim=16,
        num_layers=1,
        num_heads=2,
        num_kv_heads=1,
        head_dim=8,
        mlp_dim=32,
        max_length=64,
    )


@pytest.fixture()
def recorded_run(tmp_path, random_run, sentencepiece_dir, demo_tasks):
    """A run trained on the demo mixture's name whose recorded tokenizer is another one."""
    run = random_run(
        tmp_path / "run",
        _config(1024),
        {"template": "alpaca", "mixture_or_task_name": "demo_uniform"},
    )
    shutil.copytree(sentencepiece_dir, run / runs.TOKENIZER)
    return run


def test_the_recorded_tokenizer_wins_over_the_mixture_and_a_different_one_is_refused(
    recorded_run, sentencepiece_dir
):
    model = ChatModel.load(recorded_run)
    original = vocab.load_vocabulary(sentencepiece_dir)
    text = MESSAGES[0]["content"]
    assert model.vocabulary.encode(text) == original.encode(text)
    assert chat_model.same_tokenizer(model.vocabulary, original)
    assert model.template == "alpaca" and model.stop_ids == [original.eos_id]
    segments = templates.render(MESSAGES, "alpaca", add_generation_prompt=True)
    assert model.encode(MESSAGES) == templates.encode(original, segments, "alpaca")[0]
    with pytest.raises(ConfigError, match="demo_uniform tokenizes differently from the run"):
        ChatModel.load(recorded_run, mixture_or_task_name="demo_uniform")
    # infer names its prompts' task only as a fallback: it never changes the run's vocabulary
    loaded = ChatModel.load(recorded_run, mixture_or_task_name="demo_uniform", check_mixture=False)
    assert chat_model.same_tokenizer(loaded.vocabulary, original)


def test_a_run_without_a_recorded_vocabulary_needs_a_mixture(tmp_path, random_run, demo_tasks):
    run = random_run(tmp_path / "run", _config(64), {})
    with pytest.raises(RunDirError, match="records neither a tokenizer/ folder nor a registered"):
        ChatModel.load(run)
    model = ChatModel.load(run, mixture_or_task_name="demo_uniform")
    assert model.vocabulary == demo_tasks.VOCABULARY
    assert model.template == templates.chat_format()[0]  # the configured default


def test_a_demo_run_speaks_its_mixtures_vocabulary(tmp_path, random_run, demo_tasks):
    run = random_run(tmp_path / "run", _config(64), {"mixture_or_task_name": "demo_uniform"})
    model = ChatModel.load(run, mixture_or_task_name="demo_pinch")  # same vocabulary: accepted
    assert model.vocabulary == demo_tasks.VOCABULARY
    assert model.stop_ids == [demo_tasks.VOCABULARY.eos_id]
    answer = model.respond([MESSAGES], max_new_tokens=3)
    ((text, reason, num_tokens),) = answer
    assert isinstance(text, str) and reason in ("length", "stop") and 0 < num_tokens <= 3


def test_a_hugging_face_folder_speaks_its_tokenizer(tmp_path, sentencepiece_dir):
    folder = tmp_path / "hf"
    shutil.copytree(sentencepiece_dir, folder)
    original = vocab.load_vocabulary(sentencepiece_dir)
    source = runs.Source(folder, hf_dir=folder)
    assert chat_model.same_tokenizer(chat_model.model_vocabulary(source), original)
    config = folder / "tokenizer_config.json"
    config.write_text(config.read_text().replace("{", '{"model_max_length": 7, ', 1))
    assert not chat_model.same_tokenizer(vocab.load_vocabulary(folder), original)  # other files
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(DataError, match=r"hf/tokenizer.json: not a Hugging Face tokenizers file"):
        vocab.load_vocabulary(folder)


def test_only_chat_model_loads_a_model_for_a_stage():
    """Stages get a loaded model from ChatModel.load and nowhere else."""
    allowed = {"polyglot_jax/runtime/chat_model.py", "polyglot_jax/training/loop.py"}
    found = []
    for path in sorted((REPO / "polyglot_jax").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel in allowed or rel == "polyglot_jax/training/runs.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bruns\.load_model\(|\bhf\.load_model_dir\(", line):
                found.append(f"{rel}:{n}")
    assert found == []


def test_a_study_run_records_the_tokenizer_behind_its_lazy_vocabulary(tmp_path, sentencepiece_dir):
    from polyglot_jax.data import study_data

    lazy = study_data.LazyVocabulary(str(sentencepiece_dir))
    runs.record_tokenizer(tmp_path, lazy)  # a later process reads it, whatever gin then binds
    recorded = runs.recorded_tokenizer(tmp_path)
    assert recorded is not None and chat_model.same_tokenizer(recorded, lazy.resolved)
