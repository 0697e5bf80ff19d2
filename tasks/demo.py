"""The embedded demo: 12 parallel languages, a task per language and three recipes.

Tasks ``demo_<lang>`` (splits ``train``: 68 examples, ``validation``: 10 held-out prompts with
references) and mixtures, each an exact recipe over the 68 parallel training ids:

- ``demo_en_only``: 68 English examples.
- ``demo_pinch``: 46 English + 2 in each of the 11 other languages (22 multilingual, no id twice).
- ``demo_uniform``: all 68 examples in each of the 12 languages (816).
"""

from polyglot_jax.data import chat_tasks, demo_build, recipes, vocab

DEMO = chat_tasks.ChatDataset(
    "demo",
    {
        (split, lang): demo_build.DEMO_DIR / f"{prefix}.{lang}.jsonl"
        for lang in demo_build.DEMO_LANGUAGES
        for split, prefix in (("train", "train"), ("validation", "eval"))
    },
)
OTHER_LANGUAGES = tuple(lang for lang in demo_build.DEMO_LANGUAGES if lang != "en")
PINCH_MULTILINGUAL_EXAMPLES = 22

VOCABULARY = vocab.demo_vocabulary()
TASKS = chat_tasks.register_dataset(DEMO, VOCABULARY)

recipes.register_mixture("demo_en_only", DEMO, recipes.monolingual(DEMO, "en"), VOCABULARY)
recipes.register_mixture(
    "demo_pinch",
    DEMO,
    recipes.pinch(DEMO, "en", OTHER_LANGUAGES, n_multilingual=PINCH_MULTILINGUAL_EXAMPLES),
    VOCABULARY,
)
recipes.register_mixture(
    "demo_uniform", DEMO, recipes.uniform(DEMO, demo_build.DEMO_LANGUAGES), VOCABULARY
)
