"""The study datasets as lazily registered tasks under DATA_DIR, and their fixture data.

``data describe`` of the studies' configs on fixture data at the studies' sizes prints the
studies' counts: multi-k 3,200 with 200 per added language (Polyglots), 40 multilingual
examples over 11 languages (Pinch: 7 x 4 + 4 x 3, English 3,460) and Alpaca-cleaned
downsampled to one language's size over 9 languages (Better Alpaca: 5,751 each, one 5,752).
"""

from __future__ import annotations

import gin
import pytest
import seqio

from polyglot_jax import gin_utils
from polyglot_jax.cli import data as data_cli
from polyglot_jax.data import chat_tasks, study_data
from polyglot_jax.errors import ConfigError, MissingFileError
from polyglot_jax.testing import study_fixtures

POLYGLOTS = list(study_data.POLYGLOTS_LANGUAGES)
PINCH = list(study_data.PINCH_LANGUAGES[1:])


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study_data")
    study_fixtures.write_fixture_data(folder, "study")
    return folder


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quick_data")
    study_fixtures.write_fixture_data(folder, "quick")
    return folder


@pytest.fixture()
def registered(monkeypatch):
    """Every study dataset registered with no data folder and reading forbidden."""
    monkeypatch.delenv(study_data.ENV_DATA_DIR, raising=False)

    def no_reading(*args):
        raise AssertionError(f"read at registration: {args}")

    monkeypatch.setattr(study_data, "_read", no_reading)
    names = [task for name in study_data.DATASETS for task in study_data.register(name)]
    monkeypatch.undo()
    return names


def _table(out: str) -> dict[str, int]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and cells[0] not in ("lang", "---"):
            rows[cells[0]] = int(cells[1])
    return rows


def test_registering_reads_no_file_and_needs_no_data_folder(registered):
    assert {"guanaco_en", "lima_oasst_sw", "alpaca_bg", "oasst_test_no", "dolly_en"} <= set(
        registered
    )
    for name in ("guanaco_de", "lima_oasst_fi", "oasst_test_bn", "alpaca_eval_polyglots_el"):
        assert name in seqio.TaskRegistry.names()
    dataset, _ = chat_tasks.get_dataset("lima_oasst")
    assert dataset.splits == ("train", "test") and dataset.languages == study_data.PINCH_LANGUAGES


def test_a_missing_file_names_it_and_the_fetch_command(registered, tmp_path, monkeypatch):
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(tmp_path))
    dataset, _ = chat_tasks.get_dataset("alpaca")
    with pytest.raises(MissingFileError) as error:
        dataset.records("train", "de")
    assert str(error.value) == (
        f"{tmp_path}/alpaca/train.de.jsonl does not exist: run `polyglot-jax data fetch alpaca "
        f"--data_dir={tmp_path} --languages=de`"
    )
    with pytest.raises(MissingFileError, match=r"fetch dolly --data_dir=\S+`$"):
        chat_tasks.get_dataset("dolly")[0].records("train", "en")


def test_no_data_folder_says_how_to_set_one(registered, monkeypatch):
    monkeypatch.delenv(study_data.ENV_DATA_DIR, raising=False)
    with pytest.raises(ConfigError, match=r"--gin.DATA_DIR=.*POLYGLOT_JAX_DATA_DIR") as error:
        chat_tasks.get_dataset("guanaco")[0].records("train", "en")
    assert "\n" not in str(error.value)


def test_describe_of_missing_data_is_one_error_line(registered, tmp_path, monkeypatch, capsys):
    from polyglot_jax.cli import common

    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(tmp_path))
    assert common.run(lambda: data_cli.main(["describe", "lima_en"])) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"error: {tmp_path}/lima/train.en.jsonl does not exist: run "
        f"`polyglot-jax data fetch lima --data_dir={tmp_path}`"
    )


def test_gin_data_dir_wins_over_the_environment(registered, quick_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(tmp_path))  # empty
    gin_utils.configure(
        gin_utils.GinArgs(files=["runs/study_data.gin"], bindings=[f'DATA_DIR = "{quick_dir}"'])
    )
    records = chat_tasks.get_dataset("guanaco")[0].records("train", "en")
    assert len(records) == study_fixtures.SIZES["quick"]["guanaco"]["train"]["en"]


def test_parts_are_read_in_order_and_prompt_files_become_user_turns(
    registered, quick_dir, monkeypatch
):
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(quick_dir))
    sizes = study_fixtures.SIZES["quick"]["lima_oasst"]["train"]
    records = chat_tasks.get_dataset("lima_oasst")[0].records("train", "fi")
    ids = [r["id"] for r in records]
    assert len(ids) == sizes["lima"] + sizes["oasst"]
    assert ids[0].startswith("lima_oasst-lima-") and ids[-1].startswith("lima_oasst-oasst-")
    held_out = chat_tasks.get_dataset("lima_oasst")[0].records("test", "fi")
    assert all([m["role"] for m in r["messages"]] == ["user"] for r in held_out)
    prompts = chat_tasks.get_dataset("oasst_test")[0].records("test", "bn")
    assert len(prompts) == 4 and prompts[0]["messages"][0]["role"] == "user"
    # Parallel fixture data shares ids across languages; native data does not.
    en = {r["id"] for r in chat_tasks.get_dataset("alpaca")[0].records("train", "en")}
    zh = {r["id"] for r in chat_tasks.get_dataset("alpaca")[0].records("train", "zh")}
    assert en == zh
    guanaco = chat_tasks.get_dataset("guanaco")[0]
    assert not {r["id"] for r in guanaco.records("train", "en")} & {
        r["id"] for r in guanaco.records("train", "es")
    }


def test_iteration_lists_the_files_present(registered, quick_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(quick_dir))
    files = chat_tasks.get_dataset("alpaca")[0].files
    assert sorted(lang for _, lang in files) == sorted(study_data.BETTER_ALPACA_LANGUAGES)
    assert ("train", "de") in files  # a language it can have, not fetched
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(tmp_path))
    assert list(files) == []


def test_vocabulary_path_picks_the_tokenizer(registered, sentencepiece_dir, demo_tasks):
    task = seqio.get_mixture_or_task("dolly_en")
    vocabulary = task.output_features["targets"].vocabulary
    assert vocabulary.vocab_size == demo_tasks.VOCABULARY.vocab_size  # None: the demo's
    gin_utils.configure(
        gin_utils.GinArgs(
            files=["runs/study_data.gin"], bindings=[f'VOCABULARY_PATH = "{sentencepiece_dir}"']
        )
    )
    assert vocabulary.vocab_size == 1000
    assert vocabulary.encode("Hello") == vocabulary.resolved.encode("Hello")
    assert vocabulary.info.bos_id == 1  # the tokenizer's own framing comes through


def test_lazy_vocabularies_are_equal_when_they_load_the_same_folder(sentencepiece_dir, tmp_path):
    lazy = study_data.LazyVocabulary
    assert lazy() == lazy(None) == study_data.VOCABULARY  # VOCABULARY_PATH unset: the demo's
    assert lazy(str(sentencepiece_dir)) != lazy(str(tmp_path))
    assert lazy(str(sentencepiece_dir)) != lazy()
    gin.parse_config([f"settings.vocabulary_path = {str(sentencepiece_dir)!r}"])
    assert lazy() == lazy(str(sentencepiece_dir)) != lazy(None)
    assert lazy(str(sentencepiece_dir)) == lazy(str(sentencepiece_dir)).resolved
    assert lazy(None) != lazy(str(sentencepiece_dir)).resolved


def test_a_mixture_needs_one_vocabulary(sentencepiece_dir):
    records = [{"id": "a", "lang": "en", "messages": [{"role": "user", "content": "Hi"}]}]
    folders = {"lazy_a": None, "lazy_b": str(sentencepiece_dir), "lazy_c": None}
    for name, path in folders.items():
        vocabulary = study_data.LazyVocabulary(path)
        chat_tasks.add_chat_task(name, lambda split: records, ["train"], vocabulary)
    for name in ("lazy_same", "lazy_different"):
        seqio.MixtureRegistry.remove(name)
    same = seqio.MixtureRegistry.add("lazy_same", [("lazy_a", 1), ("lazy_c", 1)])
    different = seqio.MixtureRegistry.add("lazy_different", [("lazy_a", 1), ("lazy_b", 1)])
    same.get_dataset({"targets": 8}, "train", shuffle=False)  # SeqIO compares them here
    with pytest.raises(ValueError, match="same vocabulary"):
        different.get_dataset({"targets": 8}, "train", shuffle=False)


def test_fixture_sizes_and_bad_size_name(tmp_path):
    written = study_fixtures.write_fixture_data(tmp_path, "quick")
    assert written["oasst_test"] == 4 * len(study_data.OASST_TEST_LANGUAGES)
    assert written["alpaca_eval_polyglots"] == 4 * 14
    assert written["alpaca_eval_zero_shot"] == 3 * len(study_data.ZERO_SHOT_EVAL_LANGUAGES)
    assert (tmp_path / "lima_oasst" / "train.sw.oasst.jsonl").exists()
    with pytest.raises(ValueError, match="sizes must be one of study, quick"):
        study_fixtures.write_fixture_data(tmp_path, "huge")


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_describe_multi_k_at_the_study_size(registered, study_dir, monkeypatch, capsys, k):
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(study_dir))
    args = ["describe", "--gin_file=studies/polyglots/multi_k_lora.gin", f"--gin.MULTI_K={k}"]
    if k < 6:  # every k's counts; the tokens of one (tokenizing takes a few seconds)
        args.append("--examples_only")
    assert data_cli.main(args) == 0
    expected = {"en": 3200 - 200 * (k - 1), **dict.fromkeys(POLYGLOTS[1:k], 200)}
    assert _table(capsys.readouterr().out) == {**expected, "total": 3200}


def test_describe_pinch_40_over_11_languages(registered, study_dir, monkeypatch, capsys):
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(study_dir))
    args = ["describe", "--gin_file=mix_pinch.gin", "--gin_file=runs/study_data.gin"]
    assert data_cli.main([*args, '--gin.DATASET="lima_oasst"', "--gin.PINCH_EXAMPLES=40"]) == 0
    expected = {"en": 3960, **dict.fromkeys(PINCH[:7], 4), **dict.fromkeys(PINCH[7:], 3)}
    assert _table(capsys.readouterr().out) == {**expected, "total": 4000}
    # the study's own config: 1% of the examples multilingual is the same 40
    share = ["describe", "--gin_file=studies/pinch/multilingual_share.gin", "--examples_only"]
    assert data_cli.main(share) == 0
    assert _table(capsys.readouterr().out) == {**expected, "total": 4000}


def test_describe_budget_downsamples_to_one_language(registered, study_dir, monkeypatch, capsys):
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(study_dir))
    args = ["describe", "--examples_only", "--gin_file=studies/better_alpaca/downsampled_lora.gin"]
    assert data_cli.main(args) == 0
    # nine languages (German included): 51,760 = 9 x 5,751 + 1, the first of the list gets it
    expected = {**dict.fromkeys(study_data.BETTER_ALPACA_LANGUAGES, 5751), "en": 5752}
    assert _table(capsys.readouterr().out) == {**expected, "total": 51760}


def test_polyglots_evaluation_languages_and_groups():
    groups = study_data.POLYGLOTS_EVAL_GROUPS
    assert groups["tuned"] == study_data.POLYGLOTS_LANGUAGES[1:]
    in_order = ("en", *groups["tuned"], *groups["zero-shot"], *groups["unseen"])
    assert in_order == study_data.POLYGLOTS_EVAL_LANGUAGES
    assert len(set(study_data.POLYGLOTS_EVAL_LANGUAGES)) == 14


@pytest.mark.parametrize(
    ("task", "count"), [("alpaca_eval_polyglots_is", 805), ("alpaca_eval_zero_shot_pt", 113)]
)
def test_describe_the_alpaca_eval_prompts_at_the_study_size(
    registered, study_dir, monkeypatch, capsys, task, count
):
    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(study_dir))
    assert data_cli.main(["describe", task, "--split=test", "--examples_only"]) == 0
    lang = task.rsplit("_", 1)[1]
    assert _table(capsys.readouterr().out) == {lang: count, "total": count}


# Optimizer updates of each kind of run at the studies' sizes, computed by hand from the papers
# and releases: (study, condition) -> (steps, BATCH_SIZE, BATCH_UNIT, warmup steps).
STEPS_BY_HAND = {
    # Polyglots: 10 epochs of 3200 at 16 = 2000 steps (the release's max_steps), 3% warmup = 60.
    ("polyglots", "lora_k3"): (2000, 16, "examples", 60),
    # Pinch: 3 epochs of 4000 at 64 examples = ceil(187.5) = 188 (the assumed PaLM recipe).
    ("pinch", "share_1"): (188, 64, "examples", 30),
    ("pinch", "mono_en"): (188, 64, "examples", 30),
    ("pinch", "langs_3"): (188, 64, "examples", 30),
    # Zero-shot: the release's fixed 1000 steps of 8192 x 10 (full) or x 4 (LoRA) tokens.
    ("zero_shot", "dolly_full_lr1e-05"): (1000, 40, "rows", 0),
    ("zero_shot", "lima_lora_lr0.0001"): (1000, 16, "rows", 0),
    # Better Alpaca at 128 examples: LoRA 5 epochs, 100 warmup steps; full 3 epochs, 3% warmup.
    ("better_alpaca", "english_only_lora"): (2022, 128, "examples", 100),  # 5 x 51,760 / 128
    ("better_alpaca", "downsampled_lora"): (2022, 128, "examples", 100),  # 9 x 5,751 + 1
    ("better_alpaca", "multilingual_lora"): (18197, 128, "examples", 100),  # 5 x 465,840 / 128
    ("better_alpaca", "english_only_full"): (1214, 128, "examples", 37),  # 3 x 51,760 / 128
    ("better_alpaca", "multilingual_full"): (10919, 128, "examples", 328),  # 3 x 465,840 / 128
}


@pytest.mark.parametrize(("study", "condition"), list(STEPS_BY_HAND))
def test_study_runs_train_the_papers_updates(registered, study_dir, monkeypatch, study, condition):
    import gin

    from polyglot_jax.data import recipes
    from polyglot_jax.launch.sweep import gin_literal
    from polyglot_jax.studies import catalog
    from polyglot_jax.studies.plan import Options, Planner
    from polyglot_jax.training import budget, optimizers

    monkeypatch.setenv(study_data.ENV_DATA_DIR, str(study_dir))
    planner = Planner(catalog.STUDIES[study], Options(root="/tmp/unused", base="/models/base"))
    run = planner.study.condition(condition)
    bindings = [f"{k} = {gin_literal(v)}" for k, v in planner.train_bindings(run).items()]
    bindings += ['MODEL_DIR = "/tmp/unused"', "VOCABULARY_PATH = None"]
    gin_utils.configure(
        gin_utils.GinArgs(files=[planner.model, run.gin_file], bindings=bindings), finalize=False
    )
    macro = gin.query_parameter
    if condition.startswith("multilingual"):  # every example of every language (no selection)
        per_language = study_fixtures.SIZES["study"]["alpaca"]["train"]["en"]
        examples = len(macro("%BUDGET_LANGUAGES")) * per_language
    else:
        examples = sum(recipes.counts(data_cli._gin_mixture()).values())
    plan = budget.schedule(
        macro("%TRAIN_STEPS"),
        macro("%NUM_EPOCHS"),
        macro("%BATCH_SIZE"),
        macro("%BATCH_UNIT"),
        examples,
        examples,  # rows do not change the steps of a plan in examples
    )
    ratio, warmup = macro("%WARMUP_RATIO"), macro("%WARMUP_STEPS")
    if ratio is not None:
        warmup = optimizers._warmup_from_ratio(ratio, warmup, plan.steps)
    expected = STEPS_BY_HAND[study, condition]
    assert (plan.steps, macro("%BATCH_SIZE"), macro("%BATCH_UNIT"), warmup) == expected
