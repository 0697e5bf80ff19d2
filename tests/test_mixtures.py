"""Recipes give the stated per-language counts; packing keeps every token and the loss mask."""

import collections

import numpy as np
import pytest
import seqio

from polyglot_jax.data import chat_tasks, preprocessors, recipes, templates


def test_pinch_counts_over_one_pass(demo_tasks):
    counts = recipes.counts("demo_pinch")
    others = demo_tasks.OTHER_LANGUAGES
    assert counts["en"] == 68 - demo_tasks.PINCH_MULTILINGUAL_EXAMPLES == 46
    assert all(counts[lang] == 2 for lang in others)
    assert sum(counts.values()) == 68
    mixture = seqio.get_mixture_or_task("demo_pinch")
    rates = {t.name.split(".")[1]: mixture.get_rate(t) for t in mixture.tasks}
    assert rates == {lang: float(n) for lang, n in counts.items()}


def test_pinch_uses_no_id_twice_and_is_deterministic(demo_tasks):
    first = recipes.pinch(demo_tasks.DEMO, "en", demo_tasks.OTHER_LANGUAGES, 22, seed=3)
    again = recipes.pinch(
        demo_tasks.DEMO, "en", list(reversed(demo_tasks.OTHER_LANGUAGES))[::-1], 22, seed=3
    )
    assert first == again
    all_ids = [i for ids in first.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 68
    other_seed = recipes.pinch(demo_tasks.DEMO, "en", demo_tasks.OTHER_LANGUAGES, 22, seed=4)
    assert other_seed != first


def test_en_only_and_uniform_counts(demo_tasks):
    assert recipes.counts("demo_en_only") == {"en": 68}
    uniform = recipes.counts("demo_uniform")
    assert uniform == {lang: 68 for lang in demo_tasks.DEMO.languages}


def test_recipe_asking_for_too_much_is_an_error(demo_tasks):
    with pytest.raises(recipes.RecipeError, match="asked for 100 en examples, only 68"):
        recipes.monolingual(demo_tasks.DEMO, "en", count=100)
    with pytest.raises(recipes.RecipeError, match="parallel ids"):
        recipes.pinch(demo_tasks.DEMO, "en", ["fi"], 10, total=500)


def _task_examples(task_name: str) -> list[dict]:
    task = seqio.get_mixture_or_task(task_name)
    ds = task.get_dataset({"targets": 512}, split="train", shuffle=False, num_epochs=1)
    return list(ds.as_numpy_iterator())


def test_packing_keeps_every_token_and_the_response_mask(demo_tasks):
    examples = _task_examples("demo_hi")
    length = 192
    converter = preprocessors.ChatFeatureConverter(pack=True)
    ds = seqio.get_dataset(
        "demo_hi",
        {"targets": length},
        converter,
        dataset_split="train",
        shuffle=False,
        num_epochs=1,
    )
    rows = list(ds.as_numpy_iterator())
    packed = []  # (targets, weights) per packed segment, in order
    for row in rows:
        seg = row["decoder_segment_ids"]
        assert np.array_equal(row["decoder_input_tokens"][seg == 0], np.zeros((seg == 0).sum()))
        for s in range(1, seg.max() + 1):
            where = seg == s
            targets = row["decoder_target_tokens"][where]
            inputs = row["decoder_input_tokens"][where]
            assert inputs[0] == 0 and np.array_equal(inputs[1:], targets[:-1])
            assert np.array_equal(row["decoder_positions"][where], np.arange(where.sum()))
            packed.append((targets, row["decoder_loss_weights"][where]))
    assert len(packed) == len(examples) and len(rows) < len(examples)
    vocab = demo_tasks.VOCABULARY
    by_tokens = collections.Counter(tuple(t) for t, _ in packed)
    assert by_tokens == collections.Counter(tuple(e["targets"]) for e in examples)
    records = {r["id"]: r for r in demo_tasks.DEMO.records("train", "hi")}
    responses = collections.Counter(
        (*vocab.encode(r["messages"][-1]["content"] + "\n"), vocab.eos_id) for r in records.values()
    )
    weighted = collections.Counter(tuple(t[w == 1]) for t, w in packed)
    assert weighted == responses


def test_multi_turn_mask_follows_the_template(demo_tasks):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Ciao"},
    ]
    record = {"id": "m", "lang": "it", "messages": messages}
    chat_tasks.add_chat_task(
        "test_multi_turn", lambda split: [record], ["train"], demo_tasks.VOCABULARY
    )
    vocab = demo_tasks.VOCABULARY
    (ex,) = _task_examples("test_multi_turn")
    expected_targets = [
        t for text, target in templates.render(messages) for t in vocab.encode(text) if target
    ] + [vocab.eos_id]
    assert ex["targets"][ex["loss_mask"] == preprocessors.TARGET].tolist() == expected_targets
    seqio.TaskRegistry.remove("test_multi_turn")
