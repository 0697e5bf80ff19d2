"""The four studies' datasets as SeqIO tasks ``<dataset>_<lang>``, registered lazily.

Datasets (``polyglot_jax.data.study_data.DATASETS``; each fetched with
``polyglot-jax data fetch NAME --data_dir=DIR``):

- ``guanaco``: OpenAssistant-Guanaco split by language with ``data tag`` (Polyglots, multi-k);
  ``train``, ``validation`` (the hub's test split).
- ``lima``: LIMA, English; ``train`` and ``test`` (its 300 held-out prompts, user turn only).
- ``oasst1``: OASST1, the top-ranked path of every tree, per language; ``train``, ``validation``.
- ``lima_oasst``: LIMA + OASST1 in the 12 Pinch languages, two parts per split and language
  (``<split>.<lang>.lima.jsonl``, ``<split>.<lang>.oasst.jsonl``, read in that order), parallel
  ids; ``train`` and ``test`` (held-out prompts).
- ``dolly``: Dolly-15k, English (zero-shot transfer); ``train``.
- ``alpaca``: Alpaca-cleaned and its translations (Better Alpaca), parallel ids; ``train``.
- ``bactrian_x``: Bactrian-X, parallel ids; ``train``. ``aya``: the Aya dataset; ``train``,
  ``test``.
- ``oasst_test``: the 50 OASST test prompts in 11 languages (Better Alpaca's test set), split
  ``test``.
- ``alpaca_eval_polyglots``: AlpacaEval's 805 instructions in English and 13 translations
  (Polyglots' test set), split ``test``, parallel ids.
- ``alpaca_eval_zero_shot``: 113 AlpacaEval test prompts in English, French, Portuguese and
  Russian (the zero-shot transfer study's test set), split ``test``, parallel ids.

Layout under the data folder ``DATA_DIR`` (gin, ``runs/study_data.gin``; None: the environment
variable ``POLYGLOT_JAX_DATA_DIR``): ``<dataset>/<split>.<lang>.jsonl`` in the project's
``{id, lang, messages}`` JSONL; ``<dataset>/<split>.<lang>.<part>.jsonl`` for datasets with
several sources per split and language (``lima_oasst``); ``<dataset>/test_<lang>.jsonl`` with
``{"id", "prompt"}`` lines for the evaluation prompts, as the published OASST test prompts.
Tokens come from ``VOCABULARY_PATH`` (a Hugging Face model folder; None: the demo vocabulary).

Importing this module reads no file and needs no data folder: files are read when a task's
data is first asked for, and a missing one is one line naming it and the fetch command. The
recipes (``recipes.pinch_mixture(dataset="lima_oasst", ...)``, ``multi_k_mixture``,
``budget_mixture``, ``monolingual_mixture`` and the ``mix_*.gin`` files with ``DATASET``) take
these names as they take ``demo``.
"""

from polyglot_jax.data import study_data

TASKS = [task for name in study_data.DATASETS for task in study_data.register(name)]
