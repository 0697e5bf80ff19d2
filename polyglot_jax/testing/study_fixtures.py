"""Fixture data for the study datasets, in the data folder's layout (``study_data``).

``write_fixture_data(folder, "study")`` writes every study dataset at the sizes the studies'
recipes need, so ``data describe`` prints the studies' counts: Guanaco 3,500 English and 300 in
each other Polyglots language (multi-k: 3,200 in all, 200 per added language); LIMA + OASST
4,000 parallel examples in each of the 12 Pinch languages (1,000 from LIMA, 3,000 from OASST:
1% = 40 replaced leave 3,960 English); Alpaca-cleaned's 51,760 parallel examples in each Better
Alpaca language (budget over 8 languages: 6,470 each); Dolly's 15,011; the 50 OASST test prompts
in 11 languages, Polyglots' 805 AlpacaEval prompts in 14 and the zero-shot study's 113 in 4.
``"quick"`` writes a few examples of each, for end-to-end tests on the tiny model. Parallel
datasets share ids across languages (translations); the others do not.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from polyglot_jax import storage
from polyglot_jax.data import study_data

Counts = dict[str, dict[str, int]]  # split -> lang -> examples (or part -> ...: see PARTS)

_POLYGLOTS_ADDED = study_data.POLYGLOTS_LANGUAGES[1:]


def _sizes(
    guanaco: tuple[int, int, int],
    lima: tuple[int, int],
    oasst1: tuple[int, int, int],
    pinch: dict[str, tuple[int, int]],
    dolly: int,
    alpaca: int,
    small: int,
    prompts: int,
    alpaca_eval: tuple[int, int],
) -> dict[str, Counts | dict[str, Counts]]:
    en, other, validation = guanaco
    return {
        "guanaco": {
            "train": {"en": en, **dict.fromkeys(_POLYGLOTS_ADDED, other)},
            "validation": dict.fromkeys(study_data.POLYGLOTS_LANGUAGES, validation),
        },
        "lima": {"train": {"en": lima[0]}, "test": {"en": lima[1]}},
        "oasst1": {
            "train": {"en": oasst1[0], **dict.fromkeys(_POLYGLOTS_ADDED, oasst1[1])},
            "validation": dict.fromkeys(study_data.POLYGLOTS_LANGUAGES, oasst1[2]),
        },
        # split -> part -> examples in every Pinch language
        "lima_oasst": {
            split: {part: pinch[split][i] for i, part in enumerate(("lima", "oasst"))}
            for split in pinch
        },
        "dolly": {"train": {"en": dolly}},
        "alpaca": {"train": dict.fromkeys(study_data.BETTER_ALPACA_LANGUAGES, alpaca)},
        "bactrian_x": {"train": dict.fromkeys(study_data.POLYGLOTS_LANGUAGES, small)},
        "aya": {
            "train": dict.fromkeys(("en", "es", "ar", "sw", "zh"), small),
            "test": dict.fromkeys(("en", "es"), max(1, small // 10)),
        },
        "oasst_test": {"test": dict.fromkeys(study_data.OASST_TEST_LANGUAGES, prompts)},
        "alpaca_eval_polyglots": {
            "test": dict.fromkeys(study_data.POLYGLOTS_EVAL_LANGUAGES, alpaca_eval[0])
        },
        "alpaca_eval_zero_shot": {
            "test": dict.fromkeys(study_data.ZERO_SHOT_EVAL_LANGUAGES, alpaca_eval[1])
        },
    }


SIZES = {
    # The studies' sizes: multi-k 3,200 (200 per added language); Pinch 4,000, LIMA's 1,000 +
    # 3,000 OASST ("1% of the English examples ... 40 examples", §3.2), with 300 held-out
    # prompts; Alpaca-cleaned 51,760, Dolly-15k 15,011, LIMA's 1,030 training examples and 300
    # test prompts, the 50 OASST test prompts, AlpacaEval's 805 instructions (Polyglots) and
    # the zero-shot study's 113 of them.
    "study": _sizes(
        guanaco=(3500, 300, 20),
        lima=(1030, 300),
        oasst1=(3500, 300, 20),
        pinch={"train": (1000, 3000), "test": (200, 100)},
        dolly=15011,
        alpaca=51760,
        small=200,
        prompts=50,
        alpaca_eval=(805, 113),
    ),
    "quick": _sizes(
        guanaco=(40, 12, 3),
        lima=(24, 4),
        oasst1=(24, 8, 3),
        pinch={"train": (8, 16), "test": (2, 2)},
        dolly=24,
        alpaca=24,
        small=8,
        prompts=4,
        alpaca_eval=(4, 3),
    ),
}


def _conversation(name: str, lang: str, n: int, turns: int) -> list[dict]:
    messages = []
    for t in range(turns):
        messages.append({"role": "user", "content": f"{name} {lang} question {n}.{t}: why?"})
        messages.append({"role": "assistant", "content": f"{name} {lang} answer {n}.{t}."})
    return messages


def _lines(name: str, split: str, lang: str, count: int, part: str | None) -> Iterator[str]:
    study = study_data.get(name)
    prefix = f"{name}-{part or split}" if study.parallel else f"{name}-{split}-{lang}"
    for n in range(count):
        record_id = f"{prefix}-{n:05d}"
        if study.prompts:
            yield json.dumps({"id": record_id, "prompt": f"{lang} prompt {n}: how?"})
            continue
        held_out = split == "test"  # held-out prompts: the user's turn only
        turns = 2 if name == "oasst1" and n % 3 == 0 else 1  # a few multi-turn threads
        messages = _conversation(name, lang, n, turns)
        if held_out:
            messages = messages[:1]
        yield json.dumps({"id": record_id, "lang": lang, "messages": messages}, ensure_ascii=False)


def write_fixture_data(data_dir: str | os.PathLike, sizes: str = "quick") -> dict[str, int]:
    """Writes every study dataset into ``data_dir`` in the data folder's layout.

    Args:
      data_dir: the data folder (``DATA_DIR``).
      sizes: ``"quick"`` (a few examples each) or ``"study"`` (the studies' sizes).

    Returns:
      Examples written per dataset.
    """
    if sizes not in SIZES:
        raise ValueError(f"sizes must be one of {', '.join(SIZES)}, got {sizes!r}")
    root = storage.as_path(data_dir)
    written: dict[str, int] = {}
    for name, splits in SIZES[sizes].items():
        study = study_data.get(name)
        for split, counts in splits.items():
            if study.parts:
                jobs = [(lang, part, n) for lang in study.languages for part, n in counts.items()]
            else:
                jobs = [(lang, None, n) for lang, n in counts.items()]
            for lang, part, count in jobs:
                rel = study.relative_files(split, lang)[study.parts.index(part) if part else 0]
                text = "\n".join(_lines(name, split, lang, count, part)) + "\n"
                storage.write_atomic(root / rel, text)
                written[name] = written.get(name, 0) + count
    return written
