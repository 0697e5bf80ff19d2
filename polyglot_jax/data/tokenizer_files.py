"""What a Hugging Face tokenizer directory says beyond its pieces: BOS, padding, special
tokens and the chat template, read from ``tokenizer_config.json`` (and ``chat_template.jinja``),
the SentencePiece model and ``tokenizer.json``'s post-processor.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

import sentencepiece as spm

from polyglot_jax.errors import DataError


@dataclasses.dataclass(frozen=True)
class TokenizerInfo:
    """How a tokenizer frames text, beyond its pieces.

    The defaults are the SeqIO convention of the demo vocabulary.

    Attributes:
      bos_id: the token the tokenizer puts before a sequence, or None when it adds none.
      pad_id: the tokenizer's padding id (0 when it declares none; padding is always masked).
      decoder_start_id: the decoder's input before a sequence's first token (SeqIO: 0), or None
        when the sequence's own first token is the first input (Hugging Face models).
      special_tokens: ``(text, id)`` of tokens matched whole in text, longest first (``<s>``,
        ``<|im_end|>``): a chat template writes them as text.
      template_variables: ``(name, text)`` given to a chat template (``bos_token``, ...).
      chat_template: the Jinja chat template shipped with the tokenizer, if any.
      prefix_space: where SentencePiece's dummy prefix space goes: ``"always"`` (every text
        piece between special tokens, LlamaTokenizer ``legacy=True``), ``"first"`` (only at the
        start of the text) or ``"never"``.
    """

    bos_id: int | None = None
    pad_id: int = 0
    decoder_start_id: int | None = 0
    special_tokens: tuple[tuple[str, int], ...] = ()
    template_variables: tuple[tuple[str, str], ...] = ()
    chat_template: str | None = None
    prefix_space: str = "always"


def token_text(config: Mapping, name: str) -> str | None:
    """The text of a named token of ``tokenizer_config.json`` (a string or an added-token dict)."""
    value = config.get(name)
    return value.get("content") if isinstance(value, dict) else value


def _chat_template(model_dir: pathlib.Path, config: Mapping) -> str | None:
    """``chat_template`` of ``tokenizer_config.json`` (the default one of a list), or the
    ``chat_template.jinja`` file that newer ``transformers`` versions write beside it."""
    template = config.get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template}
        template = named.get("default")
    if template is None and (model_dir / "chat_template.jinja").exists():
        template = (model_dir / "chat_template.jinja").read_text(encoding="utf-8")
    return template


def _special_texts(config: Mapping) -> list[str]:
    """Texts of the named special tokens and the added tokens of ``tokenizer_config.json``."""
    names = ("bos_token", "eos_token", "unk_token", "pad_token")
    texts = [token_text(config, n) for n in names]
    texts += [t.get("content") for t in config.get("added_tokens_decoder", {}).values()]
    extra = config.get("additional_special_tokens") or config.get("extra_special_tokens") or []
    texts += [t.get("content") if isinstance(t, dict) else t for t in extra]
    return [t for t in texts if isinstance(t, str) and t]


def _template_variables(config: Mapping, defaults: Mapping[str, str | None]) -> tuple:
    names = ("bos_token", "eos_token", "unk_token", "pad_token")
    values = {n: token_text(config, n) or defaults.get(n) for n in names}
    return tuple((n, v) for n, v in values.items() if v is not None)


def sentencepiece_info(
    model_dir: pathlib.Path, config: Mapping, sp: spm.SentencePieceProcessor
) -> TokenizerInfo:
    """The framing of a ``tokenizer.model`` with its ``tokenizer_config.json`` (``config``).

    BOS: ``add_bos_token`` when the config sets it; otherwise what the post-processor of a
    ``tokenizer.json`` beside the model adds (``transformers`` runs that file), or, without
    one, the model's bos piece when it has one. The dummy prefix space follows LlamaTokenizer:
    ``legacy=True`` puts it before every text piece between special tokens, ``legacy=False``
    (the default of ``transformers`` 5) only at the start of the text, and
    ``add_prefix_space=False`` nowhere.
    """
    fast = _read_tokenizer_json(model_dir)

    def piece(i: int) -> str | None:
        return sp.id_to_piece(i) if i >= 0 else None

    defaults = {
        "bos_token": piece(sp.bos_id()),
        "eos_token": piece(sp.eos_id()),
        "unk_token": piece(sp.unk_id()),
        "pad_token": piece(sp.pad_id()),
    }
    variables = _template_variables(config, defaults)
    texts = [*_special_texts(config), *(v for _, v in variables)]
    special = {t: sp.piece_to_id(t) for t in texts}
    special = {t: i for t, i in special.items() if i != sp.unk_id() or t == piece(sp.unk_id())}
    bos_text = dict(variables).get("bos_token")
    if "add_bos_token" in config or fast is None:
        add_bos = config.get("add_bos_token", sp.bos_id() >= 0) and bos_text in special
        bos = special[bos_text] if add_bos else None
    else:
        bos = _added_bos(fast)
    pad_text = dict(variables).get("pad_token")
    if config.get("add_prefix_space", True) is False:
        prefix_space = "never"
    else:
        prefix_space = "always" if config.get("legacy", False) else "first"
    return TokenizerInfo(
        bos_id=bos,
        pad_id=special.get(pad_text, 0) if pad_text else 0,
        decoder_start_id=None,
        special_tokens=tuple(sorted(special.items())),
        template_variables=variables,
        chat_template=_chat_template(model_dir, config),
        prefix_space=prefix_space,
    )


def _read_tokenizer_json(model_dir: pathlib.Path) -> Any:
    """``tokenizer.json`` as a ``tokenizers.Tokenizer``, or None when the directory has none."""
    path = model_dir / "tokenizer.json"
    if not path.exists():
        return None
    import tokenizers

    try:
        return tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust library raises a bare Exception for a malformed file
        raise DataError(f"{path}: not a Hugging Face tokenizers file ({e})") from None


def _added_bos(tokenizer: Any) -> int | None:
    """The id the tokenizer's post-processor puts before a text, if any (Llama 3's
    ``TemplateProcessing`` adds ``<|begin_of_text|>``; GPT-style tokenizers add nothing)."""
    plain = tokenizer.encode("a", add_special_tokens=False).ids
    framed = tokenizer.encode("a", add_special_tokens=True).ids
    if len(framed) > len(plain) and framed[1 : len(plain) + 1] == plain:
        return framed[0]
    return None


def tokenizers_info(model_dir: pathlib.Path, config: Mapping, tokenizer: Any) -> TokenizerInfo:
    """The framing of a ``tokenizer.json`` (a ``tokenizers.Tokenizer``) with its config.

    BOS is added when ``add_bos_token`` says so, or, when the config is silent, when the
    post-processor adds a token before the text.
    """
    if "add_bos_token" in config:
        bos_text = token_text(config, "bos_token")
        bos = tokenizer.token_to_id(bos_text) if config["add_bos_token"] and bos_text else None
    else:
        bos = _added_bos(tokenizer)
    pad_text = token_text(config, "pad_token")
    pad = tokenizer.token_to_id(pad_text) if pad_text else None
    added = {t.content for t in tokenizer.get_added_tokens_decoder().values()}
    return TokenizerInfo(
        bos_id=bos,
        pad_id=0 if pad is None else pad,
        decoder_start_id=None,
        special_tokens=tuple(sorted((t, tokenizer.token_to_id(t)) for t in added)),
        template_variables=_template_variables(config, {}),
        chat_template=_chat_template(model_dir, config),
    )
