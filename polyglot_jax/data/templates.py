"""Chat templates: conversations rendered to text segments with a loss flag each.

A template turns ``messages`` into segments ``(text, is_target)``. Each segment is tokenized
on its own, so the loss mask follows segment boundaries exactly, for one or many turns. The same
function renders prompts for generation (``add_generation_prompt=True``), so training and
inference agree on every character.
"""

from __future__ import annotations

import dataclasses

import gin

LOSS_ON = ("last_assistant", "all_assistant", "all")


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
    """Strings around each turn. ``{}`` in a prefix is never used; contents are inserted as is.

    Attributes:
      name: registry name.
      system_prefix / system_suffix: around a system message.
      user_prefix / user_suffix: around a user message.
      assistant_prefix: before an assistant message (never a target).
      assistant_suffix: after an assistant message (a target: the model learns to close a turn).
    """

    name: str
    system_prefix: str = ""
    system_suffix: str = "\n"
    user_prefix: str = ""
    user_suffix: str = "\n"
    assistant_prefix: str = ""
    assistant_suffix: str = "\n"


TEMPLATES: dict[str, ChatTemplate] = {
    t.name: t
    for t in (
        ChatTemplate(
            "guanaco",
            user_prefix="### Human: ",
            user_suffix="\n",
            assistant_prefix="### Assistant: ",
            assistant_suffix="\n",
        ),
        ChatTemplate("plain", user_suffix="\n", assistant_suffix="\n"),
    )
}


def get_template(name: str) -> ChatTemplate:
    """Looks up a template by name; unknown names list the known ones."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; known: {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[name]


@gin.configurable
def render(
    messages: list[dict],
    template: str = "guanaco",
    loss_on: str = "all_assistant",
    add_generation_prompt: bool = False,
) -> list[tuple[str, bool]]:
    """Renders a conversation to ``(text, is_target)`` segments.

    Args:
      messages: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``.
      template: name of a template in :data:`TEMPLATES`.
      loss_on: which tokens are targets: ``"last_assistant"``, ``"all_assistant"`` or ``"all"``.
      add_generation_prompt: end with the assistant prefix, for generation. A trailing assistant
        message is then dropped, so a training example renders to its own prompt.

    Returns:
      Non-empty segments in order; their concatenation is the rendered text.
    """
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    t = get_template(template)
    if add_generation_prompt and messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    last_assistant = max(
        (i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1
    )
    segments: list[tuple[str, bool]] = []
    for i, message in enumerate(messages):
        role, content = message["role"], message["content"]
        if role == "assistant":
            target = loss_on == "all" or loss_on == "all_assistant" or i == last_assistant
            segments.append((t.assistant_prefix, loss_on == "all"))
            segments.append((content + t.assistant_suffix, target))
        else:
            prefix, suffix = (
                (t.user_prefix, t.user_suffix)
                if role == "user"
                else (t.system_prefix, t.system_suffix)
            )
            segments.append((prefix + content + suffix, loss_on == "all"))
    if add_generation_prompt:
        segments.append((t.assistant_prefix, False))
    return [(text, target) for text, target in segments if text]
