"""The four studies and the demo's three miniature ones, as grids of runs.

Each grid follows the paper's experiments (the gin files in ``gin_configs/studies/<study>/`` name
their sections); where the summaries are silent the choice and its source are named here or in
the gin file. ``polyglot-jax study list`` prints them.
"""

from __future__ import annotations

from polyglot_jax.data import demo_build, study_data
from polyglot_jax.studies.grid import (
    QUICK_INFER,
    QUICK_TRAIN,
    Condition,
    Figure,
    Judging,
    Quick,
    Study,
)

FUSED_ALL_LINEAR = ("query_key_value", "o_proj", "up_proj", "down_proj")  # Falcon, BLOOM, NeoX
ALL_LINEAR = {"falcon": FUSED_ALL_LINEAR, "bloom": FUSED_ALL_LINEAR, "pythia": FUSED_ALL_LINEAR}


# Polyglots' structured benchmarks as its release (R = ZurichNLP/multilingual-instruction-tuning)
# evaluated them, each in the languages of both R and the registry (fetch_sources.EVAL_LANGUAGES).
POLYGLOTS_BENCHMARKS = {
    # Zero-shot, lm-evaluation-harness at 3ccea2b2: R/llm_eval_harness.py@0132a66:47-84.
    "xnli": ("en", "de", "es", "fr", "ru", "zh", "bg", "el", "hi"),
    # R/data/xcsqa/xcsqa_dev_<lang>_<lang>.json @fbb1979 (vi @089e9bb): the dev split, as the
    # registry scores it; R answers by generation, the registry by log-likelihood.
    "xcsqa": ("de", "en", "es", "hi", "ru", "vi", "zh"),
    # R/scripts/run_xquad_inference.sh@3065351 over its data/xquad files: all in the registry.
    "xquad": ("de", "el", "en", "es", "ru", "th", "tr", "zh", "ar", "hi"),
    # The paper reports XCOPA but R has no script for it: all 11 languages, as XCOPA reports its
    # mean (the registry has each; Llama 2's pretraining table lists only id, it, vi and zh, so
    # the others measure transfer to languages under 0.005% of its pretraining data).
    "xcopa": ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"),
}


def _polyglots() -> Study:
    # Kew et al. (arXiv 2312.12683) §3: k = 1..6 languages with LoRA on every linear layer (the
    # release, ZurichNLP/multilingual-instruction-tuning, trains LoRA only; its full fine-tuning
    # file, studies/polyglots/multi_k_full.gin, is outside the grid).
    conditions = tuple(
        Condition(
            f"lora_k{k}",
            "studies/polyglots/multi_k_lora.gin",
            {"MULTI_K": k},
            x=k,
            series="lora",
            lora=True,
            tuned_languages=study_data.POLYGLOTS_LANGUAGES[:k],
        )
        for k in range(1, 7)
    )
    return Study(
        name="polyglots",
        title="Turning English-centric LLMs into polyglots (Kew et al., arXiv 2312.12683)",
        conditions=conditions,
        model="models/llama2_7b.gin",
        infer_gin="studies/polyglots/infer.gin",
        judging=Judging("single", "polyglots_helpfulness"),
        figure=Figure("curve", "languages in instruction tuning (k)"),
        benchmarks=POLYGLOTS_BENCHMARKS,
        lora_targets=ALL_LINEAR,
        # English, the languages of ML6's tuning data, Llama 2's other pretraining languages and
        # those its pretraining table does not list (the release's AlpacaEval files).
        language_groups={"English": ("en",), **study_data.POLYGLOTS_EVAL_GROUPS},
        quick=Quick(
            ("lora_k1", "lora_k3"),
            {**QUICK_TRAIN, "MULTI_K_TOTAL": 24, "MULTI_K_PER_LANGUAGE": 4},
            {**QUICK_INFER, "EVAL_LANGUAGES": ["en", "es", "is"]},
            benchmarks={"xquad": ("es",)},
        ),
    )


def _pinch() -> Study:
    # Shaham et al. (arXiv 2401.01854): §3.1 monolingual tuning in each of the 12 languages,
    # §3.2 a share of multilingual examples as a count of the 4,000-example set (1% = 40
    # examples; the other points of the curve are assumed), §3.4 2-4 languages at a fixed total
    # (1 language is mono_en).
    languages = ("ar", "zh", "cs", "en", "et", "fi", "he", "hi", "it", "ru", "es", "sw")
    mono = tuple(
        Condition(
            f"mono_{lang}",
            "studies/pinch/monolingual.gin",
            {"MONO_LANGUAGE": lang},
            series="monolingual",
            own_language=lang,
            tuned_languages=(lang,),
        )
        for lang in languages
    )
    shares = tuple(
        Condition(
            f"share_{pct:g}",
            "studies/pinch/multilingual_share.gin",
            {"PINCH_EXAMPLES": 40 * pct},
            x=pct,
            series="multilingual share",
            tuned_languages=languages,
        )
        for pct in (1, 2, 5, 10, 20, 50)
    )
    order = ("en", "ar", "zh", "cs")
    sets = tuple(
        Condition(
            f"langs_{n}",
            "studies/pinch/num_languages.gin",
            {"BUDGET_LANGUAGES": list(order[:n])},
            series="languages",
            tuned_languages=order[:n],
        )
        for n in (2, 3, 4)
    )
    # §3.2's other end: the 4,000 examples spread evenly over all 12 languages.
    uniform = Condition(
        "uniform",
        "studies/pinch/num_languages.gin",
        {"BUDGET_LANGUAGES": list(languages)},
        series="uniform",
        tuned_languages=languages,
    )
    return Study(
        name="pinch",
        title="Multilingual instruction tuning with just a pinch of multilinguality "
        "(Shaham et al., arXiv 2401.01854)",
        conditions=(*mono, *shares, *sets, uniform),
        model="models/palm_style_1b.gin",
        infer_gin="studies/pinch/infer.gin",
        # The study's side-by-side judge; its baseline here: the English-only run.
        judging=Judging("pairwise", "pinch_side_by_side", baseline="mono_en"),
        figure=Figure("curve", "multilingual examples (% of the tuning set)", zero="mono_en"),
        lora_targets={},
        quick=Quick(
            ("mono_en", "share_50"),
            QUICK_TRAIN,
            {**QUICK_INFER, "EVAL_LANGUAGES": ["en", "fi", "sw"]},
            per_condition={  # the quick data's 24 parallel examples
                "mono_en": {"MONO_EXAMPLES": 24},
                "share_50": {"PINCH_EXAMPLES": 12, "PINCH_TOTAL": 24},
            },
        ),
    )


def _zero_shot() -> Study:
    # Chirkova and Nikoulina (arXiv 2402.14778) §4: English-only Dolly (15k) and LIMA (1k),
    # full fine-tuning and LoRA, each over a learning-rate grid selected on non-English
    # prompts. The release (naver/pasero@5fa52cc) gives the chosen rates, 1e-5 (full) and 1e-4
    # (LoRA); the other grid points (half-decade steps above them) are assumed.
    rates = {"full": (1e-5, 2e-5, 5e-5, 1e-4), "lora": (1e-4, 3e-4, 1e-3, 3e-3)}
    conditions = tuple(
        Condition(
            f"{data}_{method}_lr{lr:g}",
            f"studies/zero_shot/{data}_{method}.gin",
            {"LEARNING_RATE": lr},
            x=lr,
            series=f"{data} {method}",
            lora=method == "lora",
        )
        for data in ("dolly", "lima")
        for method in ("full", "lora")
        for lr in rates[method]
    )
    return Study(
        name="zero_shot",
        title="Zero-shot cross-lingual transfer in instruction tuning of large language models "
        "(Chirkova and Nikoulina, arXiv 2402.14778)",
        conditions=conditions,
        model="models/llama2_7b.gin",
        infer_gin="studies/zero_shot/infer.gin",
        judging=Judging("facets", "zero_shot_facets"),
        figure=Figure("curve", "learning rate", log_x=True),
        lora_targets=ALL_LINEAR,
        language_groups={"English": ("en",), "zero-shot": ("fr", "pt", "ru")},
        select_by_x=True,
        quick=Quick(
            ("dolly_full_lr1e-05", "dolly_full_lr0.0001"),
            QUICK_TRAIN,
            {**QUICK_INFER, "EVAL_LANGUAGES": ["en", "fr", "ru"]},
        ),
    )


def _better_alpaca() -> Study:
    # Chen et al. (arXiv 2309.08958) §3: English-only, monolingual per language, multilingual
    # and downsampled multilingual (one language's budget), each with LoRA r8 and full FT. R =
    # hplt-project/monolingual-multilingual-instruction-tuning@0053b15. Full fine-tuning decodes
    # with repetition penalty 1.1 (R/fpft/inference.py:60), LoRA without (R/loraft/generate.py).
    languages = ("bg", "cs", "de", "es", "fi", "fr", "ru", "zh")  # R/README.md:13
    conditions: list[Condition] = []
    for method in ("lora", "full"):
        lora = method == "lora"
        decoding = {} if lora else {"REPETITION_PENALTY": 1.1}
        conditions.append(
            Condition(
                f"english_only_{method}",
                f"studies/better_alpaca/english_only_{method}.gin",
                series=f"English-only {method}",
                lora=lora,
                infer_overrides=decoding,
                tuned_languages=("en",),
            )
        )
        conditions += [
            Condition(
                f"mono_{lang}_{method}",
                f"studies/better_alpaca/monolingual_{method}.gin",
                {"MONO_LANGUAGE": lang},
                series=f"monolingual {method}",
                lora=lora,
                own_language=lang,
                infer_overrides=decoding,
                tuned_languages=(lang,),
            )
            for lang in languages
        ]
        conditions += [
            Condition(
                f"{kind}_{method}",
                f"studies/better_alpaca/{kind}_{method}.gin",
                series=f"{kind} {method}",
                lora=lora,
                infer_overrides=decoding,
                tuned_languages=("en", *languages),
            )
            for kind in ("multilingual", "downsampled")
        ]
    # R/loraft/finetune.py:46-50 and the released LLaMA-family adapters: q, k and v.
    llama = ("q_proj", "k_proj", "v_proj")
    return Study(
        name="better_alpaca",
        title="Monolingual or multilingual instruction tuning: which makes a better Alpaca? "
        "(Chen et al., arXiv 2309.08958)",
        conditions=tuple(conditions),
        model="models/bloom_7b1.gin",
        infer_gin="studies/better_alpaca/infer.gin",
        judging=Judging("single", "better_alpaca_1to3", language_gate=True),
        figure=Figure("bars", "budget"),
        # The paper's test languages: seen in tuning (by the multilingual runs) and unseen.
        language_groups={
            "English": ("en",),
            "tuned": ("bg", "es", "fi", "fr", "ru", "zh"),
            "unseen": ("hi", "no"),
        },
        lora_targets={"llama": llama, "open_llama": llama, "tiny": llama, "mistral": llama},
        quick=Quick(
            ("english_only_lora", "downsampled_lora"),
            QUICK_TRAIN,
            {**QUICK_INFER, "EVAL_LANGUAGES": ["en", "fi", "hi"]},
        ),
    )


# --- the demo's studies in miniature: the tiny model on the embedded 12-language data. ---

DEMO_TRAIN = {"TRAIN_STEPS": 200, "BATCH_SIZE": 16, "DATASET": "demo"}
DEMO_INFER = {
    "EVAL_DATASET": "demo",
    "EVAL_LANGUAGES": list(demo_build.DEMO_LANGUAGES),
    "SPLIT": "validation",
    "MAX_NEW_TOKENS": 32,
    "BATCH_SIZE": 64,
}
DEMO_QUICK = Quick(
    (),
    {"TRAIN_STEPS": 4, "BATCH_SIZE": 4, "TrainConfig.describe_data": False},
    {"MAX_NEW_TOKENS": 4},
)


def _demo(name: str, conditions: tuple[Condition, ...], figure: Figure) -> Study:
    return Study(
        name=name,
        title=f"the {name.removeprefix('demo_')} study in miniature on the demo data",
        conditions=conditions,
        model="models/tiny.gin",
        infer_gin="studies/eval.gin",
        judging=None,
        figure=figure,
        train_overrides=DEMO_TRAIN,
        infer_overrides=DEMO_INFER,
        quick=Quick(tuple(c.name for c in conditions), DEMO_QUICK.train, DEMO_QUICK.infer),
    )


def _demo_multi_k() -> Study:
    # mix_multi_k.gin's demo sizes: 60 examples, 10 per added language (the demo has no de/fr).
    order = ["en", "es", "ru", "zh", "it", "cs"]
    sizes = {"MULTI_K_ORDER": order, "MULTI_K_PER_LANGUAGE": 10, "MULTI_K_TOTAL": 60}
    conditions = tuple(
        Condition(f"k{k}", "mix_multi_k.gin", {**sizes, "MULTI_K": k}, x=k, series="demo")
        for k in range(1, 7)
    )
    return _demo("demo_multi_k", conditions, Figure("curve", "languages in tuning (k)"))


def _demo_pinch() -> Study:
    mono = Condition("en_only", "mix_mono.gin", {"MONO_LANGUAGE": "en"}, series="demo")
    conditions = tuple(
        Condition(f"pinch{n}", "mix_pinch.gin", {"PINCH_EXAMPLES": n}, x=n, series="demo")
        for n in (11, 22, 44, 66)  # at least one per added language
    )
    figure = Figure("curve", "multilingual examples (of 68)", zero="en_only")
    return _demo("demo_pinch", (mono, *conditions), figure)


def _demo_budget() -> Study:
    langs = list(demo_build.DEMO_LANGUAGES)
    conditions = (
        Condition("en_only", "mix_mono.gin", {"MONO_LANGUAGE": "en"}, series="English-only"),
        Condition(
            "downsampled",
            "mix_budget.gin",
            {"BUDGET_LANGUAGES": langs},
            series="downsampled (68 in all)",
        ),
        Condition(  # all 68 examples in all 12 languages: the registered demo_uniform
            "multilingual",
            "mix_mono.gin",
            {"MIXTURE_OR_TASK_NAME": "demo_uniform"},
            series="multilingual (68 x 12)",
        ),
    )
    return _demo("demo_budget", conditions, Figure("bars", "budget"))


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        _polyglots(),
        _pinch(),
        _zero_shot(),
        _better_alpaca(),
        _demo_multi_k(),
        _demo_pinch(),
        _demo_budget(),
    )
}
