"""Chat templates: conversations rendered to text segments with a loss flag each.

A template turns ``messages`` into segments ``(text, is_target)``. Each segment is tokenized
on its own, so the loss mask follows segment boundaries exactly, for one or many turns. The same
function renders prompts for generation (``add_generation_prompt=True``), so training and
inference agree on every character.

``template="tokenizer"`` renders with the checkpoint's own Jinja ``chat_template``
(:mod:`chat_template`); its segments are tokenized as one text, as ``transformers`` does.
:func:`encode` turns segments into ids for any template, starting with the tokenizer's BOS when
it adds one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import gin

from polyglot_jax.data import chat_template
from polyglot_jax.errors import ConfigError

LOSS_ON = ("last_assistant", "all_assistant", "all")
TOKENIZER = "tokenizer"  # the template shipped with the model's tokenizer


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
    """Strings around each turn; contents are inserted as they are.

    Attributes:
      name: registry name.
      preamble: text before the conversation (never a target).
      system_prefix / system_suffix: around a system message.
      system_in_user: put the system message inside the next user turn, right after its prefix
        (Llama 2 chat's ``[INST] <<SYS>> ... <</SYS>> user [/INST]``).
      user_prefix / user_suffix: around a user message.
      assistant_prefix: before an assistant message (never a target); a generation prompt ends
        with it.
      assistant_lead: opens the assistant message after the prefix, with it in the target and not
        in a generation prompt (Guanaco's ``### Assistant:`` prompt whose answers start with a
        space).
      assistant_suffix: after an assistant message (a target: the model learns to close a turn).
    """

    name: str
    preamble: str = ""
    system_prefix: str = ""
    system_suffix: str = "\n"
    system_in_user: bool = False
    user_prefix: str = ""
    user_suffix: str = "\n"
    assistant_prefix: str = ""
    assistant_lead: str = ""
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
        # openassistant-guanaco's own text, as the Polyglots release trains on it and prompts
        # with it: turns joined with no newline, the prompt ends with "### Assistant:".
        ChatTemplate(
            "guanaco_text",
            user_prefix="### Human: ",
            user_suffix="",
            assistant_prefix="### Assistant:",
            assistant_lead=" ",
            assistant_suffix="",
        ),
        ChatTemplate("plain", user_suffix="\n", assistant_suffix="\n"),
        ChatTemplate(
            "alpaca",
            preamble="Below is an instruction that describes a task. Write a response that "
            "appropriately completes the request.\n\n",
            user_prefix="### Instruction:\n",
            user_suffix="\n\n",
            assistant_prefix="### Response:\n",
            assistant_suffix="\n\n",
        ),
        ChatTemplate(
            "llama2",
            system_prefix="<<SYS>>\n",
            system_suffix="\n<</SYS>>\n\n",
            system_in_user=True,
            user_prefix="[INST] ",
            user_suffix=" [/INST]",
            assistant_prefix=" ",
            assistant_suffix=" ",
        ),
        ChatTemplate(
            "chatml",
            system_prefix="<|im_start|>system\n",
            system_suffix="<|im_end|>\n",
            user_prefix="<|im_start|>user\n",
            user_suffix="<|im_end|>\n",
            assistant_prefix="<|im_start|>assistant\n",
            assistant_suffix="<|im_end|>\n",
        ),
    )
}


def get_template(name: str) -> ChatTemplate:
    """Looks up a template by name; unknown names list the known ones."""
    if name not in TEMPLATES:
        known = ", ".join([*sorted(TEMPLATES), TOKENIZER])
        raise ConfigError(f"unknown chat template {name!r}; known: {known}")
    return TEMPLATES[name]


class ChatFormat(NamedTuple):
    """How conversations become training text: a template and the tokens trained on.

    Attributes:
      template: a name of :data:`TEMPLATES`, or ``"tokenizer"`` (the model tokenizer's own
        ``chat_template``).
      loss_on: one of :data:`LOSS_ON`.
    """

    template: str = "guanaco"
    loss_on: str = "all_assistant"

    def checked(self) -> ChatFormat:
        """This format, after checking its names.

        Raises:
          ConfigError: an unknown template or loss selection (the message lists the known).
        """
        if self.template != TOKENIZER:
            get_template(self.template)
        if self.loss_on not in LOSS_ON:
            raise ConfigError(f"loss_on must be one of {LOSS_ON}, got {self.loss_on!r}")
        return self


@gin.configurable
def chat_format(template: str = "guanaco", loss_on: str = "all_assistant") -> ChatFormat:
    """The run's chat format, set in gin (``CHAT_TEMPLATE``, ``LOSS_ON``).

    The one place the data path reads the gin setting: a task built without an explicit
    :class:`ChatFormat` resolves it here when its dataset is built. Training records it in
    ``MODEL_DIR/chat_format.json`` so inference renders prompts alike.
    """
    return ChatFormat(template, loss_on).checked()


def render(
    messages: list[dict],
    template: str | None = None,
    loss_on: str | None = None,
    add_generation_prompt: bool = False,
    vocabulary: Any = None,
) -> list[tuple[str, bool]]:
    """Renders a conversation to ``(text, is_target)`` segments.

    Args:
      messages: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``.
      template: name of a template in :data:`TEMPLATES`, or ``"tokenizer"`` (default:
        :func:`chat_format`'s).
      loss_on: which tokens are targets: ``"last_assistant"``, ``"all_assistant"`` or ``"all"``
        (default: :func:`chat_format`'s).
      add_generation_prompt: end with the assistant prefix, for generation. A trailing assistant
        message is then dropped, so a training example renders to its own prompt.
      vocabulary: the model's vocabulary (:mod:`vocab`); needed by ``template="tokenizer"``.

    Returns:
      Non-empty segments in order; their concatenation is the rendered text.
    """
    if not (template and loss_on):
        default = chat_format()
        template, loss_on = template or default.template, loss_on or default.loss_on
    if loss_on not in LOSS_ON:
        raise ConfigError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    if add_generation_prompt and messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    if template == TOKENIZER:
        info = _tokenizer_info(vocabulary)
        return chat_template.render_segments(
            info.chat_template,
            dict(info.template_variables),
            [text for text, _ in info.special_tokens],
            messages,
            loss_on,
            add_generation_prompt,
        )
    t = get_template(template)
    last_assistant = max(
        (i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1
    )
    all_tokens = loss_on == "all"
    segments: list[tuple[str, bool]] = [(t.preamble, all_tokens)]
    pending_system = ""
    for i, message in enumerate(messages):
        role, content = message["role"], message["content"]
        if role == "system" and t.system_in_user:
            pending_system = t.system_prefix + content + t.system_suffix
            continue
        if role == "user" and pending_system:
            content, pending_system = pending_system + content, ""
        if role == "assistant":
            target = all_tokens or loss_on == "all_assistant" or i == last_assistant
            segments.append((t.assistant_prefix, all_tokens))
            segments.append((t.assistant_lead + content + t.assistant_suffix, target))
        else:
            prefix, suffix = (
                (t.user_prefix, t.user_suffix)
                if role == "user"
                else (t.system_prefix, t.system_suffix)
            )
            segments.append((prefix + content + suffix, all_tokens))
    if add_generation_prompt:
        segments.append((t.assistant_prefix, False))
    return [(text, target) for text, target in segments if text]


def _tokenizer_info(vocabulary: Any) -> Any:
    info = getattr(vocabulary, "info", None)
    if info is None or info.chat_template is None:
        raise ConfigError(
            "CHAT_TEMPLATE='tokenizer' needs a Hugging Face tokenizer with a chat_template in "
            "its tokenizer_config.json (or chat_template.jinja)"
        )
    return info


def encode(
    vocabulary: Any, segments: list[tuple[str, bool]], template: str | None = None
) -> tuple[list[int], list[bool]]:
    """Token ids of rendered segments and a target flag per id.

    Built-in templates tokenize each segment on its own (so the mask follows segment
    boundaries) after the tokenizer's BOS, when it adds one; ``"tokenizer"`` tokenizes the whole
    text as ``transformers`` does (its template writes any BOS itself).

    Args:
      vocabulary: a :mod:`vocab` vocabulary (any other SeqIO vocabulary: no BOS).
      segments: :func:`render`'s output.
      template: the template that rendered them (default: :func:`chat_format`'s).

    Returns:
      ids ``[tokens]`` and target flags ``[tokens]``; no EOS is appended.
    """
    if (template or chat_format()[0]) == TOKENIZER:
        return chat_template.encode_segments(vocabulary, segments)
    ids = start_ids(vocabulary)
    targets = [False] * len(ids)
    for text, target in segments:
        pieces = vocabulary.encode(text)
        ids += pieces
        targets += [target] * len(pieces)
    return ids, targets


def start_ids(vocabulary: Any) -> list[int]:
    """The ids that start every input: ``[BOS]`` when the tokenizer adds one, else none.

    Plain SeqIO vocabularies (no ``info``) keep SeqIO's convention: no start token.
    """
    info = getattr(vocabulary, "info", None)
    return [] if info is None or info.bos_id is None else [info.bos_id]
