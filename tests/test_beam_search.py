"""Beam search and no-repeat n-gram blocking against ``transformers`` on a random Llama."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder, hf
from polyglot_jax.runtime import beam_search, decoding

PROMPTS = [[5, 17, 33, 8, 21, 5, 17], [40, 41, 42], [9, 3, 60, 61, 9, 3, 60, 70, 71, 72, 73]]
NEW = 24


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """``(transformers model, our decoder, our params)`` with the same random weights."""
    config = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    reference = transformers.LlamaForCausalLM(config).eval()
    path = tmp_path_factory.mktemp("llama")
    reference.save_pretrained(path)
    cfg, params = hf.load_model_dir(path)
    return reference, Decoder(cfg), params


def reference_tokens(reference, prompt, eos, **kwargs):
    """``transformers.generate``'s continuation of one prompt, cut before the stop token."""
    with torch.no_grad():
        out = reference.generate(
            torch.tensor([prompt]),
            do_sample=False,
            max_new_tokens=NEW,
            eos_token_id=eos,
            pad_token_id=0,
            **kwargs,
        )
    tokens = out[0, len(prompt) :].tolist()
    return (tokens[: tokens.index(eos)], "eos") if eos in tokens else (tokens, "length")


def test_ngram_bans_match_the_transformers_processor():
    rng = np.random.RandomState(0)
    history = rng.randint(0, 4, (6, 30))  # a small alphabet: many repeated n-grams
    lengths = np.array([30, 25, 6, 5, 17, 1])
    for n in (1, 2, 3, 6):
        ours = np.asarray(beam_search.ngram_bans(jnp.asarray(history), jnp.asarray(lengths), n, 7))
        processor = transformers.NoRepeatNGramLogitsProcessor(n)
        for row, length in enumerate(lengths):
            ids = torch.tensor(history[row : row + 1, :length])
            ref = processor(ids, torch.zeros(1, 7))
            np.testing.assert_array_equal(ours[row], np.isinf(ref.numpy()[0]), err_msg=f"{n}")


@pytest.mark.parametrize(
    ("beams", "ngram"), [(4, 6), (4, 0), (3, 2), (1, 3)], ids=["b4n6", "b4", "b3n2", "greedy_n3"]
)
def test_generation_equals_transformers_generate(llama, beams, ngram):
    reference, model, params = llama
    # An EOS the model does emit for one prompt, so both finish reasons are exercised.
    free = reference_tokens(reference, PROMPTS[0], None, num_beams=beams)[0]
    eos = free[NEW // 3]
    kwargs = {"no_repeat_ngram_size": ngram} if ngram else {}
    sampling = decoding.Sampling(num_beams=beams, no_repeat_ngram_size=ngram)
    ours = decoding.generate(model, params, PROMPTS, NEW, eos_id=eos, sampling=sampling)
    reasons = set()
    for prompt, tokens, reason in zip(PROMPTS, ours.tokens, ours.finish_reasons, strict=True):
        expected = reference_tokens(
            reference, prompt, eos, num_beams=beams, length_penalty=1.0, **kwargs
        )
        assert (tokens, reason) == expected, prompt
        reasons.add(reason)
    assert reasons == {"eos", "length"}


def test_ngram_blocking_changes_the_beams(llama):
    _, model, params = llama
    plain = decoding.generate(model, params, PROMPTS, NEW, 2, decoding.Sampling(num_beams=4))
    blocked = decoding.Sampling(num_beams=4, no_repeat_ngram_size=2)
    assert decoding.generate(model, params, PROMPTS, NEW, 2, blocked) != plain


def test_beam_search_rejects_sampling_settings():
    with pytest.raises(ConfigError, match="NUM_BEAMS"):
        decoding.Sampling(num_beams=4, temperature=0.7)
    with pytest.raises(ConfigError, match="NO_REPEAT_NGRAM_SIZE"):
        decoding.Sampling(no_repeat_ngram_size=-1)
