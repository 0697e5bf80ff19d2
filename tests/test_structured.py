"""XCOPA / XNLI / XQuAD: readers, lm-evaluation-harness prompts, SQuAD metrics, and accuracy
equal to a ``transformers`` reference scoring the same tiny model on the same items."""

import collections
import csv
import json
import re
import shutil
import string

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import transformers

from polyglot_jax.errors import DataError
from polyglot_jax.evaluation.benchmarks import metrics, readers, registry, scoring
from polyglot_jax.models import hf
from polyglot_jax.runtime.chat_model import ChatModel

XNLI_COLUMNS = [
    "language",
    "gold_label",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "promptID",
    "pairID",
    "genre",
    "label1",
]


def test_xcopa_items_use_the_harness_prompt(shared_data):
    items = readers.read_xcopa(shared_data / "xcopa/et/val.et.jsonl", "et")
    assert len(items) == 100
    first = items[0]  # "Mees keeras kraani lahti." / effect / "Tualett täitus veega." ...
    assert first["context"] == "Mees keeras kraani lahti seetõttu"
    assert first["choices"] == ["tualett täitus veega.", "tilast voolas vett."]
    assert first["label"] == 1
    zh = readers.read_xcopa(shared_data / "xcopa/zh/test.zh.jsonl", "zh")
    assert len(zh) == 500 and all(i["context"].endswith(("因为", "所以")) for i in zh)


def test_xcopa_bad_records_name_the_line(tmp_path):
    path = tmp_path / "val.sw.jsonl"
    good = {"premise": "A.", "choice1": "B", "choice2": "C", "question": "cause", "label": 0}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "question": "why"}) + "\n")
    with pytest.raises(DataError, match=rf"{path}:2: not an XCOPA record"):
        readers.read_xcopa(path, "sw")
    from polyglot_jax.data.sources import SkipCounter

    skipped = SkipCounter()
    assert len(readers.read_xcopa(path, "sw", skip_bad=True, skipped=skipped)) == 1
    assert skipped.total == 1
    with pytest.raises(ValueError, match="no prompt words for 'fi'"):
        readers.read_xcopa(path, "fi")


def write_xnli_tsv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(XNLI_COLUMNS)
        for i, (lang, label, premise, hypothesis) in enumerate(rows):
            parse = "( x )"
            writer.writerow(
                [
                    lang,
                    label,
                    parse,
                    parse,
                    parse,
                    parse,
                    premise,
                    hypothesis,
                    i,
                    i,
                    "fiction",
                    label,
                ]
            )


def test_xnli_official_tsv_and_hf_layouts(tmp_path):
    tsv = tmp_path / "xnli.test.tsv"
    write_xnli_tsv(
        tsv,
        [
            ("de", "entailment", "Er schläft", "Er ruht"),
            ("en", "neutral", "He sleeps", "He dreams"),
            ("de", "contradiction", "Er schläft", "Er rennt"),
        ],
    )
    items = readers.read_xnli_tsv(tsv, "de")
    assert [i["label"] for i in items] == [0, 2]
    assert items[0]["context"] == "Er schläft, richtig?"
    assert items[0]["choices"] == ["Ja, Er ruht", "Auch, Er ruht", "Nein, Er ruht"]

    parquet = tmp_path / "validation.parquet"
    table = {"premise": ["He sleeps"], "hypothesis": ["He dreams"], "label": [1]}
    pq.write_table(pa.table(table), parquet)
    (hf_item,) = readers.read_xnli_hf(parquet, "en")
    assert hf_item["context"] == "He sleeps, right?" and hf_item["label"] == 1
    assert hf_item["choices"][1] == "Also, He dreams"

    write_xnli_tsv(tsv, [("en", "maybe", "a", "b")])
    with pytest.raises(DataError, match=rf"{tsv}:2: unknown gold_label 'maybe'"):
        readers.read_xnli_tsv(tsv, "en")


def test_xquad_reader_and_squad_metrics(shared_data):
    items = readers.read_xquad(shared_data / "xquad/xquad.zh.json", "zh")
    assert len(items) == 1190 and items[0]["answers"] == ["308"]
    assert items[0]["prompt"].startswith("Context: ") and items[0]["prompt"].endswith("Answer:")
    assert metrics.squad_scores("The cat!", ["a cat"], "en") == (1.0, 1.0)
    em, f1 = metrics.squad_scores("黑豹队", ["黑豹队的防守"], "zh", "mlqa")  # characters count
    assert em == 0.0 and f1 == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert metrics.squad_scores("黑豹队", ["黑豹队的防守"], "zh") == (0.0, 0.0)  # one token each
    em, f1 = metrics.squad_scores("in Paris today", ["Paris"], "fr")
    assert em == 0.0 and f1 == pytest.approx(0.5)
    metric = metrics.SquadMetric("xquad", "en")
    assert metric([["x"], ["y z"]], ["x", "y"]) == {
        "exact_match": 50.0,
        "f1": pytest.approx(100 * (1 + 2 / 3) / 2),
    }


def official_squad_v1_1(prediction, ground_truth):
    """``exact_match_score`` and ``f1_score`` of the official SQuAD v1.1 evaluation script."""

    def normalize_answer(s):
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())

    pred, gold = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    same = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    f1 = (
        0.0
        if same == 0
        else 2 * (same / len(pred)) * (same / len(gold)) / (same / len(pred) + same / len(gold))
    )
    return float(normalize_answer(prediction) == normalize_answer(ground_truth)), f1


SQUAD_PAIRS = [  # (lang, text, squad tokens, mlqa tokens)
    ("el", "Τι\u037e", ["τι\u037e"], ["τι"]),  # Greek question mark: Po, not ASCII
    ("el", "Τι;", ["τι"], ["τι"]),  # ASCII semicolon
    ("el", "Αθήνα\u0387 πόλη", ["αθήνα\u0387", "πόλη"], ["αθήνα", "πόλη"]),  # ano teleia
    ("ro", "\u201eȘtiință\u201d", ["\u201eștiință\u201d"], ["știință"]),  # ș ț are letters
    ("ro", "Știință, țară.", ["știință", "țară"], ["știință", "țară"]),
    ("en", "state-of-the-art", ["stateoftheart"], ["stateoftheart"]),  # deleted, not a space
    ("en", "$5", ["5"], ["5"]),  # '$' is in string.punctuation (MLQA's PUNCT includes it)
    ("en", "€5", ["€5"], ["€5"]),  # '€' is Sc, in neither
    ("en", "The Cat!", ["cat"], ["cat"]),
    ("es", "el gato", ["el", "gato"], ["gato"]),  # Spanish articles only under MLQA
    ("de", "Die Katze", ["die", "katze"], ["katze"]),
    ("ar", "الكتاب", ["الكتاب"], ["كتاب"]),
    ("zh", "黑豹队，的", ["黑豹队，的"], ["黑", "豹", "队", "的"]),
]


@pytest.mark.parametrize(("lang", "text", "squad", "mlqa"), SQUAD_PAIRS)
def test_squad_and_mlqa_normalisations(lang, text, squad, mlqa):
    assert metrics.squad_tokens(text, lang) == squad
    assert metrics.squad_tokens(text, lang, "mlqa") == mlqa


@pytest.mark.parametrize(
    ("prediction", "answer"),
    [
        ("state of the art", "state-of-the-art"),
        ("Τι\u037e", "τι"),
        ("Αθήνα\u0387", "Αθήνα"),
        ("„Știință”", "Știință"),
        ("$5 million", "5 million"),
        ("the 5 €", "5€"),
        ("a cat sat", "The cat, sat."),
        ("Paris, France", "paris"),
    ],
)
def test_squad_mode_equals_the_official_script(prediction, answer):
    assert metrics.squad_scores(prediction, [answer], "en") == pytest.approx(
        official_squad_v1_1(prediction, answer)
    )
    metric = metrics.SquadMetric("xquad", "el")
    em, f1 = official_squad_v1_1(prediction, answer)
    assert metric([[answer]], [prediction]) == pytest.approx(
        {"exact_match": 100 * em, "f1": 100 * f1}
    )


@pytest.fixture(scope="module")
def tiny_llama(sentencepiece_dir, tmp_path_factory):
    """A random Llama over the SentencePiece fixture, saved with its tokenizer."""
    config = transformers.LlamaConfig(
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for param in model.parameters():  # sharper than the default init: real preferences
            param.copy_(torch.randn_like(param) * 0.3)
    path = tmp_path_factory.mktemp("tiny_llama")
    model.save_pretrained(path)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(sentencepiece_dir / name, path / name)
    return model, path


def reference_scores(model, tokenizer, items):
    """lm-evaluation-harness scoring written against transformers."""
    scores = []
    for item in items:
        row = []
        for choice in item["choices"]:
            context, continuation = item["context"], " " + choice
            whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
            context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
            target = whole[len(context_ids) :]
            with torch.no_grad():
                logits = model(torch.tensor([whole])).logits[0].float()
            logp = torch.log_softmax(logits, -1)
            start = len(context_ids)
            row.append(sum(float(logp[start - 1 + i, t]) for i, t in enumerate(target)))
        scores.append(row)
    return scores


def test_xcopa_accuracy_equals_the_transformers_reference(tiny_llama, shared_data, tmp_path):
    reference, path = tiny_llama
    scoring.register_task("xcopa", "sw", shared_data)
    out = tmp_path / "xcopa_sw.jsonl"
    result = scoring.evaluate(
        "xcopa_sw", "validation", ChatModel.load(path), output_path=out, limit=40
    )
    items = readers.read_xcopa(shared_data / "xcopa/sw/val.sw.jsonl", "sw")[:40]
    expected = reference_scores(reference, transformers.AutoTokenizer.from_pretrained(path), items)
    ours = [json.loads(line)["scores"] for line in out.read_text().splitlines()]
    np.testing.assert_allclose(ours, expected, atol=1e-3)
    assert (
        result["accuracy"]
        == metrics.choice_accuracy([i["label"] for i in items], expected)["accuracy"]
    )
    assert result["n"] == 40
    assert 0 < result["accuracy"] < 100 and len({round(s[0] - s[1], 3) for s in ours}) > 30


def test_xquad_answers_equal_transformers_greedy(tiny_llama, shared_data, tmp_path):
    reference, path = tiny_llama
    scoring.register_task("xquad", "vi", shared_data)
    out = tmp_path / "xquad_vi.jsonl"
    result = scoring.evaluate(
        "xquad_vi",
        "test",
        ChatModel.load(path),
        output_path=out,
        max_new_tokens=8,
        limit=3,
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    items = readers.read_xquad(shared_data / "xquad/xquad.vi.json", "vi")[:3]
    for item, row in zip(items, rows, strict=True):
        ids = tokenizer(item["prompt"], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            generated = reference.generate(
                torch.tensor([ids]), do_sample=False, max_new_tokens=8, eos_token_id=2
            )[0, len(ids) :].tolist()
        if 2 in generated:
            generated = generated[: generated.index(2)]
        text = tokenizer.decode(generated, skip_special_tokens=True).split("\n")[0].strip()
        assert row["prediction"] == text
    assert any(row["prediction"] for row in rows), "nothing generated: the test compares nothing"
    assert 0.0 <= result["f1"] <= 100.0 and result["n"] == 3


def test_missing_benchmark_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="xcopa et: none of"):
        scoring.register_task("xcopa", "et", tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark 'copa'"):
        registry.benchmark_files(tmp_path, "copa", "et")


def test_eval_command_writes_rows_the_report_reads(tiny_llama, shared_data, tmp_path):
    from polyglot_jax import cli
    from polyglot_jax.evaluation import report

    _, path = tiny_llama
    out = tmp_path / "structured"
    argv = [
        "eval",
        f"--checkpoint_path={path}",
        "--benchmarks=xcopa",
        "--languages=et,sw,tr,zh",
        "--split=validation",
        f"--data_dir={shared_data}",
        f"--output_dir={out}",
        "--run=tiny",
        "--limit=12",
    ]
    assert cli.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"xcopa_et", "xcopa_sw", "xcopa_tr", "xcopa_zh"}
    text = report.write_report([out], tmp_path / "report").read_text()
    assert "## XCOPA accuracy (%)" in text and "| tiny | et | 0 |" in text and "], n=12 |" in text
    assert "## Correlation with language features" in text
    assert (tmp_path / "report" / "xcopa_acc.png").exists()
    assert cli.main([*argv[:2], "--languages=xx", "--benchmarks=xcopa"]) == 2
    assert cli.main([*argv[:2], "--benchmarks=xcopa:et,xnli"]) == 2  # xnli: no languages


def test_eval_on_a_checkpoint_writes_beside_it_in_the_run(tiny_llama, shared_data, tmp_path):
    import orbax.checkpoint as ocp
    import seqio

    from polyglot_jax import cli
    from polyglot_jax.training import checkpoints, runs

    _, path = tiny_llama
    cfg, params = hf.load_model_dir(path)
    vocabulary = seqio.SentencePieceVocabulary(str(path / "tokenizer.model"))
    seqio.TaskRegistry.remove("structured_test_vocab")
    seqio.TaskRegistry.add(
        "structured_test_vocab",
        source=seqio.FunctionDataSource(lambda split, shuffle_files: None, splits=["train"]),
        output_features={"targets": seqio.Feature(vocabulary)},
    )
    run_dir = tmp_path / "run"
    runs.prepare(run_dir, cfg, {"mixture_or_task_name": "structured_test_vocab"})
    saver = checkpoints.Checkpointer(run_dir, async_save=False)
    saver.manager.save(5, args=ocp.args.Composite(params=ocp.args.StandardSave(params)))
    saver.wait()
    saver.close()
    argv = [
        "eval",
        f"--checkpoint_path={run_dir / 'checkpoint_5'}",
        "--benchmarks=xcopa:sw",  # the benchmark with its own languages
        "--split=validation",
        f"--data_dir={shared_data}",
        "--limit=4",
    ]
    assert cli.main(argv) == 0
    out = run_dir / "structured"
    assert set(json.loads((out / "metrics.json").read_text())) == {"xcopa_sw"}
    rows = [json.loads(line) for line in (out / "structured.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["run"] for r in rows} == {"run"}
    assert not (run_dir / "checkpoint_5" / "structured").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
