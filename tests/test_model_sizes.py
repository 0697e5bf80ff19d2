"""Every model gin file builds, by shape only, a model of its published size (within 1%)."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax import gin_utils
from polyglot_jax.models import Decoder, DecoderConfig

PUBLISHED = {  # parameters of the released checkpoints
    "llama2_7b": 6_738_415_616,
    "llama2_13b": 13_015_864_320,
    "llama2_70b": 68_976_648_192,
    "open_llama_7b": 6_738_415_616,
    "llama3_8b": 8_030_261_248,
    "mistral_7b": 7_241_732_096,
    "qwen2_7b": 7_615_616_512,
    "falcon_7b": 6_921_720_704,
    "bloom_560m": 559_214_592,
    "bloom_7b1": 7_069_016_064,
    "pythia_70m": 70_426_624,
    "pythia_160m": 162_322_944,
    "pythia_410m": 405_334_016,
    "pythia_1b": 1_011_781_632,
    "pythia_1_4b": 1_414_647_808,
    "pythia_2_8b": 2_775_208_960,
    "pythia_6_9b": 6_857_302_016,
    "pythia_12b": 11_846_072_320,
    "palm_style_1b": 1_000_000_000,  # a 1B-class design, no release to match
}
MODELS = pathlib.Path(gin_utils.default_search_paths()[1]) / "models"


def config_of(name: str) -> DecoderConfig:
    gin_utils.configure(gin_utils.GinArgs(files=[f"models/{name}.gin"]))
    return DecoderConfig()  # fields bound by the gin file


def test_every_size_file_is_listed():
    sizes = {p.stem for p in MODELS.glob("*.gin")} - {"tiny"}
    sizes = {s for s in sizes if not s.endswith("_base")}
    assert sizes == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_published_size(name):
    cfg = config_of(name)
    shapes = jax.eval_shape(
        lambda: Decoder(cfg).init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))
    )
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
    tolerance = 0.15 if name == "palm_style_1b" else 0.01
    assert abs(count - PUBLISHED[name]) / PUBLISHED[name] <= tolerance, count
