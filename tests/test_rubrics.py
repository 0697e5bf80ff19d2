"""The shipped judge prompts ask what the studies' releases asked, word for word."""

import json

import pytest

from polyglot_jax.evaluation.judges import protocols

ITEM = protocols.Item("run/fi/1", "fi", "Mikä on Suomen pääkaupunki?", "Helsinki.")

# ZurichNLP/multilingual-instruction-tuning@de435a4, llm_judge.py:39-70.
KEW_LEVELS = [
    '"1": "Not helpful - The generated text is completely irrelevant, unclear, or incomplete. '
    'It does not provide any useful information to the user." ',
    '"3": "Moderately helpful - The generated text is relevant to the user\'s question, and it '
    "provides a clear and complete answer. However, it may lack detail or explanation that would "
    'be helpful for the user." ',
    '"6": "Highly helpful - The generated text provides a clear, complete, and detailed answer. '
    "It offers additional information or explanations that are not only useful but also "
    "insightful and valuable to the user. The response is also in a logical and easy-to-follow "
    "manner by explicitly using headings, bullet points, or numbered lists to break up the "
    'information and make it easier to read." ',
]
KEW_HEAD = (
    "You are evaluating a response that has been submitted for a particular task, using a "
    "specific set of standards. Below is the data: \n\n[BEGIN DATA]\n***\n[Task]: {q} \n***\n"
    "[Submission]: {r}\n***\n[Criterion]: helpfulness: \n\n"
)
KEW_TAIL = (
    "Provide your response as a RFC8259 compliant JSON following this schema:\n\n"
    '{"reasoning": str, "score": int}\n\n'
)
# naver/pasero@5fa52cc, examples/zero-shot-transfer-inst-tuning/evaluation/eval_prompt_gpt.txt.
PASERO_FACETS = [
    "Language:\n1 star means the Submission language is different from the Task language.\n"
    "2 stars means Submission language is the same as the Task language but with occasional "
    "code-switching.\n3 starts means Submission language is the same as the Task language.",
    "Helpfulness:\n1 star means Lack of necessary information or off-topic response.\n2 stars "
    "means Insufficient information to provide a complete answer.\n3 stars means Information is "
    "correct and sufficient. Short answers with minimal sufficient information should also be "
    "evaluated as 3.",
    "Logical coherence:\n1 star means Confused and full of logical flaws.",
]


def test_polyglots_rubric_is_the_release_text_with_no_language_clause():
    protocol = protocols.get_protocol("single", "polyglots_helpfulness")
    ((_, messages),) = protocol.requests(ITEM)
    assert messages[0] == {"role": "system", "content": "You are an expert language evaluator."}
    text = messages[1]["content"]
    assert text.startswith(KEW_HEAD.format(q=ITEM.question, r=ITEM.response))
    assert all(level in text for level in KEW_LEVELS)
    assert text.endswith(KEW_TAIL)
    # Helpfulness and language agreement are measured apart: the rubric never mentions language.
    assert "language" not in text.replace("You are an expert language evaluator.", "").lower()
    assert protocol.scale == (1, 6)
    assert protocol.parse(json.dumps({"reasoning": "Correct.", "score": 6}))["score"] == 6


def test_zero_shot_facets_are_the_release_prompt_and_its_keys_parse():
    protocol = protocols.get_protocol("facets", "zero_shot_facets")
    ((_, messages),) = protocol.requests(ITEM)
    assert [m["role"] for m in messages] == ["user"]
    text = messages[0]["content"]
    assert f"[Task]: {ITEM.question}\n***\n[Submission]: {ITEM.response}\n***" in text
    assert all(facet in text for facet in PASERO_FACETS)
    assert text.endswith("Output a json dictionary with scores for 6 specified criteria.")
    answer = {
        "Language": 3, "Fluency": 3, "Helpfulness": 2,
        "Accuracy": 3, "Logical coherence": 3, "Harmlessness": 3,
    }  # fmt: skip
    parsed = protocol.parse(json.dumps(answer))
    assert parsed["logical_coherence"] == 3 and parsed["helpfulness"] == 2
    with pytest.raises(protocols.ParseError, match="harmlessness"):
        protocol.parse(json.dumps({k: v for k, v in answer.items() if k != "Harmlessness"}))
