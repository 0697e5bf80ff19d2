"""Recipes over native data (each language's own examples) at the studies' sizes.

The fixture dataset has distinct ids in every language: 3,500 English examples, 300 in each of
es ru de zh fr and 30 in each other language of the pinch study. Counts go through the
registered SeqIO mixtures (``recipes.counts``), the ``data describe`` command and gin.
"""

from __future__ import annotations

import dataclasses
import json

import gin
import pytest
import seqio

from polyglot_jax import gin_utils
from polyglot_jax.data import chat_tasks, recipes, recipes_selection

MULTI_K_ORDER = ["en", "es", "ru", "de", "zh", "fr"]
PINCH_LANGUAGES = ["ar", "zh", "cs", "et", "fi", "he", "hi", "it", "ru", "es", "sw"]
SIZES = {
    "en": 3500,
    **dict.fromkeys(MULTI_K_ORDER[1:], 300),
    **dict.fromkeys(("ar", "cs", "et", "fi", "he", "hi", "it", "sw"), 30),
}


def _write_jsonl(path, lang: str, ids) -> None:
    lines = [
        json.dumps(
            {
                "id": i,
                "lang": lang,
                "messages": [
                    {"role": "user", "content": f"q {i}"},
                    {"role": "assistant", "content": f"a {i}"},
                ],
            }
        )
        for i in ids
    ]
    path.write_text("\n".join(lines) + "\n")


def _dataset(tmp_path, name: str, ids_by_lang: dict) -> chat_tasks.ChatDataset:
    files = {}
    for lang, ids in ids_by_lang.items():
        files[("train", lang)] = tmp_path / f"{name}.{lang}.jsonl"
        _write_jsonl(files[("train", lang)], lang, ids)
    data = chat_tasks.ChatDataset(name, files)
    # Counting reads the raw records: a byte vocabulary, never trained nor used, is enough.
    chat_tasks.register_dataset(data, seqio.ByteVocabulary())
    return data


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> chat_tasks.ChatDataset:
    """The native dataset, registered as ``native``: ids ``<lang>-<n>``, distinct everywhere."""
    ids = {lang: [f"{lang}-{n:04d}" for n in range(size)] for lang, size in SIZES.items()}
    return _dataset(tmp_path_factory.mktemp("native"), "native", ids)


def _sizes(selection: dict) -> dict[str, int]:
    return {lang: len(ids) for lang, ids in selection.items()}


def _own_ids_only(selection: dict) -> None:
    ids = [i for v in selection.values() for i in v]
    assert len(ids) == len(set(ids))
    for lang, chosen in selection.items():
        assert all(i.startswith(f"{lang}-") for i in chosen), lang


def test_native_data_is_detected_and_parallel_data_still_is_parallel(native, demo_tasks):
    assert not recipes_selection.resolve_parallel(native, MULTI_K_ORDER, "train", None)
    assert not recipes_selection.resolve_parallel(native, ["en"], "train", None)
    assert recipes_selection.resolve_parallel(demo_tasks.DEMO, ["en"], "train", None)
    assert recipes_selection.resolve_parallel(demo_tasks.DEMO, ["en", "es"], "train", None)
    assert recipes_selection.resolve_parallel(native, ["en", "es"], "train", True)
    with pytest.raises(recipes.RecipeError, match="parallel must be None, True or False"):
        recipes_selection.resolve_parallel(native, ["en", "es"], "train", "yes")


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_multi_k_at_the_study_sizes(native, k):
    name = recipes.multi_k_mixture(dataset="native", order=MULTI_K_ORDER, k=k)
    assert name == f"native_multi{k}_{'_'.join(MULTI_K_ORDER[:k])}_s0_native"
    expected = {"en": 3200 - 200 * (k - 1), **dict.fromkeys(MULTI_K_ORDER[1:k], 200)}
    assert recipes.counts(name) == expected
    assert sum(expected.values()) == 3200
    selection = recipes.multi_k(native, MULTI_K_ORDER, k, per_language=200, total=3200)
    assert _sizes(selection) == expected
    _own_ids_only(selection)
    # The base of a larger k is a prefix of the base of k = 1; added languages do not change.
    k1 = recipes.multi_k(native, MULTI_K_ORDER, 1, per_language=200, total=3200)
    assert selection["en"] == k1["en"][: expected["en"]]


def test_pinch_40_over_11_languages(native):
    name = recipes.pinch_mixture(dataset="native", languages=PINCH_LANGUAGES, n_multilingual=40)
    assert name == f"native_pinch40_{'_'.join(PINCH_LANGUAGES)}_s0_native"
    # 40 = 11 * 3 + 7: the first 7 languages of the list get 4, the last 4 get 3.
    expected = {
        "en": 3500 - 40,
        **dict.fromkeys(PINCH_LANGUAGES[:7], 4),
        **dict.fromkeys(PINCH_LANGUAGES[7:], 3),
    }
    assert recipes.counts(name) == expected
    selection = recipes.pinch(native, "en", PINCH_LANGUAGES, 40)
    assert _sizes(selection) == expected
    _own_ids_only(selection)
    smaller = recipes.pinch(native, "en", PINCH_LANGUAGES, 40, total=1000)
    assert len(smaller["en"]) == 960 and sum(map(len, smaller.values())) == 1000
    by_fraction = recipes.pinch(native, "en", ["es", "ru"], fraction=0.01, total=1000)
    assert _sizes(by_fraction) == {"en": 990, "es": 5, "ru": 5}


def test_budget_downsamples_to_one_language(native):
    name = recipes.budget_mixture(dataset="native", languages=MULTI_K_ORDER)
    assert name == f"native_budget300_{'_'.join(MULTI_K_ORDER)}_s0_native"
    assert recipes.counts(name) == dict.fromkeys(MULTI_K_ORDER, 50)
    selection = recipes.budget(native, MULTI_K_ORDER, total=1000)
    assert _sizes(selection) == {**dict.fromkeys(MULTI_K_ORDER[:4], 167), "zh": 166, "fr": 166}
    _own_ids_only(selection)
    assert _sizes(recipes.budget(native, ["en", "ar"])) == {"en": 15, "ar": 15}


def test_selection_is_deterministic_and_follows_the_seed(native):
    for recipe in (
        lambda seed: recipes.multi_k(native, MULTI_K_ORDER, 6, 200, 3200, seed),
        lambda seed: recipes.pinch(native, "en", PINCH_LANGUAGES, 40, seed=seed),
        lambda seed: recipes.budget(native, MULTI_K_ORDER, seed=seed),
    ):
        first, again, other = recipe(0), recipe(0), recipe(1)
        assert first == again
        assert _sizes(first) == _sizes(other)
        for lang in first:
            assert first[lang] != other[lang], lang
    mixture = recipes.multi_k_mixture(dataset="native", order=MULTI_K_ORDER, k=2, seed=7)
    assert mixture.endswith("_s7_native")
    assert recipes.counts(mixture) == {"en": 3000, "es": 200}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda d: recipes.multi_k(d, MULTI_K_ORDER, 3, per_language=400, total=3200),
            r"^multi_k: es has 300 examples in 'native' \(train\), 400 asked$",
        ),
        (
            lambda d: recipes.multi_k(d, MULTI_K_ORDER, 1, per_language=200, total=4000),
            r"^multi_k: en has 3500 examples in 'native' \(train\), 4000 asked$",
        ),
        (
            lambda d: recipes.pinch(d, "en", ["ar", "sw"], 100),
            r"^pinch: ar has 30 examples in 'native' \(train\), 50 asked$",
        ),
        (
            lambda d: recipes.pinch(d, "en", ["es"], 10, total=5000),
            r"^pinch: en has 3500 examples in 'native' \(train\), 4990 asked$",
        ),
        (
            lambda d: recipes.budget(d, ["en", "ar"], total=100),
            r"^budget: ar has 30 examples in 'native' \(train\), 50 asked$",
        ),
        (
            lambda d: recipes.multi_k(d, MULTI_K_ORDER, 2, 200, 3200, parallel=True),
            r"^multi_k: asked for 3200 examples, 0 parallel ids exist in 'native' for en, es$",
        ),
        (
            lambda d: recipes.multi_k(d, ["en", "es", "en"], 3, 200, 3200),
            r"^multi_k: language\(s\) en listed more than once$",
        ),
        (
            lambda d: recipes.pinch(d, "en", ["es", "en"], 2),
            r"^pinch: base language 'en' is also in the added languages$",
        ),
        (
            lambda d: recipes.pinch(d, "en", ["es"], 20, total=10),
            r"^pinch: 20 multilingual examples asked of a total of 10$",
        ),
        (
            lambda d: recipes.multi_k(d, MULTI_K_ORDER, 2, per_language=-5, total=100),
            r"^multi_k: -5 examples asked of es$",
        ),
        (
            lambda d: recipes.budget(d, ["en", "pt"]),
            r"^dataset 'native' has no 'train' data in 'pt' \(it has ar, cs, de, en",
        ),
    ],
)
def test_requests_the_data_cannot_meet_are_one_line_errors(native, call, message):
    with pytest.raises(recipes.RecipeError, match=message) as error:
        call(native)
    assert "\n" not in str(error.value)


def test_partly_shared_ids_never_go_to_two_languages(tmp_path, demo_tasks):
    mixed = _dataset(
        tmp_path,
        "mixed",
        {
            "en": [f"s{n}" for n in range(5)] + [f"en-{n}" for n in range(10)],
            "es": [f"s{n}" for n in range(5)] + [f"es-{n}" for n in range(10)],
        },
    )
    assert _sizes(recipes.pinch(mixed, "en", ["es"], 2)) == {"en": 3, "es": 2}  # shared → parallel
    native = recipes.pinch(mixed, "en", ["es"], 2, parallel=False)
    assert _sizes(native) == {"en": 13, "es": 2}
    assert not set(native["en"]) & set(native["es"])
    with pytest.raises(recipes.RecipeError, match=r"es has 15 examples \(10 not taken"):
        recipes.budget(mixed, ["en", "es"], total=30, parallel=False)
    forced = recipes.budget(demo_tasks.DEMO, ["en", "es", "ru"], parallel=False)
    ids = [i for v in forced.values() for i in v]
    assert len(ids) == len(set(ids)) == 68


def test_data_describe_prints_the_exact_counts(native, demo_tasks, capsys):
    from polyglot_jax.cli import data as data_cli

    # describe tokenizes: the same files under a SentencePiece vocabulary.
    chat_tasks.register_dataset(
        dataclasses.replace(native, name="native_spm"), demo_tasks.VOCABULARY
    )
    name = recipes.multi_k_mixture(dataset="native_spm", order=MULTI_K_ORDER, k=6)
    assert data_cli.main(["describe", name]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] not in ("lang", "---"):
            rows[cells[0]] = int(cells[1])
    assert rows == {"en": 2200, **dict.fromkeys(MULTI_K_ORDER[1:], 200), "total": 3200}


@pytest.mark.parametrize(
    ("gin_file", "bindings", "expected"),
    [
        ("mix_multi_k.gin", ["MULTI_K = 6"], {"en": 2200, **dict.fromkeys(MULTI_K_ORDER[1:], 200)}),
        ("mix_multi_k.gin", ["MULTI_K = 1"], {"en": 3200}),
        (
            "mix_pinch.gin",
            [],
            {
                "en": 3460,
                **dict.fromkeys(PINCH_LANGUAGES[:7], 4),
                **dict.fromkeys(PINCH_LANGUAGES[7:], 3),
            },
        ),
        (
            "mix_budget.gin",
            [f"BUDGET_LANGUAGES = {MULTI_K_ORDER}"],
            dict.fromkeys(MULTI_K_ORDER, 50),
        ),
    ],
)
def test_gin_mixture_files_on_native_data(native, gin_file, bindings, expected):
    gin_utils.configure(
        gin_utils.GinArgs(
            files=[gin_file],
            bindings=['MODEL_DIR = "/tmp/unused"', 'DATASET = "native"', *bindings],
        )
    )
    name = gin.query_parameter("%MIXTURE_OR_TASK_NAME").scoped_configurable_fn()
    assert name.startswith("native_") and name.endswith("_s0_native")
    assert recipes.counts(name) == expected


def test_gin_parallel_macro_forces_the_mode(native):
    gin_utils.configure(
        gin_utils.GinArgs(
            files=["mix_multi_k.gin"],
            bindings=[
                'MODEL_DIR = "/tmp/unused"',
                'DATASET = "native"',
                "MULTI_K = 2",
                "PARALLEL = True",
            ],
        )
    )
    with pytest.raises(recipes.RecipeError, match="0 parallel ids exist in 'native' for en, es"):
        gin.query_parameter("%MIXTURE_OR_TASK_NAME").scoped_configurable_fn()
