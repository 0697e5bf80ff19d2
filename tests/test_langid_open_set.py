"""Language ID that does not flatter: one open-set identifier for agreement and the gate."""

import json
import random
import sys

import pytest

from polyglot_jax import cli
from polyglot_jax.clients import backends
from polyglot_jax.evaluation import langid, report
from polyglot_jax.evaluation.judges import language, protocols, runner
from polyglot_jax.evaluation.judges.store import JudgmentStore
from polyglot_jax.testing import fasttext_models, mock_server

# Long enough (25-31 words) for lingua to be confident; each is about schools in winter.
ANSWERS = {
    "pt": "O governo anunciou ontem que vai investir mais dinheiro nas escolas públicas do "
    "interior, porque muitos professores reclamam que não têm condições para ensinar os alunos "
    "durante o inverno.",
    "es": "El gobierno anunció ayer que va a invertir más dinero en las escuelas públicas del "
    "interior, porque muchos profesores se quejan de que no tienen condiciones para enseñar a "
    "los alumnos.",
    "ca": "El govern va anunciar ahir que invertirà més diners a les escoles públiques de "
    "l'interior, perquè molts professors es queixen que no tenen condicions per ensenyar els "
    "alumnes durant l'hivern.",
    "uk": "Уряд оголосив, що наступного тижня відкриє нові школи в усіх областях країни, щоб "
    "діти могли навчатися ближче до своїх домівок і не витрачати час на дорогу.",
    "ru": "Правительство объявило, что на следующей неделе откроет новые школы во всех областях "
    "страны, чтобы дети могли учиться ближе к своим домам и не тратить время на дорогу.",
    "da": "Regeringen meddelte i går, at den vil bruge flere penge på skolerne, fordi mange "
    "lærere siger, at de ikke har ordentlige forhold at undervise deres elever under i vinter.",
    "no": "Regjeringen sa i går at den vil bruke mer penger på skolene, fordi mange lærere sier "
    "at de ikke har gode nok forhold til å undervise elevene sine i vinter.",
}
# (prompt language, answer language): neighbours that a pool of evaluation languages conflates.
NEIGHBOURS = [("es", "pt"), ("es", "ca"), ("ru", "uk"), ("no", "da")]
CASES = NEIGHBOURS + [(lang, lang) for lang in ("es", "ru", "no")]


def _records(cases=CASES):
    return [
        {"id": f"q{i}", "lang": lang, "response": ANSWERS[answer]}
        for i, (lang, answer) in enumerate(cases)
    ]


def _write_infer(folder, cases=CASES):
    folder.mkdir(parents=True)
    by_lang: dict[str, list[dict]] = {}
    for record in _records(cases):
        by_lang.setdefault(record["lang"], []).append({**record, "prompt": "?"})
    for lang, records in by_lang.items():
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (folder / f"{lang}.jsonl").write_text(lines, encoding="utf-8")
    return folder


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_neighbouring_language_is_not_agreement_by_default():
    judgments = language.judge_records(_records(), "r")
    got = {(j["lang"], j["response_lang"]): j["lang_agree"] for j in judgments}
    assert got == {case: case[0] == case[1] for case in CASES}
    assert {j["language_id"] for j in judgments} == {"lingua, open set (75 languages)"}


def test_the_judge_command_is_open_set_and_says_so(tmp_path, capsys):
    infer = _write_infer(tmp_path / "run" / "infer")
    assert cli.main(["judge", "--outputs", str(infer)]) == 0
    assert "language ID: lingua, open set (75 languages)" in capsys.readouterr().out
    rows = _rows(tmp_path / "run" / "judge" / "judgments.jsonl")
    assert {(r["lang"], r["response_lang"], r["lang_agree"]) for r in rows} == {
        (lang, answer, lang == answer) for lang, answer in CASES
    }


def test_a_restricted_candidate_set_is_asked_for_and_recorded(tmp_path):
    infer = _write_infer(tmp_path / "run" / "infer", [("es", "pt")])
    assert cli.main(["judge", "--outputs", str(infer), "--languages=es,en"]) == 0
    (row,) = _rows(tmp_path / "run" / "judge" / "judgments.jsonl")
    # Restricted to the evaluation languages, lingua snaps Portuguese to Spanish: the record says
    # which candidates made that verdict.
    assert row["response_lang"] == "es" and row["lang_agree"] is True
    assert row["language_id"] == "lingua, restricted to 2 languages (en, es)"


def test_the_study_plan_passes_no_candidate_pool(tmp_path):
    from polyglot_jax.studies import catalog
    from polyglot_jax.studies.plan import Options, Planner

    study = catalog.STUDIES["polyglots"]
    planner = Planner(study, Options(root=str(tmp_path)))
    (stage,) = [s for s in planner.stages(study.conditions[0]) if s.name == "langid"]
    assert stage.argv[:3] == [sys.executable, "-m", "polyglot_jax.judge"]
    assert not any(a.startswith("--languages") for a in stage.argv), stage.argv


@pytest.fixture()
def backend(monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test")
    with mock_server.MockChatServer() as server:
        yield backends.OpenAIBackend(
            "mock-judge", server.base_url, api_key_env="JUDGE_TEST_KEY", concurrency=4
        )


def _gate(backend, tmp_path, identifier=None, records=None):
    items = [
        protocols.Item(f"r/{r['lang']}/{r['id']}", r["lang"], "?", r["response"])
        for r in (_records() if records is None else records)
    ]
    return runner.run(
        protocols.get_protocol("single"),
        backend,
        items,
        JudgmentStore(tmp_path / "j.sqlite"),
        language_gate=True,
        progress=False,
        identifier=identifier,
    )


def test_the_gate_and_agreement_give_one_verdict(backend, tmp_path):
    gated = _gate(backend, tmp_path)
    agreed = language.judge_records(_records(), "r")
    assert [r["language_match"] for r in gated] == [float(j["lang_agree"]) for j in agreed]
    assert [r["response_lang"] for r in gated] == [j["response_lang"] for j in agreed]
    for result, (lang, answer) in zip(gated, CASES, strict=True):
        assert result["status"] == "ok"
        assert (result["score"] > 0) == (lang == answer), (lang, answer, result)
        assert result["language_id"] == "lingua, open set (75 languages)"


WORDS = {
    "spa_Latn": "la casa es grande y el perro corre a casa con mi amigo hoy",
    "por_Latn": "a casa é grande e o cão corre para casa com o meu amigo hoje",
    "eng_Latn": "the house is big and the dog runs home with my friend today",
}


@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory):
    """A tiny fastText identifier with Flores labels (``testing.fasttext_models``)."""
    rng = random.Random(0)
    lines = [
        f"__label__{label} " + " ".join(rng.choice(words.split()) for _ in range(8))
        for label, words in WORDS.items()
        for _ in range(150)
    ]
    rng.shuffle(lines)
    return fasttext_models.train(tmp_path_factory.mktemp("fasttext"), lines)


def test_fasttext_judges_agreement_and_the_gate_alike(fasttext_model, backend, tmp_path):
    cases = [("es", "es"), ("es", "pt"), ("pt", "pt")]
    answers = {"es": WORDS["spa_Latn"], "pt": WORDS["por_Latn"]}
    infer = tmp_path / "run" / "infer"
    infer.mkdir(parents=True)
    records = [
        {"id": f"q{i}", "lang": lang, "prompt": "?", "response": answers[answer]}
        for i, (lang, answer) in enumerate(cases)
    ]
    (infer / "mixed.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    spec = f"fasttext:{fasttext_model}"
    assert cli.main(["judge", "--outputs", str(infer), f"--identifier={spec}"]) == 0
    rows = _rows(tmp_path / "run" / "judge" / "judgments.jsonl")
    assert [(r["response_lang"], r["lang_agree"]) for r in rows] == [
        ("es", True),
        ("pt", False),
        ("pt", True),
    ]
    assert {r["language_id"] for r in rows} == {f"{spec}, open set (3 labels)"}

    gated = _gate(backend, tmp_path, langid.make_identifier(spec), records)
    assert [r["language_match"] for r in gated] == [float(r["lang_agree"]) for r in rows]
    assert {r["language_id"] for r in gated} == {f"{spec}, open set (3 labels)"}


def test_fasttext_takes_no_candidate_list(fasttext_model, tmp_path, capsys):
    infer = _write_infer(tmp_path / "run" / "infer", [("es", "es")])
    argv = ["judge", "--outputs", str(infer), f"--identifier=fasttext:{fasttext_model}"]
    assert cli.main([*argv, "--languages=es"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--languages applies to lingua" in errors[0], err
    assert cli.main(["judge", "--outputs", str(infer), "--identifier=cld3"]) == 2
    assert "unknown identifier 'cld3'" in capsys.readouterr().err


def test_the_report_names_the_identifier(tmp_path):
    infer = _write_infer(tmp_path / "run" / "infer")
    assert cli.main(["judge", "--outputs", str(infer)]) == 0
    path = report.write_report([tmp_path / "run" / "judge"], tmp_path / "report")
    assert "Language ID: lingua, open set (75 languages)" in path.read_text().splitlines()


def test_language_id_lines_name_runs_when_identifiers_differ():
    rows = [
        {
            "run": "a",
            "lang": "es",
            "lang_agree": True,
            "language_id": "lingua, open set (75 languages)",
        },
        {"run": "b", "lang": "es", "lang_agree": True, "language_id": "fasttext:m.bin, open set"},
        {"run": "c", "lang": "es", "lang_agree": False},  # judged before it was recorded
        {"run": "c", "lang": "es", "chrf": 40.0},
    ]
    assert report.language_id_lines(rows) == [
        "Language ID: fasttext:m.bin, open set (runs b)",
        "Language ID: lingua, open set (75 languages) (runs a)",
        "Language ID: not recorded (runs c)",
    ]
    assert report.language_id_lines([{"run": "a", "lang": "es", "chrf": 1.0}]) == []
