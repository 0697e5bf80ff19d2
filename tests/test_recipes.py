"""The studies' recipes: exact counts, determinism, gin files, and clear errors."""

import gin
import pytest

from polyglot_jax import gin_utils
from polyglot_jax.data import recipes

ORDER = ["en", "es", "ru", "zh", "fi"]


def test_multi_k_keeps_the_total_and_adds_per_language(demo_tasks):
    for k in (1, 2, 4):
        selection = recipes.multi_k(demo_tasks.DEMO, ORDER, k, per_language=10, total=60)
        assert sum(map(len, selection.values())) == 60
        assert len(selection["en"]) == 60 - 10 * (k - 1)
        assert [len(selection[lang]) for lang in ORDER[1:k]] == [10] * (k - 1)
        ids = [i for v in selection.values() for i in v]
        assert len(ids) == len(set(ids))
    with pytest.raises(recipes.RecipeError, match="asked for 3200 examples, 68 parallel ids"):
        recipes.multi_k(demo_tasks.DEMO, ORDER, 3, per_language=200, total=3200)
    with pytest.raises(recipes.RecipeError, match="k=9"):
        recipes.multi_k(demo_tasks.DEMO, ORDER, 9, per_language=1, total=10)


def test_budget_downsamples_to_one_language(demo_tasks):
    langs = ["en", "es", "ru", "zh", "fi", "cs", "hi"]
    selection = recipes.budget(demo_tasks.DEMO, langs)
    sizes = {lang: len(ids) for lang, ids in selection.items()}
    assert sum(sizes.values()) == 68
    assert set(sizes.values()) == {68 // 7, 68 // 7 + 1}
    ids = [i for v in selection.values() for i in v]
    assert len(ids) == len(set(ids))  # parallel data: no prompt in two languages
    assert recipes.budget(demo_tasks.DEMO, langs) == selection


def test_pinch_by_fraction_and_temperature_rates(demo_tasks):
    others = ["fi", "sw"]
    by_fraction = recipes.pinch(demo_tasks.DEMO, "en", others, fraction=0.1)
    assert len(by_fraction["fi"]) + len(by_fraction["sw"]) == round(0.1 * 68)
    with pytest.raises(recipes.RecipeError, match="exactly one"):
        recipes.pinch(demo_tasks.DEMO, "en", others, n_multilingual=4, fraction=0.1)
    selection = {"a": ["x"] * 100, "b": ["y"] * 1}
    assert recipes.temperature_rates(selection, 1.0) == {"a": 100.0, "b": 1.0}
    assert recipes.temperature_rates(selection, 2.0) == {"a": 10.0, "b": 1.0}


@pytest.mark.parametrize(
    ("gin_file", "bindings", "expected"),
    [
        (
            "mix_pinch.gin",
            [],
            {
                "en": 28,
                **{lang: 4 for lang in ("ar", "zh", "cs", "et", "fi", "he", "hi")},
                **{lang: 3 for lang in ("it", "ru", "es", "sw")},
            },
        ),
        ("mix_mono.gin", ["MONO_LANGUAGE = 'hi'", "MONO_EXAMPLES = 30"], {"hi": 30}),
        (
            "mix_multi_k.gin",
            [
                "MULTI_K = 3",
                "MULTI_K_ORDER = ['en', 'es', 'ru', 'zh']",
                "MULTI_K_PER_LANGUAGE = 10",
                "MULTI_K_TOTAL = 60",
            ],
            {"en": 40, "es": 10, "ru": 10},
        ),
        (
            "mix_budget.gin",
            ["BUDGET_LANGUAGES = ['en', 'sw']", "BUDGET_TOTAL = 20"],
            {"en": 10, "sw": 10},
        ),
    ],
)
def test_gin_mixture_files(gin_file, bindings, expected, demo_tasks):
    gin_utils.configure(
        gin_utils.GinArgs(files=[gin_file], bindings=['MODEL_DIR = "/tmp/unused"', *bindings])
    )
    name = gin.query_parameter("%MIXTURE_OR_TASK_NAME").scoped_configurable_fn()
    assert recipes.counts(name) == expected


def test_gin_default_of_a_study_too_big_for_the_data_is_one_clear_error(demo_tasks):
    gin_utils.configure(
        gin_utils.GinArgs(files=["mix_budget.gin"], bindings=['MODEL_DIR = "/tmp/unused"'])
    )
    with pytest.raises(recipes.RecipeError, match="dataset 'demo' has no 'train' data in 'bg'"):
        gin.query_parameter("%MIXTURE_OR_TASK_NAME").scoped_configurable_fn()


def test_register_by_name_is_what_the_gin_file_registers(demo_tasks):
    gin_utils.configure(
        gin_utils.GinArgs(
            files=["mix_pinch.gin"],
            bindings=['MODEL_DIR = "/tmp/unused"', "PINCH_LANGUAGES = ['es', 'ru']"],
        )
    )
    from_gin = gin.query_parameter("%MIXTURE_OR_TASK_NAME").scoped_configurable_fn()
    gin.clear_config()
    name = recipes.register("pinch", "demo", languages=["es", "ru"], n_multilingual=40)
    assert name == from_gin == "demo_pinch40_es_ru_s0"
    assert recipes.counts(name) == {"en": 28, "es": 20, "ru": 20}
    name = recipes.register("temperature", "demo", languages=["en", "fi"], temperature=2.0)
    assert name == "demo_temp2_en_fi" and recipes.counts(name) == {"en": 68, "fi": 68}


def test_register_names_an_unknown_recipe_or_setting(demo_tasks):
    with pytest.raises(recipes.RecipeError, match="unknown recipe 'pinchh'; known: monolingual"):
        recipes.register("pinchh", "demo")
    with pytest.raises(recipes.RecipeError, match=r"recipe 'budget': .*'totl'"):
        recipes.register("budget", "demo", languages=["en"], totl=5)
    with pytest.raises(recipes.RecipeError, match=r"recipe 'budget': .*'languages'"):
        recipes.register("budget", "demo")


def test_a_recipe_mixture_takes_an_explicit_chat_format(demo_tasks):
    import seqio

    from polyglot_jax.data import preprocessors, templates

    gin.parse_config(["chat_format.template = 'guanaco'"])  # the run's: not used
    chatml = templates.ChatFormat("chatml", "all")
    name = recipes.register("monolingual", "demo", lang="fi", count=2, chat_format=chatml)
    (ex, _) = (
        seqio.get_mixture_or_task(f"{name}.fi")
        .get_dataset(None, "train", shuffle=False, num_epochs=1)
        .as_numpy_iterator()
    )
    record = next(r for r in demo_tasks.DEMO.records("train", "fi") if r["id"] == ex["id"].decode())
    ids, mask = preprocessors.encode_conversation(demo_tasks.VOCABULARY, chatml, record["messages"])
    assert ex["targets"].tolist() == ids.tolist() and ex["loss_mask"].tolist() == mask.tolist()
    assert (mask == preprocessors.TARGET).all()  # loss on "all"
    assert "<|im_start|>" in demo_tasks.VOCABULARY.decode(ids.tolist())


def test_describe_counts_examples_and_tokens(demo_tasks):
    from polyglot_jax.data import describe

    table = describe.describe("demo_pinch", length=40)
    assert {lang: row["examples"] for lang, row in table.items()} == recipes.counts("demo_pinch")
    for row in table.values():
        assert 0 < row["target_tokens"] < row["tokens"]
        assert row["over_length"] <= row["examples"]
    assert "| total | 68 |" in describe.format_table(table)


def test_parallel_data_never_uses_an_id_twice_in_either_mode(demo_tasks):
    data, others = demo_tasks.DEMO, demo_tasks.OTHER_LANGUAGES
    assert recipes.pinch(data, "en", others, 22) == recipes.pinch(
        data, "en", others, 22, parallel=True
    )
    for parallel in (None, True, False):
        for selection, sizes in (
            (recipes.pinch(data, "en", others, 22, parallel=parallel), {"en": 46, "fi": 2}),
            (recipes.multi_k(data, ORDER, 3, 10, 60, parallel=parallel), {"en": 40, "ru": 10}),
            (recipes.budget(data, ORDER, parallel=parallel), {"en": 14, "fi": 13}),
        ):
            ids = [i for v in selection.values() for i in v]
            assert len(ids) == len(set(ids)), parallel
            assert {lang: len(selection[lang]) for lang in sizes} == sizes
