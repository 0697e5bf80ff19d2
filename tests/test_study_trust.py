"""The study report's significance, seed spread and judge tables, from hand-written runs."""

import json

from polyglot_jax.studies import catalog, execute, grid, trust
from polyglot_jax.studies.plan import Options, Planner

LANGS = ("en", "es", "de")


def _write_run(root, run, agree, score):
    """Four prompts per language: language agreement ``agree(lang, i)``, the single judge's
    ``score(lang, i)`` and an answer ``i + 1`` words long."""
    (root / run / "judge").mkdir(parents=True)
    (root / run / "infer").mkdir()
    items = [(lang, i) for lang in LANGS for i in range(4)]
    langid = [
        {"run": run, "id": str(i), "sample": 0, "lang": lang, "lang_agree": agree(lang, i)}
        for lang, i in items
    ]
    judged = [
        {"run": run, "item_id": f"{run}/{lang}/{i}", "lang": lang, "status": "ok"}
        | {"score": score(lang, i)}
        for lang, i in items
    ]
    answers = [
        {"id": str(i), "lang": lang, "response": " ".join(["w"] * (i + 1)), "num_tokens": i + 1}
        for lang, i in items
    ]
    for path, rows in (
        (root / run / "judge" / "judgments.jsonl", langid),
        (root / run / "judge" / "single.jsonl", judged),
        (root / run / "infer" / "answers.jsonl", answers),
    ):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_seeded_report_pools_seeds_and_marks_what_holds(tmp_path):
    study = catalog.STUDIES["polyglots"]
    conditions = grid.select(study, ["lora_k1", "lora_k3"], seeds=(0, 1))
    for seed in (0, 1):
        # lora_k3 agrees everywhere, lora_k1 only in English; scores grow with length.
        _write_run(tmp_path, f"lora_k1_seed{seed}", lambda lang, i: lang == "en", lambda lang, i: 1)
        _write_run(
            tmp_path, f"lora_k3_seed{seed}", lambda lang, i: True, lambda lang, i: 1 + i // 2
        )
    summary = execute.write_report(Planner(study, Options(root=str(tmp_path))), conditions)
    head = summary.split("## Spread across seeds")[0]
    assert "| lora_k1 | lora | 1 |" in head and "_seed" not in head
    assert "| lora_k3 | Language agreement (%) | 2 | 100.00 ± 0.00 | 100.00, 100.00 |" in summary
    # es and de: 8 paired units (4 prompts x 2 seeds), each +100: exact p = 2 / 2**8; Holm
    # over the 3 languages (en: p = 1) 3 x 0.0078, BH 3/2 x 0.0078.
    row = "| lora_k3 | lora_k1 | Language agreement (%) | es | 8 | +100.00 [+100.00, +100.00] |"
    assert f"{row} 0.00781 | 0.0234 | 0.0117 | **holds** |" in summary
    assert "| lora_k3 | lora_k1 | Language agreement (%) | en | 8 | +0.00" in summary
    assert "| group: all | 24 | +66.67" in summary
    assert "| single_score | en | 16 |" in summary  # lora_k1's constant scores included
    assert "answer order" not in summary  # no pairwise judge


def test_reference_is_the_baseline_then_the_zero_condition_then_the_first():
    pinch, polyglots = catalog.STUDIES["pinch"], catalog.STUDIES["polyglots"]
    share = grid.select(pinch, ["share_50"], seeds=(0, 1))
    assert trust.reference(pinch, share) == "mono_en"
    assert trust.reference(polyglots, grid.select(polyglots, ["lora_k3", "lora_k1"])) == "lora_k1"
    assert trust.reference(polyglots, grid.select(polyglots, ["lora_k1"])) is None
