"""Where ``polyglot-jax data fetch`` downloads each dataset from: repository, revision, files.

Every source is a repository on the Hugging Face Hub (``hf://datasets/<repo>@<revision>/<path>``)
or on GitHub (``https://raw.githubusercontent.com/<repo>/<revision>/<path>``), read through
``datasets.load_dataset`` with the ``json`` or ``parquet`` builder and the files named here, so
no loading script runs. A revision is a commit hash where one could be checked; the others are
:data:`UNPINNED` (the default branch), said so beside each.

``$POLYGLOT_JAX_HUB_MIRROR`` names a local folder holding ``<owner>/<name>/<path>`` copies of these
repositories (an offline mirror, or the small files of the tests): the one place where a
repository id becomes a path.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

from polyglot_jax import languages

ENV_MIRROR = "POLYGLOT_JAX_HUB_MIRROR"
UNPINNED = "main"  # no commit hash could be checked for the repository: its default branch


@dataclasses.dataclass(frozen=True)
class Source:
    """Files of one repository at one revision.

    Attributes:
      repo: ``owner/name`` on the Hugging Face Hub, or ``github:owner/name``.
      revision: a commit hash, or :data:`UNPINNED`.
      path: the file (or glob) in the repository; ``{lang}``/``{split}``/``{folder}`` are
        filled in per language and split.
      builder: ``json`` (JSON lines, a JSON list or a gzipped one), ``parquet``, or ``text``
        (one row ``{"text": line}`` per line, blank lines kept, for files whose lines the
        ``json`` builder cannot read or whose line numbers are ids).
      field: for ``json``, the key of the record list in a JSON document (SQuAD's ``data``).
    """

    repo: str
    revision: str
    path: str
    builder: str = "json"
    field: str | None = None

    def url(self, **values: str) -> str:
        """The file's URL, or its path in the mirror when ``$POLYGLOT_JAX_HUB_MIRROR`` is set."""
        path = self.path.format(**values)
        repo = self.repo.removeprefix("github:")
        mirror = os.environ.get(ENV_MIRROR)
        if mirror:
            return os.fspath(pathlib.Path(mirror) / repo / path)
        if self.repo.startswith("github:"):
            return f"https://raw.githubusercontent.com/{repo}/{self.revision}/{path}"
        return f"hf://datasets/{repo}@{self.revision}/{path}"

    def label(self, **values: str) -> str:
        """``repo@revision/path`` (the revision shortened), for logs and error messages."""
        return f"{self.repo}@{self.revision[:12]}/{self.path.format(**values)}"


# The published data of Better Alpaca (Chen et al. 2023, arXiv 2309.08958): Alpaca-cleaned as
# the study used it and its machine translations, and the 50 human-translated OASST test prompts.
_HPLT = "github:hplt-project/monolingual-multilingual-instruction-tuning"
_HPLT_COMMIT = "0053b15119a5a16c177a0d17fbff9a4960944734"

_LIMA_COMMIT = "68958e98267f5fb4a52a03ebcdae4ae59213fa7c"
_OASST1_COMMIT = "fdf72ae0827c1cda404aff25b6603abec9e3399b"
_DOLLY_COMMIT = "bdd27f4d94b9c1f951818a7da7fd7aeea5dbff1a"
_AYA_COMMIT = "f9ea04583f02a8f86404ff6c58bf75fe637df8a2"

SOURCES: dict[str, dict[str, Source]] = {
    # Polyglots' Guanaco (QLoRA's OASST1 best replies); train 9,846, eval (our validation) 518.
    "guanaco": {
        "train": Source(
            "timdettmers/openassistant-guanaco",
            "831dabac2283d99420cda0b673d7a2a43849f17a",
            "openassistant_best_replies_train.jsonl",
        ),
        "validation": Source(
            "timdettmers/openassistant-guanaco",
            "831dabac2283d99420cda0b673d7a2a43849f17a",
            "openassistant_best_replies_eval.jsonl",
        ),
    },
    # LIMA (gated on the Hub: accept its terms and log in first), at the commit the Hub's API
    # reported as main on 2026-08-11.
    "lima": {
        "train": Source("GAIR/lima", _LIMA_COMMIT, "train.jsonl"),
        "test": Source("GAIR/lima", _LIMA_COMMIT, "test.jsonl"),
    },
    # OASST1 messages (flat, with parent_id and rank).
    "oasst1": {
        "train": Source("OpenAssistant/oasst1", _OASST1_COMMIT, "data/train-*.parquet", "parquet"),
        "validation": Source(
            "OpenAssistant/oasst1", _OASST1_COMMIT, "data/validation-*.parquet", "parquet"
        ),
    },
    # Dolly-15k.
    "dolly": {
        "train": Source(
            "databricks/databricks-dolly-15k", _DOLLY_COMMIT, "databricks-dolly-15k.jsonl"
        )
    },
    # Alpaca-cleaned and its translations as Better Alpaca trained on them (rows aligned by index
    # across languages; yahma/alpaca-cleaned and pinzhenchen/alpaca-cleaned-<lang> on the Hub).
    "alpaca": {
        "train": Source(_HPLT, _HPLT_COMMIT, "training-data/alpaca_data_cleaned.{lang}.json")
    },
    # Bactrian-X: one gzipped JSON list per language; the commit is the one whose loading script
    # reads data/<lang>.json.gz.
    "bactrian_x": {
        "train": Source(
            "MBZUAI/Bactrian-X",
            "a91887f1681a0e57f05af3ae59ec82a9eba5cde3",
            "data/{lang}.json.gz",
        )
    },
    # The Aya dataset (language column with English names; CohereForAI/aya_dataset before the
    # organisation's rename), at the commit that was main on 2026-08 (202,362 train rows).
    "aya": {
        "train": Source("CohereLabs/aya_dataset", _AYA_COMMIT, "data/train-*.parquet", "parquet"),
        "test": Source("CohereLabs/aya_dataset", _AYA_COMMIT, "data/test-*.parquet", "parquet"),
    },
    "oasst_test": {"test": Source(_HPLT, _HPLT_COMMIT, "test-data/test_{lang}.jsonl")},
    # Polyglots' evaluation prompts (Kew et al. 2023, arXiv 2312.12683): AlpacaEval's 805
    # instructions and their machine translations, one {"instruction"} object per line despite
    # the .json suffix, line i the same prompt in every language. The de, en, es, ru, da and no
    # files were seen at data/alpaca_eval_instructions_{lang}.json (commits 2cedd48, 748f649) and
    # are taken to have moved into data/alpaca_eval/ with the others by this commit. Licence: no
    # licence file seen in the repository; AlpacaEval is CC BY-NC 4.0 (tatsu-lab/alpaca_eval).
    "alpaca_eval_polyglots": {
        "test": Source(
            "github:ZurichNLP/multilingual-instruction-tuning",
            "fbb1979efce8ff92402d76ba9497cbc3d023436f",
            "data/alpaca_eval/alpaca_eval_instructions_{lang}.json",
            "text",
        )
    },
    # The zero-shot study's 113 AlpacaEval test prompts (Chirkova & Nikoulina 2024, arXiv
    # 2402.14778), one JSON list holding one user message per line, line i the same prompt in
    # every language; translated with Google Translate and corrected by native or fluent
    # speakers. CC BY-NC 4.0, as AlpacaEval (data/NOTICE_alpacaeval.txt beside the files).
    "alpaca_eval_zero_shot": {
        "test": Source(
            "github:naver/pasero",
            "5fa52cc56f46b240f02910ad26b4ad60b2cfc652",
            "examples/zero-shot-transfer-inst-tuning/data/alpacaeval_test_subset.{lang}.jsonl",
            "text",
        )
    },
    # Evaluation sets, written in the layout of polyglot_jax/evaluation/benchmarks/registry.py.
    "xcopa": {
        split: Source(
            "github:cambridgeltl/xcopa",
            "e2e9d7f105a758ee869cd13e0fe251ef93a29840",
            f"data/{{lang}}/{split}.{{lang}}.jsonl",
        )
        for split in ("val", "test")
    },
    "xquad": {
        "test": Source(
            "github:google-deepmind/xquad",
            "7d30520c717524000f0d9d2f9c10a069acd9d285",
            "xquad.{lang}.json",
            field="data",
        )
    },
    # XNLI in the Hub's layout (premise, hypothesis, label), at the commit several public
    # projects pin <lang>/<split>-00000-of-00001.parquet at.
    "xnli": {
        split: Source(
            "facebook/xnli",
            "b8dd5d7af51114dbda02c0e3f6133f332186418e",
            f"{{lang}}/{split}-*.parquet",
            "parquet",
        )
        for split in ("validation", "test")
    },
    # X-CSQA (X-CSR): the Hub's Parquet conversion of INK-USC/xcsr at that commit.
    "xcsqa": {
        split: Source(
            "INK-USC/xcsr",
            "b169f1fa63b75a2e3ea44573a43fd1a8dfd1cb68",
            f"X-CSQA-{{folder}}/xcsr-{split}.parquet",
            "parquet",
        )
        for split in ("validation", "test")
    },
    # XStoryCloze: the Hub's Parquet conversion of juletxara/xstory_cloze (the branch
    # refs/convert/parquet at that commit; the main branch holds a loading script).
    "xstorycloze": {
        split: Source(
            "juletxara/xstory_cloze",
            "d2d6764b9876536d67164880e272503aacfa4cc6",
            f"{{lang}}/xstory_cloze-{split}.parquet",
            "parquet",
        )
        for split in ("train", "eval")
    },
    # PAWS-X in the Hub's Parquet layout (<lang>/<split>-00000-of-00001.parquet), at the commit
    # another public project pins these files at with their SHA-256 (seen in its source, not
    # checked here against the Hub).
    "pawsx": {
        split: Source(
            "google-research-datasets/paws-x",
            "4cd8187c404bda33cb1f62b49b001115862acf37",
            f"{{lang}}/{split}-*.parquet",
            "parquet",
        )
        for split in ("validation", "test")
    },
    # XWinograd: one JSONL file per language subset (Japanese is "jp").
    "xwinograd": {
        "test": Source(
            "Muennighoff/xwinograd",
            "e98b9216f60fc8dbabfe766e014534a08ff01949",
            "test/{folder}.jsonl",
        )
    },
    # MGSM (Shi et al. 2022): the test questions as juletxara/mgsm ships them (the files
    # lm-evaluation-harness reads; UNPINNED: no full commit hash could be checked) and the
    # exemplars module of the release, at the commit it was seen at.
    "mgsm": {
        "test": Source("juletxara/mgsm", UNPINNED, "mgsm_{lang}.tsv", "text"),
        "train": Source(
            "github:google-research/url-nlp",
            "4b1e7a43efb517abadd16041e8b47f3be975c76e",
            "mgsm/exemplars.py",
            "text",
        ),
    },
    # Belebele: data/<variant>.jsonl of facebook/belebele, the files lm-evaluation-harness's
    # tasks and other public projects read. UNPINNED: no full commit hash could be checked.
    "belebele": {"test": Source("facebook/belebele", UNPINNED, "data/{variant}.jsonl")},
}

# The harness's 122 belebele_<variant> tasks (FLORES-200 codes), as a block of text: a list
# literal would be 122 formatted lines.
_BELEBELE_ALL = """
acm_Arab afr_Latn als_Latn amh_Ethi apc_Arab arb_Arab arb_Latn ars_Arab ary_Arab arz_Arab
asm_Beng azj_Latn bam_Latn ben_Beng ben_Latn bod_Tibt bul_Cyrl cat_Latn ceb_Latn ces_Latn
ckb_Arab dan_Latn deu_Latn ell_Grek eng_Latn est_Latn eus_Latn fin_Latn fra_Latn fuv_Latn
gaz_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hin_Latn hrv_Latn hun_Latn
hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kac_Latn kan_Knda
kat_Geor kaz_Cyrl kea_Latn khk_Cyrl khm_Khmr kin_Latn kir_Cyrl kor_Hang lao_Laoo lin_Latn
lit_Latn lug_Latn luo_Latn lvs_Latn mal_Mlym mar_Deva mkd_Cyrl mlt_Latn mri_Latn mya_Mymr
nld_Latn nob_Latn npi_Deva npi_Latn nso_Latn nya_Latn ory_Orya pan_Guru pbt_Arab pes_Arab
plt_Latn pol_Latn por_Latn ron_Latn rus_Cyrl shn_Mymr sin_Latn sin_Sinh slk_Latn slv_Latn
sna_Latn snd_Arab som_Latn sot_Latn spa_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn swh_Latn
tam_Taml tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi tsn_Latn tso_Latn tur_Latn ukr_Cyrl
urd_Arab urd_Latn uzn_Latn vie_Latn war_Latn wol_Latn xho_Latn yor_Latn zho_Hans zho_Hant
zsm_Latn zul_Latn
""".split()  # noqa: SIM905
# Left out: a second variant of a language the registry already maps (its codes name no
# script): the romanised arb_Latn, ben_Latn, hin_Latn, npi_Latn, sin_Latn and urd_Latn, and
# zho_Hant (Traditional Chinese; zh is zho_Hans). Every other variant is one language.
BELEBELE_LEFT_OUT = frozenset(
    {"arb_Latn", "ben_Latn", "hin_Latn", "npi_Latn", "sin_Latn", "urd_Latn", "zho_Hant"}
)
# The registry's code (languages.canonical) → the Belebele variant: 115 languages.
BELEBELE_VARIANTS: dict[str, str] = {
    languages.canonical(v): v for v in _BELEBELE_ALL if v not in BELEBELE_LEFT_OUT
}


# Languages of the evaluation sets (the registry's codes; X-CSQA's Japanese folder is "jap").
EVAL_LANGUAGES: dict[str, tuple[str, ...]] = {
    "xcopa": ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"),
    "xquad": ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"),
    "xnli": (
        *("ar", "bg", "de", "el", "en", "es", "fr", "hi"),
        *("ru", "sw", "th", "tr", "ur", "vi", "zh"),
    ),
    "xcsqa": (
        *("ar", "de", "en", "es", "fr", "hi", "it", "ja"),
        *("nl", "pl", "pt", "ru", "sw", "ur", "vi", "zh"),
    ),
    "xstorycloze": ("ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh"),
    "pawsx": ("de", "en", "es", "fr", "ja", "ko", "zh"),
    "xwinograd": ("en", "fr", "ja", "pt", "ru", "zh"),
    "belebele": tuple(BELEBELE_VARIANTS),
    "mgsm": ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"),
}
XCSQA_FOLDERS = {"ja": "jap"}
XWINOGRAD_SUBSETS = {"ja": "jp"}


def source(name: str, split: str) -> Source:
    """The source of one split of a dataset."""
    return SOURCES[name][split]
