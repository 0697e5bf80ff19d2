"""MGSM as lm-evaluation-harness's ``mgsm_native_cot_<lang>``: prompts with native-language
exemplars, the strict and flexible answer extraction, generations equal to ``transformers``
greedy decoding cut at the harness's stop strings; and the ``eval`` command with its report over
all five harness tasks."""

import json
import random
import re
import string

import numpy as np
import pytest
import torch
import transformers
from test_harness_tasks import (  # noqa: F401  (mirror: a fixture)
    belebele_rows,
    fetch_into,
    mirror,
    pawsx_rows,
    write_jsonl,
    xstorycloze_rows,
    xwinograd_rows,
)
from test_structured import tiny_llama  # noqa: F401  (a fixture)

from polyglot_jax.data import fetch_mgsm
from polyglot_jax.errors import DataError
from polyglot_jax.evaluation.benchmarks import mgsm, registry, scoring
from polyglot_jax.runtime.chat_model import ChatModel

# --- MGSM -------------------------------------------------------------------------------------

MGSM_TRAIN = [
    {
        "question": f"Frage: Anna hat {n} Äpfel und kauft {n + 2} dazu. Wie viele hat sie?",
        "answer": f"Schritt-für-Schritt-Antwort: {n} + {n + 2} = {2 * n + 2}. "
        f"Die Antwort lautet {2 * n + 2}.",
        "answer_number": 2 * n + 2,
        "equation_solution": f"{n} + {n + 2} = {2 * n + 2}",
    }
    for n in range(1, 9)
]
MGSM_TEST = [
    {"question": f"Tom hat {n} Hunde und {n} Katzen. Wie viele Tiere hat er?", "answer": None,
     "answer_number": 2 * n, "equation_solution": None}
    for n in (3, 12, 500)
]  # fmt: skip


def harness_mgsm_prompts(train, test, shots=8):
    """mgsm_native_cot_de's prompts with --num_fewshot: the default sampler's draws."""
    rnd, prompts = random.Random(1234), []
    for doc in test:
        context = "".join(
            f"{s['question']}\nSchritt-für-Schritt-Antwort: {s['answer'][29:]}\n\n"
            for s in rnd.sample(train, shots)
        )
        prompts.append(f"{context}Frage: {doc['question']}\nSchritt-für-Schritt-Antwort:")
    return prompts


def harness_mgsm_scores(response: str, target: str) -> tuple[float, float]:
    """strict-match and flexible-extract exact match as the harness's filters and metric."""

    def pick(pattern, group):
        found = re.findall(pattern, response)
        if not found:
            return "[invalid]"
        match = found[group]
        if isinstance(match, tuple):
            match = next((m for m in match if m), "[invalid]")
        return match.strip()

    def norm(text):
        return text.lower().translate(str.maketrans("", "", string.punctuation))

    strict = pick(r"Die Antwort lautet (\-?[0-9\.\,]+)", 0)
    flexible = pick(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1)
    return float(norm(strict) == norm(target)), float(norm(flexible) == norm(target))


def write_mgsm(data_dir, train=MGSM_TRAIN, test=MGSM_TEST):
    write_jsonl(data_dir / "mgsm/de/train.jsonl", train)
    write_jsonl(data_dir / "mgsm/de/test.jsonl", test)
    return data_dir / "mgsm/de/test.jsonl"


def test_mgsm_prompts_follow_the_native_cot_task(tmp_path):
    path = write_mgsm(tmp_path)
    items = mgsm.read_mgsm(path, "de")
    assert [i["prompt"] for i in items] == harness_mgsm_prompts(MGSM_TRAIN, MGSM_TEST)
    assert items[0]["prompt"].count("\n\n") == 8 and items[0]["prompt"].startswith("Frage: Anna")
    assert items[1]["prompt"] != items[0]["prompt"]  # each question draws its own exemplars
    assert items[2]["answers"] == ["1000"] and items[0]["stop"] == ["Frage:", "</s>", "<|im_end|>"]
    assert items[0]["max_new_tokens"] == 256
    zero = mgsm.read_mgsm(path, "de", shots=0)[0]["prompt"]
    assert zero == f"Frage: {MGSM_TEST[0]['question']}\nSchritt-für-Schritt-Antwort:"
    write_jsonl(path, [*MGSM_TEST[:1], {**MGSM_TEST[0], "answer_number": "x"}])
    with pytest.raises(DataError, match=rf"^{path}:2: answer_number 'x' is not a number$"):
        mgsm.read_mgsm(path, "de")
    write_jsonl(tmp_path / "mgsm/de/train.jsonl", MGSM_TRAIN[:5])
    with pytest.raises(DataError, match="5 exemplars, fewer than 8"):
        mgsm.read_mgsm(path, "de")


@pytest.mark.parametrize(
    ("response", "target", "expected"),
    [
        (" 5 + 7 = 12. Die Antwort lautet 12.\n", "12", (1.0, 1.0)),
        (" Die Antwort lautet 1,000. Dann 7", "1000", (1.0, 0.0)),  # flexible: the last, "7"
        (" Es sind $1.000 Euro.", "1000", (0.0, 1.0)),  # punctuation and "$" dropped
        (" Die Antwort lautet 4. Die Antwort lautet 5.", "5", (0.0, 1.0)),  # strict: the first
        (" Keine Zahl.", "3", (0.0, 0.0)),
    ],
)
def test_mgsm_extraction_equals_the_harness_filters(response, target, expected):
    assert harness_mgsm_scores(response, target) == expected
    row = mgsm.MgsmExactMatch("de").per_item([target], response)
    assert (row["mgsm_strict"], row["mgsm_flexible"]) == expected


def test_mgsm_generations_equal_transformers_greedy(tiny_llama, tmp_path):  # noqa: F811
    reference, path = tiny_llama
    write_mgsm(tmp_path)
    scoring.register_task("mgsm", "de", tmp_path)
    out = tmp_path / "mgsm_de.jsonl"
    result = scoring.evaluate("mgsm_de", "test", ChatModel.load(path), out, limit=2)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    scores = []
    prompts = harness_mgsm_prompts(MGSM_TRAIN, MGSM_TEST)[:2]
    for prompt, row, doc in zip(prompts, rows, MGSM_TEST[:2], strict=True):
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            generated = reference.generate(
                torch.tensor([ids]), do_sample=False, max_new_tokens=256, eos_token_id=2
            )[0, len(ids) :].tolist()
        text = tokenizer.decode(generated, skip_special_tokens=True)
        for stop in ("Frage:", "</s>", "<|im_end|>"):
            text = text.split(stop)[0]
        assert row["prediction"] == text
        scores.append(harness_mgsm_scores(text, str(doc["answer_number"])))
    assert any(row["prediction"].strip() for row in rows), "nothing generated: nothing compared"
    strict, flexible = 100 * np.mean(scores, axis=0)
    assert result["exact_match_strict"] == strict and result["exact_match_flexible"] == flexible
    assert result["n"] == 2


def test_eval_command_and_report_cover_the_harness_tasks(tiny_llama, tmp_path):  # noqa: F811
    from polyglot_jax import cli
    from polyglot_jax.evaluation import report

    _, path = tiny_llama
    data = tmp_path / "data"
    write_jsonl(data / "xstorycloze/sw/eval.jsonl", xstorycloze_rows(4))
    write_jsonl(data / "paws-x/de/test.jsonl", pawsx_rows(4))
    write_jsonl(data / "xwinograd/en/test.jsonl", xwinograd_rows(4))
    write_jsonl(data / "belebele/deu_Latn.jsonl", belebele_rows(4))
    write_mgsm(data)
    out = tmp_path / "structured"
    argv = [
        "eval",
        f"--checkpoint_path={path}",
        "--benchmarks=xstorycloze:sw,pawsx:de,xwinograd:en,belebele:de,mgsm:de",
        f"--data_dir={data}",
        f"--output_dir={out}",
        "--run=tiny",
        "--limit=2",
    ]
    assert cli.main(argv) == 0
    results = json.loads((out / "metrics.json").read_text())
    assert set(results) == {"xstorycloze_sw", "pawsx_de", "xwinograd_en", "belebele_de", "mgsm_de"}
    assert set(results["mgsm_de"]) == {"exact_match_strict", "exact_match_flexible", "n"}
    assert all(r["n"] == 2 for r in results.values())
    text = report.write_report([out], tmp_path / "report").read_text()
    for title in ("XStoryCloze accuracy", "PAWS-X accuracy", "XWinograd accuracy",
                  "Belebele accuracy", "MGSM exact match, strict extraction"):  # fmt: skip
        assert f"## {title}" in text


def exemplars_module(train=MGSM_TRAIN) -> str:
    """``mgsm/exemplars.py`` in the release's shape, with a statement that must never run."""
    pairs = {str(i + 1): {"q": r["question"], "a": r["answer"]} for i, r in enumerate(train)}
    return (
        '"""Prompts for mgsm."""\nraise RuntimeError("the module is parsed, never run")\n'
        f"EXEMPLAR_NUMBER_ANSWERS = {[r['answer_number'] for r in train]!r}\n"
        f"EXEMPLAR_EQUATION_SOLUTIONS = {[r['equation_solution'] for r in train]!r}\n"
        f"MGSM_EXEMPLARS = {{\n    'de': {pairs!r},\n}}\n"
    )


def test_fetch_writes_the_release_in_the_registry_layout(mirror, tmp_path):  # noqa: F811
    tsv = "".join(f"{r['question']}\t{r['answer_number']}\n" for r in MGSM_TEST)
    (mirror / "juletxara/mgsm").mkdir(parents=True)
    (mirror / "juletxara/mgsm/mgsm_de.tsv").write_text(tsv, encoding="utf-8")
    (mirror / "google-research/url-nlp/mgsm").mkdir(parents=True)
    (mirror / "google-research/url-nlp/mgsm/exemplars.py").write_text(exemplars_module())
    fetch_into(tmp_path, "mgsm", ["de"])
    data = tmp_path / "data"
    train = [json.loads(x) for x in (data / "mgsm/de/train.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (data / "mgsm/de/test.jsonl").read_text().splitlines()]
    assert train == MGSM_TRAIN and test == MGSM_TEST
    files = registry.benchmark_files(data, "mgsm", "de")
    expected = mgsm.read_mgsm(write_mgsm(tmp_path / "by_hand"), "de")
    assert [i["prompt"] for i in mgsm.read_mgsm(files["test"], "de")] == [
        i["prompt"] for i in expected
    ]


def test_malformed_release_files_are_named(tmp_path):
    with pytest.raises(DataError, match=r"^t.tsv:2: expected 'question<TAB>integer answer'$"):
        fetch_mgsm.test_records(["Q one?\t3", "Q two? no tab"], "t.tsv")
    with pytest.raises(DataError, match=r"^x.py: no EXEMPLAR_NUMBER_ANSWERS"):
        fetch_mgsm.exemplar_tables("MGSM_EXEMPLARS = {}\nEXEMPLAR_EQUATION_SOLUTIONS = []", "x.py")
    with pytest.raises(DataError, match=r"^x.py:1: MGSM_EXEMPLARS is not a literal$"):
        fetch_mgsm.exemplar_tables("MGSM_EXEMPLARS = dict()", "x.py")
    tables = fetch_mgsm.exemplar_tables(exemplars_module(), "x.py")
    with pytest.raises(DataError, match=r"^x.py: no 8 exemplars for 'fr'$"):
        fetch_mgsm.train_records(tables, "fr", "x.py")
    short = {**tables, "EXEMPLAR_EQUATION_SOLUTIONS": tables["EXEMPLAR_EQUATION_SOLUTIONS"][:7]}
    with pytest.raises(DataError, match=r"^x.py: no 8 exemplars for 'de'$"):
        fetch_mgsm.train_records(short, "de", "x.py")
