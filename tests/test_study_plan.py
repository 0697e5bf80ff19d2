"""Study plans: each study's grid against its paper, dry runs, completion checks, gin order."""

import ast
import dataclasses
import json
import pathlib
import shlex

import gin
import pytest

from polyglot_jax import cli, gin_utils
from polyglot_jax.data import fetch_sources
from polyglot_jax.evaluation.benchmarks import registry
from polyglot_jax.evaluation.judges import protocols
from polyglot_jax.studies import catalog, grid
from polyglot_jax.studies.plan import Options, Planner

STAGES = ["train", "infer", "langid", "judge"]


def dry_run(capsys, name, root, *flags):
    assert cli.main(["study", "run", name, f"--root={root}", "--dry_run", *flags]) == 0
    out = capsys.readouterr().out.splitlines()
    runs, current = {}, None
    for line in out:
        if line.startswith("## ["):
            current = line.split("] ", 1)[1]
            runs[current] = {}
        elif current and not line.startswith("#"):
            stage, state, command = line.split(maxsplit=2)
            runs[current][stage] = (state.strip("[]"), shlex.split(command))
    return runs, out


def flag(command, name):
    """The value of ``--gin.NAME=`` in a command (parsed as the literal it is)."""
    values = [a.split("=", 1)[1] for a in command if a.startswith(f"--gin.{name}=")]
    return ast.literal_eval(values[-1].replace("null", "None")) if values else None


def test_polyglots_plan_is_k_1_to_6_with_lora(capsys, tmp_path):
    runs, _ = dry_run(capsys, "polyglots", tmp_path, "--base=/models/llama", "--judge=openai:m")
    assert list(runs) == [f"lora_k{k}" for k in range(1, 7)]  # the release trains LoRA only
    for name, stages in runs.items():
        assert list(stages) == [*STAGES, "benchmarks"]
        assert all(state == "todo" for state, _ in stages.values())
        train = stages["train"][1]
        method, k = name.split("_k")
        assert f"--gin_file=studies/polyglots/multi_k_{method}.gin" in train
        assert "--gin_file=models/llama2_7b.gin" in train
        assert flag(train, "MULTI_K") == int(k)
        assert flag(train, "MODEL_DIR") == str(tmp_path / name)
        assert flag(train, "INITIAL_CHECKPOINT_PATH") == "/models/llama"
        judge = stages["judge"][1]
        assert "--protocol=single" in judge and "--prompt_file=polyglots_helpfulness" in judge
        assert flag(stages["infer"][1], "VOCABULARY_PATH") == "/models/llama"
    # Falcon: every linear layer, as the release's find_all_linear_names selects them.
    runs, _ = dry_run(capsys, "polyglots", tmp_path, "--model=models/falcon_7b.gin")
    targets = ("query_key_value", "o_proj", "up_proj", "down_proj")
    assert flag(runs["lora_k2"]["train"][1], "LORA_TARGETS") == targets
    assert runs["lora_k2"]["judge"][0] == "skip"  # no --judge


def test_pinch_plan_monolingual_shares_and_language_counts(capsys, tmp_path):
    runs, _ = dry_run(capsys, "pinch", tmp_path, "--judge=openai:m")
    mono = [n for n in runs if n.startswith("mono_")]
    assert sorted(n[5:] for n in mono) == sorted(
        ["ar", "zh", "cs", "en", "et", "fi", "he", "hi", "it", "ru", "es", "sw"]
    )
    shares = {n: flag(runs[n]["train"][1], "PINCH_EXAMPLES") for n in runs if "share" in n}
    assert shares == {f"share_{p:g}": 40 * p for p in (1, 2, 5, 10, 20, 50)}  # counts of 4,000
    langs = {n: flag(runs[n]["train"][1], "BUDGET_LANGUAGES") for n in runs if "langs" in n}
    assert [len(v) for v in langs.values()] == [2, 3, 4]
    assert len(runs) == 22
    assert len(flag(runs["uniform"]["train"][1], "BUDGET_LANGUAGES")) == 12
    judge = runs["share_1"]["judge"][1]
    assert "--protocol=pairwise" in judge and "--prompt_file=pinch_side_by_side" in judge
    assert judge[judge.index("--baseline") + 1] == str(tmp_path / "mono_en" / "infer")
    assert runs["mono_en"]["judge"][0].startswith("skip")  # the baseline is not judged vs itself
    # A selection brings its pairwise baseline first.
    runs, _ = dry_run(capsys, "pinch", tmp_path, "--conditions=share_1,langs_*")
    assert list(runs) == ["mono_en", "share_1", "langs_2", "langs_3", "langs_4"]


def test_zero_shot_and_better_alpaca_plans(capsys, tmp_path):
    runs, _ = dry_run(capsys, "zero_shot", tmp_path, "--judge=openai:m")
    assert len(runs) == 16
    rates = {(n.rsplit("_lr", 1)[0]): [] for n in runs}
    for name, stages in runs.items():
        rates[name.rsplit("_lr", 1)[0]].append(flag(stages["train"][1], "LEARNING_RATE"))
        assert "--prompt_file=zero_shot_facets" in stages["judge"][1]
    assert set(rates) == {f"{d}_{m}" for d in ("dolly", "lima") for m in ("full", "lora")}
    assert all(len(set(v)) == 4 for v in rates.values())
    runs, _ = dry_run(capsys, "better_alpaca", tmp_path, "--judge=openai:m")
    mono = ("bg", "cs", "de", "es", "fi", "fr", "ru", "zh")
    kinds = ["english_only", *(f"mono_{x}" for x in mono)]
    kinds += ["multilingual", "downsampled"]
    assert list(runs) == [f"{k}_{m}" for m in ("lora", "full") for k in kinds]
    judge = runs["downsampled_full"]["judge"][1]
    assert "--language_gate" in judge and "--prompt_file=better_alpaca_1to3" in judge
    assert "--gin_file=models/bloom_7b1.gin" in runs["english_only_lora"]["train"][1]
    assert flag(runs["english_only_lora"]["train"][1], "LORA_TARGETS") is None  # BLOOM: gin's
    # Full fine-tuning decodes with repetition penalty 1.1, LoRA without (the release).
    assert flag(runs["mono_de_full"]["infer"][1], "REPETITION_PENALTY") == 1.1
    assert flag(runs["mono_de_lora"]["infer"][1], "REPETITION_PENALTY") is None


def test_completion_is_read_from_the_outputs(capsys, tmp_path):
    study = catalog.STUDIES["zero_shot"]
    planner = Planner(study, Options(root=str(tmp_path)))
    condition = study.condition("lima_full_lr2e-05")
    assert not planner.train_done(condition)
    run_dir = tmp_path / condition.name
    (run_dir / "checkpoint_7").mkdir(parents=True)
    (run_dir / "study_state.json").write_text('{"train_step": 7}')
    assert not planner.train_done(condition)  # the release's fixed 1000 steps decide
    (run_dir / "checkpoint_1000").mkdir(parents=True)
    assert planner.train_done(condition) and not planner.infer_done(condition)
    (run_dir / "infer").mkdir()
    (run_dir / "infer" / "decoding.json").write_text("{}")
    assert planner.infer_done(condition) and not planner.langid_done(condition)
    runs, lines = dry_run(capsys, "zero_shot", tmp_path, "--conditions=lima_full_*")
    assert [runs[n]["train"][0] for n in runs] == ["todo", "done", "todo", "todo"]
    assert runs["lima_full_lr2e-05"]["infer"][0] == "done"
    assert lines[-1].startswith("## report [todo] polyglot-jax study report zero_shot")


def test_tpu_commands_and_bad_flags(capsys, tmp_path):
    argv = ["study", "run", "polyglots", f"--root={tmp_path}", "--conditions=lora_k2"]
    assert cli.main(argv) == 2  # no --base: the runs would start from random weights
    assert "--base=HF_DIR is required" in capsys.readouterr().err
    argv.append("--base=/models/llama2")
    assert cli.main([*argv, "--tpu=pj", "--zone=us-central2-b"]) == 0
    out = capsys.readouterr().out.splitlines()
    train, infer = (shlex.split(line) for line in out[1:3])
    assert train[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "pj"]
    assert "python -m polyglot_jax.train" in train[-1] and "--gin.MULTI_K=2" in train[-1]
    assert "--worker=all" in infer and "polyglot_jax.infer" in infer[-1]
    assert "polyglot_jax.judge" in out[3] and out[-1].startswith("polyglot-jax study report")
    assert cli.main([*argv[:3], "--root=x", "--conditions=lora_k9", "--dry_run"]) == 2
    assert "--conditions 'lora_k9' matches no condition of polyglots" in capsys.readouterr().err
    assert cli.main(["study", "run", "nope", "--root=x"]) == 2
    assert "unknown study 'nope'" in capsys.readouterr().err
    assert cli.main(["study", "list"]) == 0
    listed = capsys.readouterr().out
    assert "polyglots" in listed and "22 runs" in listed and "6 runs" in listed


def _experiment_files():
    root = pathlib.Path(gin_utils.default_search_paths()[1]) / "studies"
    files = sorted(root.glob("*/*.gin"))
    return [
        str(f.relative_to(root.parent))
        for f in files
        if f.stem not in ("common", "lora", "full", "infer")
    ]


@pytest.mark.parametrize("experiment", _experiment_files())
def test_model_file_order_does_not_matter(experiment):
    bindings = ['MODEL_DIR="/tmp/x"'] + (["MULTI_K=2"] if "multi_k" in experiment else [])
    configs = []
    for model in ("models/llama2_7b.gin", "models/falcon_7b.gin"):
        for files in ([model, experiment], [experiment, model]):
            gin_utils.configure(gin_utils.GinArgs(files=files, bindings=bindings))
            configs.append(gin.config_str())
    assert configs[0] == configs[1] and configs[2] == configs[3]
    assert configs[0] != configs[2]  # the model file does take effect


def test_shipped_study_prompts_parse_their_protocol(tmp_path):
    item = protocols.Item("run/fi/1", "fi", "Mikä on 2+2?", "Neljä.", "Cuatro.")
    for study in catalog.STUDIES.values():
        if study.judging is None:
            continue
        protocol = protocols.get_protocol(study.judging.protocol, study.judging.prompt)
        text = protocol.requests(item)[0][1][-1]["content"]
        assert "Mikä on 2+2?" in text and not text.startswith("#")
    single = protocols.get_protocol("single", "better_alpaca_1to3")
    assert single.parse('{"reasoning": "ok", "score": 3}')["score"] == 3
    with pytest.raises(protocols.ParseError, match="outside 1-3"):
        single.parse('{"reasoning": "ok", "score": 4}')
    assert protocols.get_protocol("single").parse('{"score": 5}')["score"] == 5
    bad = tmp_path / "bad.txt"
    bad.write_text("Rate {question} please.")
    with pytest.raises(ValueError, match=r"needs \{response\}"):
        protocols.get_protocol("single", str(bad))
    with pytest.raises(OSError, match="no such file or shipped prompt"):
        protocols.get_protocol("single", "no_such_rubric")


def test_quick_selection_and_unknown_condition():
    study = catalog.STUDIES["pinch"]
    assert [c.name for c in grid.select(study, None, quick=True)] == ["mono_en", "share_50"]
    with pytest.raises(ValueError, match="no condition 'x'"):
        study.condition("x")


def test_demo_studies_plan_the_demo_data(capsys, tmp_path):
    runs, _ = dry_run(capsys, "demo_multi_k", tmp_path)
    assert [flag(s["train"][1], "MULTI_K") for s in runs.values()] == [1, 2, 3, 4, 5, 6]
    runs, _ = dry_run(capsys, "demo_budget", tmp_path, "--quick")
    assert list(runs) == ["en_only", "downsampled", "multilingual"]
    infer = runs["multilingual"]["infer"][1]
    assert flag(infer, "EVAL_DATASET") == "demo" and flag(infer, "SPLIT") == "validation"
    assert len(flag(infer, "EVAL_LANGUAGES")) == 12
    train = runs["multilingual"]["train"][1]
    assert flag(train, "MIXTURE_OR_TASK_NAME") == "demo_uniform" and flag(train, "TRAIN_STEPS") == 4
    assert list(runs["en_only"]) == ["train", "infer", "langid"]  # no LLM judge, no benchmarks


def test_a_command_line_step_count_and_the_report_s_runs_decide_completion(tmp_path):
    study = catalog.STUDIES["demo_multi_k"]
    condition = study.conditions[0]
    planner = Planner(study, Options(root=str(tmp_path), bindings=("TRAIN_STEPS=5",)))
    assert planner.final_checkpoint(condition).name == "checkpoint_5"  # as train will run
    (tmp_path / condition.name / "checkpoint_5").mkdir(parents=True)
    assert planner.train_done(condition)

    report_stage = planner.report_stage(study.conditions[:2])
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# report\n")
    names = [c.name for c in study.conditions[:2]]
    (tmp_path / "report" / "conditions.json").write_text(json.dumps(names[:1]))
    assert not report_stage.done()  # a report of other runs
    (tmp_path / "report" / "conditions.json").write_text(json.dumps(names))
    (tmp_path / "report" / "report.md").write_text("# report\n")  # newer than its inputs
    assert report_stage.done()
    shares = Options(root=str(tmp_path), pretraining_shares="falcon_shares.tsv")
    command = Planner(study, shares).report_stage(study.conditions[:2]).argv
    assert command[-1] == "--pretraining_shares=falcon_shares.tsv"


def test_each_benchmark_has_its_own_languages(capsys, tmp_path):
    runs, _ = dry_run(capsys, "polyglots", tmp_path, "--conditions=lora_k1")
    command = runs["lora_k1"]["benchmarks"][1]
    spec = next(a.split("=", 1)[1] for a in command if a.startswith("--benchmarks="))
    tasks = registry.parse_tasks(spec)
    assert tasks == dict(catalog.POLYGLOTS_BENCHMARKS)
    assert tasks["xnli"] == ("en", "de", "es", "fr", "ru", "zh", "bg", "el", "hi")
    assert len(tasks["xcopa"]) == 11 and "th" in tasks["xquad"] and "vi" in tasks["xcsqa"]
    assert not any(a.startswith("--languages") for a in command)
    for name, langs in tasks.items():  # every language is one the registry and the fetch have
        registry.check([name], langs)
        assert set(langs) <= set(fetch_sources.EVAL_LANGUAGES[name])
    study = catalog.STUDIES["polyglots"]
    planner = Planner(study, Options(root=str(tmp_path)))
    condition = study.condition("lora_k1")
    (tmp_path / "lora_k1" / "checkpoint_2000").mkdir(parents=True)
    out = tmp_path / "lora_k1" / "structured" / "metrics.json"
    out.parent.mkdir()
    every = [f"{b}_{lang}" for b, langs in tasks.items() for lang in langs]
    out.write_text(json.dumps({key: 0 for key in every[1:]}))
    assert not planner.benchmarks_done(condition)
    out.write_text(json.dumps({key: 0 for key in every}))
    assert planner.benchmarks_done(condition)  # xnli_th is not asked for
    quick = Planner(study, Options(root=str(tmp_path), quick=True))
    assert quick.benchmark_tasks() == {"xquad": ("es",)}


def test_eval_benchmark_syntax():
    assert registry.parse_tasks("xnli:en+de, xcopa:et") == {"xnli": ("en", "de"), "xcopa": ("et",)}
    assert registry.parse_tasks("xnli,xcopa", "et,it") == {
        "xnli": ("et", "it"),
        "xcopa": ("et", "it"),
    }
    assert registry.parse_tasks("xnli:en,xcopa", "it") == {"xnli": ("en",), "xcopa": ("it",)}
    tasks = {"xnli": ("en", "de"), "xcopa": ("et",)}
    assert registry.parse_tasks(registry.format_tasks(tasks)) == tasks
    with pytest.raises(ValueError, match="give NAME:LANG"):
        registry.parse_tasks("xnli")
    with pytest.raises(ValueError, match="names xnli twice"):
        registry.parse_tasks("xnli:en,xnli:de")
    with pytest.raises(ValueError, match="xcopa has no prompt for de"):
        registry.check_tasks({"xnli": ("de",), "xcopa": ("de",)})


def test_command_line_bindings_reach_the_stages_that_bind_them(capsys, tmp_path):
    bindings = [
        "--gin.EVAL_LANGUAGES=['en','fi']",
        "--gin.MAX_NEW_TOKENS=8",
        "--gin.LEARNING_RATE=1e-4",
        "--gin.make_optimizer.warmup_steps=3",  # a parameter of a configurable train binds
    ]
    runs, _ = dry_run(capsys, "polyglots", tmp_path, "--conditions=lora_k2", *bindings)
    train, infer = runs["lora_k2"]["train"][1], runs["lora_k2"]["infer"][1]
    assert flag(infer, "EVAL_LANGUAGES") == ["en", "fi"] and flag(infer, "MAX_NEW_TOKENS") == 8
    assert flag(train, "EVAL_LANGUAGES") is None and flag(train, "MAX_NEW_TOKENS") is None
    assert flag(train, "LEARNING_RATE") == 1e-4 and flag(infer, "LEARNING_RATE") is None
    assert flag(train, "make_optimizer.warmup_steps") == 3
    assert flag(infer, "CHECKPOINT_PATH") == str(tmp_path / "lora_k2")  # last: the plan's
    # A quick run's languages give way to the command line's, as a condition's overrides do.
    runs, _ = dry_run(capsys, "pinch", tmp_path, "--quick", *bindings[:1])
    assert flag(runs["mono_en"]["infer"][1], "EVAL_LANGUAGES") == ["en", "fi"]
    assert flag(runs["mono_en"]["train"][1], "EVAL_LANGUAGES") is None
    study = catalog.STUDIES["pinch"]
    planner = Planner(
        study, Options(str(tmp_path), quick=True, bindings=("EVAL_LANGUAGES=['fi']",))
    )
    assert planner.eval_languages(study.condition("mono_en")) == ["fi"]
    # Train's files bind BATCH_SIZE too: both stages take it.
    runs, _ = dry_run(
        capsys, "zero_shot", tmp_path, "--conditions=lima_full_lr1e-05", "--gin.BATCH_SIZE=3"
    )
    stages = runs["lima_full_lr1e-05"]
    assert (
        flag(stages["train"][1], "BATCH_SIZE") == 3 and flag(stages["infer"][1], "BATCH_SIZE") == 3
    )
    argv = ["study", "run", "polyglots", f"--root={tmp_path}", "--dry_run", "--gin.NOPE=1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gin.NOPE: no stage of study polyglots binds NOPE" in err[0]
    assert cli.main([*argv[:-1], "--gin.MODEL_DIR='/x'"]) == 2
    assert "--gin.MODEL_DIR: the study sets it from --root" in capsys.readouterr().err


def test_a_done_stage_made_by_another_command_is_refused_not_skipped(capsys, tmp_path):
    from polyglot_jax.errors import ConfigError
    from polyglot_jax.studies import runner

    study = catalog.STUDIES["zero_shot"]
    condition = study.condition("lima_full_lr1e-05")
    run_dir = tmp_path / condition.name
    (run_dir / "checkpoint_1000").mkdir(parents=True)
    (run_dir / "infer").mkdir()
    (run_dir / "infer" / "decoding.json").write_text("{}")
    options = Options(root=str(tmp_path), bindings=("MAX_NEW_TOKENS=1024",))
    planner = Planner(study, options)
    for stage in planner.stages(condition)[:2]:
        runner.record(planner, stage)  # train and infer finished with these commands
    runs, _ = dry_run(capsys, "zero_shot", tmp_path, "--conditions=lima_full_lr1e-05",
                      "--gin.MAX_NEW_TOKENS=1024")  # fmt: skip
    assert runs["lima_full_lr1e-05"]["infer"][0] == "done"
    runs, _ = dry_run(capsys, "zero_shot", tmp_path, "--conditions=lima_full_lr1e-05",
                      "--gin.MAX_NEW_TOKENS=8")  # fmt: skip
    assert runs["lima_full_lr1e-05"]["train"][0] == "done"
    assert runs["lima_full_lr1e-05"]["infer"][0] == "changed"
    changed = dataclasses.replace(options, bindings=("MAX_NEW_TOKENS=8",))
    with pytest.raises(ConfigError) as error:
        runner.run(study, changed, ["lima_full_lr1e-05"])
    message = str(error.value)
    assert "lima_full_lr1e-05 infer" in message and "made by another command" in message
    assert "now --gin.MAX_NEW_TOKENS=8, was --gin.MAX_NEW_TOKENS=1024" in message


def test_judge_credentials_are_neither_shown_nor_stored(capsys, tmp_path):
    secret = "openai:m@http://user:sk-SECRET@judge.example:8000/v1"
    _, lines = dry_run(capsys, "pinch", tmp_path, f"--judge={secret}", "--conditions=share_1")
    assert not any("SECRET" in line for line in lines)
    assert any("--judge=openai:m@http://judge.example:8000/v1" in line for line in lines)
    from polyglot_jax.studies import runner

    study = catalog.STUDIES["pinch"]
    planner = Planner(study, Options(root=str(tmp_path), judge=secret))
    runner.write_listing(study, planner, [study.condition("share_1")])
    assert "SECRET" not in (tmp_path / "study.json").read_text()
