"""Backend specs: the one parser of every model or service value a user can write.

The judge's and the study's ``--judge`` and translation's ``--backend`` name what answers:

  ``openai:MODEL[@BASE_URL]``    an OpenAI-compatible chat-completions server
  ``google[:MODEL][@BASE_URL]``  Google Cloud Translation v2 (MODEL: ``nmt`` or ``base``)
  ``local:CHECKPOINT_PATH``      a polyglot_jax run

:func:`parse_spec` checks a value against the kinds its flag accepts and returns a frozen
:class:`BackendSpec`. A base URL may carry credentials (``https://user:secret@host/v1``,
``?key=...``): its :class:`Endpoint` keeps them to connect with and shows them nowhere. The reprs,
:attr:`Endpoint.shown`, ``str(spec)``, :func:`redact_spec` and every error message leave them out,
and :meth:`Endpoint.scrub` takes them out of any other text (an HTTP library's error message).
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Sequence

from polyglot_jax.errors import ConfigError

FORMS = {
    "openai": "openai:MODEL[@BASE_URL]",
    "google": "google[:MODEL][@BASE_URL]",
    "local": "local:CHECKPOINT_PATH",
}
JUDGE_KINDS = ("openai", "local")
GOOGLE_MODELS = ("nmt", "base")


def redact_url(url: str) -> str:
    """``url`` without user info, query or fragment: what may be logged or stored."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or not parts.netloc:  # too broken to take apart: keep what no secret is in
        scheme, _, rest = url.rpartition("://")
        rest = rest.rpartition("@")[2].partition("?")[0].partition("#")[0]
        return f"{scheme}://{rest}" if scheme else rest
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclasses.dataclass(frozen=True, repr=False)
class Endpoint:
    """A server's base URL taken apart: what to connect with, and what to show nowhere.

    Attributes:
      url: ``scheme://[user:password@]host[:port][/path]``, without query or fragment.
      query: the URL's query parameters, sent with every request (appended to the base URL
        they would end up between its path and ``/chat/completions``).
      secrets: user, password and query values, also percent-encoded, longest first.
    """

    url: str
    query: tuple[tuple[str, str], ...] = ()
    secrets: tuple[str, ...] = ()

    @classmethod
    def parse(cls, url: str, flag: str) -> Endpoint:
        """The endpoint of ``url`` when it is ``http(s)://HOST[:PORT][/PATH][?QUERY]``.

        Args:
          url: the base URL.
          flag: what set it, for the message (``"--judge"``, ``"--backend"``).

        Raises:
          ConfigError: anything else (the message shows no credentials).
        """
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError as e:
            raise ConfigError(f"{flag} base URL {redact_url(url)!r}: {e}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{flag} base URL {redact_url(url)!r}: expected http(s)://HOST[:PORT][/PATH]"
            )
        query = tuple(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        secrets = [s for s in (parts.username, parts.password, *(v for _, v in query)) if s]
        secrets += [urllib.parse.quote(s, safe="") for s in secrets]
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return cls(base, query, tuple(sorted(set(secrets), key=len, reverse=True)))

    @property
    def shown(self) -> str:
        """The URL as it may be logged or stored (no user info, no query)."""
        return redact_url(self.url)

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this endpoint replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"Endpoint({self.shown!r})"


@dataclasses.dataclass(frozen=True, repr=False)
class BackendSpec:
    """A parsed spec; ``str(spec)`` is the spec as it may be shown or stored.

    Attributes:
      kind: ``openai``, ``google`` or ``local``.
      model: the model name (``""``: Google's default model) or the checkpoint path.
      endpoint: the server's base URL, or None for the kind's default server (or a local run).
    """

    kind: str
    model: str
    endpoint: Endpoint | None = None

    def __str__(self) -> str:
        head = f"{self.kind}:{self.model}" if self.model or self.kind != "google" else self.kind
        return f"{head}@{self.endpoint.shown}" if self.endpoint else head

    def __repr__(self) -> str:
        return f"BackendSpec({str(self)!r})"


def spec_forms(kinds: Sequence[str]) -> str:
    """The forms of ``kinds`` for a message: ``openai:MODEL[@BASE_URL] or local:...``."""
    forms = [FORMS[k] for k in kinds]
    return forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"


def parse_spec(spec: str, flag: str = "--judge", kinds: Sequence[str] = JUDGE_KINDS) -> BackendSpec:
    """The :class:`BackendSpec` of a flag's value.

    Args:
      spec: the value (``openai:gpt-4o``, ``google:nmt@http://localhost:8080``, ...).
      flag: the flag it came from, named by every message.
      kinds: the kinds the flag accepts (the judge takes ``openai`` and ``local``; translation
        takes ``google`` too).

    Raises:
      ConfigError: not one of the forms of ``kinds``, an empty model name, a Google model other
        than nmt or base, or a base URL that is not http(s). The message is one line and shows
        no URL credentials.
    """
    kind, sep, rest = spec.partition(":")
    if kind.startswith("google@"):  # google@URL, no model
        kind, sep, rest = "google", ":", spec[len("google") :]
    shown = spec.split("@")[0] + ("@..." if "@" in spec else "")
    if kind in kinds and kind in FORMS and (rest or (kind == "google" and not sep)):
        if kind == "local":
            return BackendSpec(kind, rest)
        model, _, base_url = rest.partition("@")
        if kind == "openai" and not model:
            raise ConfigError(f"{flag} {shown!r}: the model name is empty")
        if kind == "google" and model not in ("", *GOOGLE_MODELS):
            raise ConfigError(f"{flag} {shown!r}: Google models are {' and '.join(GOOGLE_MODELS)}")
        return BackendSpec(kind, model, Endpoint.parse(base_url, flag) if base_url else None)
    raise ConfigError(f"{flag} {shown!r}: expected {spec_forms(kinds)}")


def redact_spec(spec: str) -> str:
    """A spec as it may be shown or stored, even one that does not parse: no credentials in its
    base URL (``openai:m@http://user:KEY@host/v1?key=K`` -> ``openai:m@http://host/v1``)."""
    head, at, base_url = spec.partition("@")
    if not at or head.startswith("local:"):
        return spec
    return f"{head}@{redact_url(base_url)}"
