"""XStoryCloze, PAWS-X, XWinograd and Belebele: readers on files in the released layouts,
lm-evaluation-harness's prompts, and log-likelihoods equal (atol 1e-3) to a ``transformers``
reference that follows the harness's rule for each task (one context and the choices; an empty
context after the prefix token; multiple inputs with one continuation); ``data fetch`` from a
local mirror writes the registry's layout."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import transformers
from test_structured import tiny_llama  # noqa: F401  (a fixture)

from polyglot_jax.data import fetch, fetch_sources
from polyglot_jax.errors import DataError
from polyglot_jax.evaluation.benchmarks import harness_readers, metrics, registry, scoring
from polyglot_jax.runtime.chat_model import ChatModel

ATOL = 1e-3  # on summed log-likelihoods, as tests/test_structured.py


def write_jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def write_parquet(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def harness_loglikelihood(model, tokenizer, context: str, continuation: str) -> float:
    """lm-evaluation-harness's ``loglikelihood`` of one request, against transformers: an empty
    context is the prefix token (BOS, else EOS) unless the continuation starts with it; else
    trailing spaces move to the continuation and its tokens are those of the whole text after
    the context's."""

    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    if context == "":
        prefix = tokenizer.bos_token_id
        prefix = tokenizer.eos_token_id if prefix is None else prefix
        target = encode(continuation)
        context_ids, target = (
            ([prefix], target) if target[0] != prefix else (target[:1], target[1:])
        )
    else:
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        context_ids = encode(context)
        target = encode(context + continuation)[len(context_ids) :]
    whole = context_ids + target
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
    start = len(context_ids)
    return sum(float(logp[start - 1 + i, t]) for i, t in enumerate(target))


def harness_requests(item) -> list[tuple[str, str]]:
    """The harness's requests of one item, written from its task configs."""
    delimiter = item.get("delimiter", " ")
    if "continuation" in item:  # multiple input: choices are contexts
        return [(c, delimiter + item["continuation"]) for c in item["choices"]]
    return [(item["context"], delimiter + c) for c in item["choices"]]


def evaluate_against_reference(tiny, data_dir, name, lang, split, read_path, limit=None):
    """Our scores and metrics, and the reference's scores on the same items."""
    reference, path = tiny
    scoring.register_task(name, lang, data_dir)
    out = data_dir / f"{name}_{lang}.jsonl"
    result = scoring.evaluate(f"{name}_{lang}", split, ChatModel.load(path), out, limit=limit)
    items = registry.get(name).read(read_path, lang)[:limit]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    expected = [
        [harness_loglikelihood(reference, tokenizer, c, t) for c, t in harness_requests(item)]
        for item in items
    ]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    np.testing.assert_allclose([r["scores"] for r in rows], expected, atol=ATOL)
    labels = [item["label"] for item in items]
    assert result["accuracy"] == metrics.choice_accuracy(labels, expected)["accuracy"]
    assert result["n"] == len(items)
    return result, items, expected


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    monkeypatch.setenv(fetch_sources.ENV_MIRROR, str(root))
    return root


def fetch_into(tmp_path, name, langs):
    return fetch.fetch(
        name, tmp_path / "data", langs, cache_dir=str(tmp_path / "hf"), progress=False
    )


# --- XStoryCloze ------------------------------------------------------------------------------

STORIES = [
    ("Amina alinunua mbegu.", "Alipanda shambani.", "Mvua ilinyesha sana.", "Mimea ilikua."),
    ("Juma alipoteza ufunguo.", "Alitafuta kila mahali.", "Aliuliza dada yake.", "Hakuupata."),
    ("The dog barked at night.", "Tom woke up.", "He went outside.", "A fox ran away."),
    ("Maria baked a cake.", "She added sugar.", "The oven was hot.", "It smelled good."),
]
ENDINGS = [
    ("Alivuna mahindi mengi.", "Alikula jiwe kubwa jekundu."),
    ("Alinunua kufuli jipya.", "Ufunguo uliimba wimbo."),
    ("Tom went back to bed.", "Tom flew to the moon quickly."),
    ("The cake was eaten by the family.", "She sold her car."),
]


def xstorycloze_rows(n: int) -> list[dict]:
    """Rows in the juletxara/xstory_cloze layout; the right ending alternates."""
    rows = []
    for i in range(n):
        sentences, (good, bad) = STORIES[i % 4], ENDINGS[(i + i // 4) % 4]
        right = 1 + i % 2
        rows.append(
            {
                "story_id": f"s{i:03d}",
                **{f"input_sentence_{k + 1}": s for k, s in enumerate(sentences)},
                "sentence_quiz1": good if right == 1 else bad,
                "sentence_quiz2": bad if right == 1 else good,
                "answer_right_ending": right,
            }
        )
    return rows


def test_xstorycloze_reader_and_bad_lines(tmp_path):
    path = tmp_path / "xstorycloze/sw/eval.jsonl"
    write_jsonl(path, xstorycloze_rows(2))
    first, second = harness_readers.read_xstorycloze(path, "sw")
    assert first["context"] == " ".join(STORIES[0])
    assert first["choices"] == list(ENDINGS[0]) and first["label"] == 0
    assert second["label"] == 1 and second["id"] == "xstorycloze-sw-s001"
    assert registry.benchmark_files(tmp_path, "xstorycloze", "sw") == {"validation": path}
    write_jsonl(
        path, [xstorycloze_rows(1)[0], {**xstorycloze_rows(1)[0], "answer_right_ending": 3}]
    )
    with pytest.raises(DataError, match=rf"^{path}:2: answer_right_ending 3 is not 1 or 2$"):
        harness_readers.read_xstorycloze(path, "sw")
    write_jsonl(path, [{"story_id": "x"}])
    with pytest.raises(DataError, match=rf"^{path}:1: field 'input_sentence_1' must be"):
        harness_readers.read_xstorycloze(path, "sw")
    with pytest.raises(ValueError, match="xstorycloze has no prompt for de"):
        registry.check(["xstorycloze"], ["de"])


# --- PAWS-X -----------------------------------------------------------------------------------

PAWS_PAIRS = [
    ("Der Hund schläft im Garten .", "Im Garten schläft der Hund ."),
    ('Er sagte " nein " und ging .', "Sie kam spät nach Hause ."),
    ("Berlin ist die Hauptstadt ( seit 1990 ) ;", "Die Hauptstadt ist seit 1990 Berlin ."),
    ("Anna las das Buch , das er schrieb .", "Das Buch las Anna nicht ."),
]


def pawsx_rows(n: int) -> list[dict]:
    """Rows in the google-research-datasets/paws-x layout (tokenized, as released)."""
    return [
        {
            "id": i + 1,
            "sentence1": PAWS_PAIRS[i % 4][0],
            "sentence2": PAWS_PAIRS[(i + i // 4) % 4][1],
            "label": int(i % 3 == 0),
        }
        for i in range(n)
    ]


def test_pawsx_reader_follows_the_harness_process_docs(tmp_path):
    path = tmp_path / "paws-x/de/test.jsonl"
    write_jsonl(path, [*pawsx_rows(3), {"id": 9, "sentence1": "A .", "sentence2": "", "label": 0}])
    first, second, third = harness_readers.read_pawsx(path, "de")  # the empty pair is dropped
    assert first["context"] == "" and first["delimiter"] == ""
    assert first["choices"] == [
        "Der Hund schläft im Garten, richtig? Nein, im Garten schläft der Hund.",
        "Der Hund schläft im Garten, richtig? Ja, im Garten schläft der Hund.",
    ]
    assert first["label"] == 1 and second["label"] == 0 and first["id"] == "paws-de-1"
    # the harness's detokenizer joins quotes to both neighbours
    assert second["choices"][1].startswith('Er sagte"nein"und ging, richtig? Ja, sie kam')
    # " ;" is not joined, and the space before it stays once the ";" is dropped
    assert third["choices"][0].startswith("Berlin ist die Hauptstadt (seit 1990) , richtig? ")
    assert registry.benchmark_files(tmp_path, "pawsx", "de") == {"test": path}
    write_jsonl(path, [*pawsx_rows(1), {**pawsx_rows(1)[0], "label": 2}])
    with pytest.raises(DataError, match=rf"^{path}:2: label 2 is not 0 or 1$"):
        harness_readers.read_pawsx(path, "de")
    path.write_text(json.dumps(pawsx_rows(1)[0]) + "\n{broken\n")
    with pytest.raises(DataError, match=rf"^{path}:2: "):
        harness_readers.read_pawsx(path, "de")


def test_empty_context_is_the_prefix_token_unless_the_text_starts_with_it():
    def encode(text):
        return [7 if word == "<s>" else len(word) for word in text.split()]

    assert scoring.encode_pair(encode, "", "ab c", prefix_id=7) == ([7], [2, 1])
    assert scoring.encode_pair(encode, "", "<s> ab", prefix_id=7) == ([7], [2])
    with pytest.raises(ValueError, match="empty context needs a prefix token"):
        scoring.encode_pair(encode, "", "ab")


# --- XWinograd --------------------------------------------------------------------------------

SCHEMAS = [
    ("The trophy does not fit in the suitcase because _ is too big.", "the trophy", "the suitcase"),
    ("Paul tried to call George, but _ was not available.", "Paul", "George"),
    ("The city council refused the demonstrators a permit because _ feared violence.",
     "the city council", "the demonstrators"),
    ("Anna did a lot better than her friend on the test because _ had studied hard.",
     "Anna", "her friend"),
]  # fmt: skip


def xwinograd_rows(n: int) -> list[dict]:
    """Rows in the Muennighoff/xwinograd layout."""
    rows = []
    for i in range(n):
        sentence, first, second = SCHEMAS[i % 4]
        options = (first, second) if i % 8 < 4 else (second, first)
        answer = "1" if (i % 8 < 4) == (i % 3 != 1) else "2"
        rows.append({"lang": "en", "sentence": sentence, "option1": options[0],
                     "option2": options[1], "answer": answer})  # fmt: skip
    return rows


def test_xwinograd_reader_builds_multiple_inputs(tmp_path):
    path = tmp_path / "xwinograd/en/test.jsonl"
    write_jsonl(path, xwinograd_rows(2))
    first, second = harness_readers.read_xwinograd(path, "en")
    assert first["choices"] == [
        "The trophy does not fit in the suitcase because the trophy",
        "The trophy does not fit in the suitcase because the suitcase",
    ]
    assert first["continuation"] == "is too big." and "context" not in first
    assert first["label"] == 0 and second["label"] == 1 and second["id"] == "xwinograd-en-1"
    assert scoring.choice_requests(first)[1] == (first["choices"][1], " is too big.")
    assert registry.benchmark_files(tmp_path, "xwinograd", "en") == {"test": path}
    write_jsonl(path, [xwinograd_rows(1)[0], {**xwinograd_rows(1)[0], "sentence": "No blank."}])
    with pytest.raises(DataError, match=rf"^{path}:2: sentence has no '_' blank$"):
        harness_readers.read_xwinograd(path, "en")
    write_jsonl(path, [{**xwinograd_rows(1)[0], "answer": "3"}])
    with pytest.raises(DataError, match=rf"^{path}:1: answer '3' is not '1' or '2'$"):
        harness_readers.read_xwinograd(path, "en")


# --- Belebele ---------------------------------------------------------------------------------

PASSAGES = [
    ("Der Zug fährt um acht Uhr ab. Anna kommt zehn Minuten zu spät.", "Wann fährt der Zug? ",
     ["um acht Uhr", "um zehn Uhr", "am Mittag", "nie"]),
    ("Die Katze schläft auf dem Sofa, der Hund im Garten.", " Wo schläft der Hund?",
     ["auf dem Sofa", "im Garten", "im Auto", "in der Küche"]),
]  # fmt: skip


def belebele_rows(n: int) -> list[dict]:
    """Rows in the facebook/belebele layout (``correct_answer_num`` a string)."""
    rows = []
    for i in range(n):
        passage, question, answers = PASSAGES[i % 2]
        shift = i % 4
        answers = answers[shift:] + answers[:shift]  # the gold answer moves
        gold = (0 if i % 2 == 0 else 1) - shift
        rows.append(
            {
                "link": f"https://example.org/{i % 2}",
                "question_number": i,
                "flores_passage": passage,
                "question": question,
                **{f"mc_answer{k + 1}": a for k, a in enumerate(answers)},
                "correct_answer_num": str(gold % 4 + 1),
                "dialect": "deu_Latn",
                "ds": "2023-05-03",
            }
        )
    return rows


def test_belebele_prompt_variants_and_bad_lines(tmp_path):
    path = tmp_path / "belebele/deu_Latn.jsonl"
    write_jsonl(path, belebele_rows(2))
    first, second = harness_readers.read_belebele(path, "de")
    assert first["context"] == (
        "P: Der Zug fährt um acht Uhr ab. Anna kommt zehn Minuten zu spät.\n"
        "Q: Wann fährt der Zug?\nA: um acht Uhr\nB: um zehn Uhr\nC: am Mittag\nD: nie\nAnswer:"
    )
    assert first["choices"] == ["A", "B", "C", "D"] and first["label"] == 0
    assert second["label"] == 0 and "\nQ: Wo schläft der Hund?\nA: im Garten\n" in second["context"]
    assert scoring.choice_requests(first)[2] == (first["context"], " C")
    assert registry.benchmark_files(tmp_path, "belebele", "de") == {"test": path}
    variants = fetch_sources.BELEBELE_VARIANTS
    assert len(variants) == 115 and variants["zh"] == "zho_Hans" and variants["ar"] == "arb_Arab"
    assert variants["no"] == "nob_Latn" and variants["acm"] == "acm_Arab"
    assert set(fetch_sources.BELEBELE_LEFT_OUT) & set(variants.values()) == set()
    write_jsonl(path, [belebele_rows(1)[0], {**belebele_rows(1)[0], "correct_answer_num": "5"}])
    with pytest.raises(DataError, match=rf"^{path}:2: correct_answer_num '5' is not 1, 2, 3 or 4$"):
        harness_readers.read_belebele(path, "de")
    write_jsonl(path, [{**belebele_rows(1)[0], "mc_answer3": None}])
    with pytest.raises(DataError, match=rf"^{path}:1: field 'mc_answer3' must be a string"):
        harness_readers.read_belebele(path, "de")


# --- Scores and fetch of the choice tasks -----------------------------------------------------

CHOICE_TASKS = {  # name: (lang, split, file in the registry's layout, rows in the release's)
    "xstorycloze": ("sw", "validation", "xstorycloze/sw/eval.jsonl", xstorycloze_rows),
    "pawsx": ("de", "test", "paws-x/de/test.jsonl", pawsx_rows),  # empty context
    "xwinograd": ("en", "test", "xwinograd/en/test.jsonl", xwinograd_rows),  # multiple input
    "belebele": ("de", "test", "belebele/deu_Latn.jsonl", belebele_rows),
}


@pytest.mark.parametrize("name", CHOICE_TASKS)
def test_scores_equal_the_harness_rule(name, tiny_llama, tmp_path):  # noqa: F811
    lang, split, relative, rows = CHOICE_TASKS[name]
    write_jsonl(tmp_path / relative, rows(12))
    result, _, expected = evaluate_against_reference(
        tiny_llama, tmp_path, name, lang, split, tmp_path / relative, limit=10
    )
    assert len({tuple(np.round(np.subtract(s, s[0]), 3)) for s in expected}) > 2  # told apart
    assert result.get("accuracy_norm", result["accuracy"]) == result["accuracy"]  # Belebele: A-D


FETCHED = {  # name: (lang, {mirror file: rows}, {split: file written in the registry's layout})
    "xstorycloze": (
        "sw",
        {f"juletxara/xstory_cloze/sw/xstory_cloze-{s}.parquet": xstorycloze_rows(n)
         for s, n in (("train", 1), ("eval", 3))},
        {"train": "xstorycloze/sw/train.jsonl", "validation": "xstorycloze/sw/eval.jsonl"},
    ),
    "pawsx": (
        "de",
        {f"google-research-datasets/paws-x/de/{s}-00000-of-00001.parquet": pawsx_rows(2)
         for s in ("validation", "test")},
        {"validation": "paws-x/de/validation.jsonl", "test": "paws-x/de/test.jsonl"},
    ),
    "xwinograd": (  # Japanese is the "jp" subset; answers as numbers
        "ja",
        {"Muennighoff/xwinograd/test/jp.jsonl":
         [{**r, "answer": int(r["answer"])} for r in xwinograd_rows(3)]},
        {"test": "xwinograd/ja/test.jsonl"},
    ),
    "belebele": (
        "de",
        {"facebook/belebele/data/deu_Latn.jsonl": belebele_rows(3)},
        {"test": "belebele/deu_Latn.jsonl"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", FETCHED)
def test_fetch_writes_the_registry_layout(name, mirror, tmp_path):
    lang, released, written = FETCHED[name]
    for relative, rows in released.items():
        (write_parquet if relative.endswith(".parquet") else write_jsonl)(mirror / relative, rows)
    fetch_into(tmp_path, name, [lang])
    files = registry.benchmark_files(tmp_path / "data", name, lang)
    assert files == {split: tmp_path / "data" / path for split, path in written.items()}
    for rows, path in zip(released.values(), files.values(), strict=True):  # in split order
        write_jsonl(tmp_path / "release.jsonl", rows)
        expected = registry.get(name).read(tmp_path / "release.jsonl", lang)
        assert [i["label"] for i in registry.get(name).read(path, lang)] == [
            i["label"] for i in expected
        ]
