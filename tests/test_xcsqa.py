"""X-CSQA: the official JSONL layout, lm-evaluation-harness's prompt and its acc / acc_norm /
acc_bytes, equal to a ``transformers`` reference on the same tiny model; ``eval`` and ``report``."""

import json

import numpy as np
import pytest
import transformers
from test_structured import reference_scores, tiny_llama  # noqa: F401  (tiny_llama: a fixture)

from polyglot_jax.errors import DataError
from polyglot_jax.evaluation.benchmarks import readers, registry, scoring
from polyglot_jax.runtime.chat_model import ChatModel

QUESTIONS = {  # lang: (stem template, answer texts of unequal length and script)
    "de": (
        "Wohin legt man {} nach dem Einkaufen?",
        ["Kühlschrank", "in die große Tasche", "Auto", "über den Fluss", "Bäckerei am Markt"],
    ),
    "zh": ("人们通常在哪里找到{}？", ["冰箱", "大学图书馆", "车", "河的对面", "城市中心的市场"]),
    "ja": (
        "{}はどこにありますか？",
        ["冷蔵庫", "大きな図書館の二階", "JRの駅", "川", "ATMコーナー"],
    ),
}
OBJECTS = ["Milch", "Brot", "Käse", "Äpfel", "Wasser", "Bücher", "Schlüssel", "Blumen"]
LABELS = "ABCDE"


GOLD = [0, 0, 2, 1, 0, 4, 3, 0, 1]  # which answer text is right: unevenly, so scores matter


def xcsqa_records(lang: str, n: int) -> list[dict]:
    """Records in the official X-CSQA layout; the answers rotate through the labels."""
    stem, answers = QUESTIONS[lang]
    records = []
    for i in range(n):
        rotated = answers[i % 5 :] + answers[: i % 5]  # the same texts, under different labels
        gold = rotated.index(answers[GOLD[i % len(GOLD)]])
        choices = [
            {"label": label, "text": text} for label, text in zip(LABELS, rotated, strict=True)
        ]
        records.append(
            {
                "id": f"{lang}{i:04d}",
                "lang": lang,
                "question": {"stem": stem.format(OBJECTS[i % len(OBJECTS)]), "choices": choices},
                "answerKey": LABELS[gold],
            }
        )
    return records


def write_xcsqa(data_dir, lang: str, split: str, records: list[dict]) -> None:
    folder = data_dir / "X-CSQA" / readers.XCSQA_FOLDERS[lang]
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def harness_metrics(scores, items) -> dict[str, float]:
    """acc, acc_norm and acc_bytes as lm-evaluation-harness computes them (0-100)."""
    acc, norm, by_bytes = [], [], []
    for s, item in zip(scores, items, strict=True):
        lls, gold = np.array(s), item["label"]
        acc.append(np.argmax(lls) == gold)
        norm.append(np.argmax(lls / np.array([float(len(c)) for c in item["choices"]])) == gold)
        byte_lengths = np.array([float(len(c.encode("utf-8"))) for c in item["choices"]])
        by_bytes.append(np.argmax(lls / byte_lengths) == gold)
    return {
        "accuracy": 100 * np.mean(acc),
        "accuracy_norm": 100 * np.mean(norm),
        "accuracy_bytes": 100 * np.mean(by_bytes),
    }


def test_reader_follows_the_official_layout_and_names_bad_lines(tmp_path):
    write_xcsqa(tmp_path, "ja", "dev", xcsqa_records("ja", 3))
    files = registry.benchmark_files(tmp_path, "xcsqa", "ja")
    assert files == {"validation": tmp_path / "X-CSQA" / "jap" / "dev.jsonl"}
    items = readers.read_xcsqa(files["validation"], "ja")
    assert items[1]["context"] == "Brotはどこにありますか？"
    assert items[1]["choices"][0] == "大きな図書館の二階" and items[1]["label"] == 4
    assert items[0]["id"] == "xcsqa-ja-ja0000"

    path = tmp_path / "test.jsonl"
    record = xcsqa_records("de", 1)[0]
    unlabeled = {k: v for k, v in record.items() if k != "answerKey"}
    path.write_text(json.dumps(record) + "\n" + json.dumps(unlabeled) + "\n")
    with pytest.raises(DataError, match=rf"{path}:2: no answerKey .*--split=validation"):
        readers.read_xcsqa(path, "de")
    path.write_text(json.dumps({**record, "answerKey": ""}) + "\n")  # the Hub's test split
    with pytest.raises(DataError, match=rf"{path}:1: no answerKey"):
        readers.read_xcsqa(path, "de")
    path.write_text(json.dumps({**record, "answerKey": "F"}) + "\n")
    with pytest.raises(DataError, match=rf"{path}:1: answerKey 'F' is not one of the labels"):
        readers.read_xcsqa(path, "de")
    path.write_text(json.dumps({**record, "question": {"stem": "x"}}) + "\n")
    with pytest.raises(DataError, match=rf"{path}:1: not an X-CSQA record"):
        readers.read_xcsqa(path, "de")
    with pytest.raises(ValueError, match="xcsqa has no prompt for et"):
        registry.check(["xcsqa"], ["et"])


def test_accuracies_equal_the_transformers_reference(tiny_llama, tmp_path):  # noqa: F811
    reference, path = tiny_llama
    write_xcsqa(tmp_path, "ja", "dev", xcsqa_records("ja", 24))
    scoring.register_task("xcsqa", "ja", tmp_path)
    out = tmp_path / "xcsqa_ja.jsonl"
    result = scoring.evaluate("xcsqa_ja", "validation", ChatModel.load(path), out)
    items = readers.read_xcsqa(tmp_path / "X-CSQA/jap/dev.jsonl", "ja")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    expected = reference_scores(reference, tokenizer, items)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    np.testing.assert_allclose([r["scores"] for r in rows], expected, atol=1e-3)
    harness = harness_metrics(expected, items)
    assert {k: result[k] for k in harness} == pytest.approx(harness)
    assert result["n"] == 24 and 0 < result["accuracy"] < 100
    # the per-item row values the report averages agree with the totals
    assert 100 * np.mean([r["xcsqa_acc_norm"] for r in rows]) == pytest.approx(
        result["accuracy_norm"]
    )
    # the fixture tells the three apart (Japanese and Latin letters in the choices: characters
    # and bytes normalise differently)
    assert len({result["accuracy"], result["accuracy_norm"], result["accuracy_bytes"]}) == 3


def test_eval_command_scores_xcsqa_and_report_shows_it(tiny_llama, tmp_path):  # noqa: F811
    from polyglot_jax import cli
    from polyglot_jax.evaluation import report

    _, path = tiny_llama
    data = tmp_path / "data"
    for lang in ("de", "zh", "ja"):
        write_xcsqa(data, lang, "dev", xcsqa_records(lang, 6))
        hidden = [{k: v for k, v in r.items() if k != "answerKey"} for r in xcsqa_records(lang, 2)]
        write_xcsqa(data, lang, "test", hidden)  # as released: the test labels are hidden
    out = tmp_path / "structured"
    argv = [
        "eval",
        f"--checkpoint_path={path}",
        "--benchmarks=xcsqa",
        "--languages=de,zh,ja",
        "--split=validation",
        f"--data_dir={data}",
        f"--output_dir={out}",
        "--run=tiny",
    ]
    assert cli.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"xcsqa_de", "xcsqa_zh", "xcsqa_ja"}
    assert set(metrics["xcsqa_ja"]) == {"accuracy", "accuracy_norm", "accuracy_bytes", "n"}
    text = report.write_report([out], tmp_path / "report").read_text()
    assert "## X-CSQA accuracy (%)" in text and "| tiny | ja | 0 |" in text and "], n=6 |" in text
    assert "## X-CSQA accuracy, per-byte normalised (%)" in text
    assert cli.main([*argv[:4], "--split=test", *argv[5:]]) == 2  # one-line error, no labels
