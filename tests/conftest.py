"""Shared fixtures: a private cache folder, the demo tasks, a tiny model config."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["POLYGLOT_JAX_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def demo_tasks():
    """The demo module after registration (tasks, mixtures, vocabulary)."""
    import tasks.demo

    return tasks.demo


@pytest.fixture()
def tiny_config():
    from polyglot_jax.models import DecoderConfig

    return DecoderConfig(
        vocab_size=64,
        embed_dim=32,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
        mlp_dim=64,
        max_length=64,
    )


@pytest.fixture(scope="session")
def random_run():
    """Makes a run directory with random parameters saved as ``checkpoint_1`` (seconds).

    ``random_run(path, config, chat_format)`` writes ``model_config.json`` and
    ``chat_format.json`` and returns ``path``: a run that ``infer``, ``eval`` and the local judge
    can load, for tests about those stages rather than about training.
    """
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    from polyglot_jax.models import Decoder
    from polyglot_jax.training import checkpoints
    from polyglot_jax.training.trainer import TrainState

    def make(path: pathlib.Path, config, chat_format: dict) -> pathlib.Path:
        path.mkdir(parents=True, exist_ok=True)
        (path / "model_config.json").write_text(json.dumps(config.to_dict()))
        (path / "chat_format.json").write_text(json.dumps(chat_format))
        init = Decoder(config).init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))
        state = TrainState(jnp.int32(1), nn.unbox(init)["params"], {}, jax.random.PRNGKey(0))
        ckpt = checkpoints.Checkpointer(path, async_save=False)
        ckpt.save(1, state, {})
        ckpt.close()
        return path

    return make


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """``../shared/data``; absent → skip, unless the run requires it (CI sets the variable)."""
    if SHARED_DATA.exists():
        return SHARED_DATA
    if os.environ.get("POLYGLOT_JAX_REQUIRE_SHARED_DATA"):
        pytest.fail(f"{SHARED_DATA} is missing but POLYGLOT_JAX_REQUIRE_SHARED_DATA is set")
    pytest.skip(f"{SHARED_DATA} not present (the shared evaluation data lives beside the repo)")


@pytest.fixture(autouse=True)
def _clear_gin():
    """Gin bindings are global: no test sees another's."""
    import gin

    gin.clear_config()
    yield
    gin.clear_config()


@pytest.fixture(scope="session")
def sentencepiece_dir(tmp_path_factory):
    """A Llama-style SentencePiece model (BPE, byte fallback, split digits) on the demo data."""
    from polyglot_jax.testing import tokenizers

    return tokenizers.llama_style_sentencepiece(tmp_path_factory.mktemp("spm"))
