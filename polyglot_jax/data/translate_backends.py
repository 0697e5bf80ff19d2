"""Translation backends: an OpenAI-compatible chat model, a local run, Google Cloud Translation v2.

Each answers ``iter_translate(requests, retry)`` with ``(index, Completion)`` pairs as answers
arrive; a request that never got an answer ends with the failure's reason, never with an
exception. Chat backends (``openai:``, ``local:``) send one prompt per backend kind, read from a
versioned file ``prompts/translate_<kind>_v<N>.txt``; the version (file name and content hash)
is part of every cache key. The chat backend is a judge backend (:func:`backends.from_spec`:
its client, concurrency, timeouts and retries); a retry after a failed check asks again with
another seed. The Google backend POSTs ``q``, ``source``, ``target`` and ``format=text`` to
``<base>/language/translate/v2`` under the same :class:`http_client.RetryPolicy` and concurrency
limit, with the key (``$GOOGLE_TRANSLATE_API_KEY``) in the ``X-Goog-Api-Key`` header, so it is in
no URL, log line or message. ``--backend`` values are parsed by :func:`backend_spec.parse_spec`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import Protocol

import httpx

from polyglot_jax import languages
from polyglot_jax.clients import backends, http_client, usage
from polyglot_jax.clients.backend_spec import BackendSpec, Endpoint, parse_spec, spec_forms
from polyglot_jax.clients.http_client import AttemptError, Completion
from polyglot_jax.errors import ConfigError

PROMPTS = pathlib.Path(__file__).parent / "translate_prompts"
PROMPT_FILES = {"openai": "translate_chat_v1", "local": "translate_local_v1"}
GOOGLE_URL = "https://translation.googleapis.com"
GOOGLE_PATH = "/language/translate/v2"
GOOGLE_KEY_ENV = "GOOGLE_TRANSLATE_API_KEY"
KINDS = ("openai", "google", "local")
SPEC_FORMS = spec_forms(KINDS)


@dataclasses.dataclass(frozen=True)
class Request:
    """One masked text to translate from ``source`` into ``target`` (language codes)."""

    text: str
    source: str
    target: str


class Translator(Protocol):
    """What the translate stage needs from a backend; ``kind``, ``model`` and
    ``prompt_version`` identify its translations in the cache."""

    kind: str
    model: str
    prompt_version: str

    def iter_translate(
        self, requests: Sequence[Request], retry: bool = False
    ) -> Iterator[tuple[int, Completion]]: ...


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A versioned prompt file."""

    name: str
    template: str

    @property
    def version(self) -> str:
        digest = hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:8]
        return f"{self.name}:{digest}"

    def render(self, request: Request) -> str:
        source, target = languages.get(request.source), languages.get(request.target)
        nonce = hashlib.sha256(request.text.encode("utf-8")).hexdigest()[:8]
        fields = {
            "source_name": source.name,
            "source_code": source.code,
            "target_name": target.name,
            "target_code": target.code,
            "nonce": nonce,
        }
        out = self.template
        for name, value in fields.items():
            out = out.replace(f"{{{name}}}", value)
        return out.replace("{text}", request.text)  # last: the text may hold braces

    def answer(self, text: str) -> str:
        """The translation in a chat answer (markers the model echoed are dropped)."""
        lines = text.strip().splitlines()
        if lines and lines[0].startswith("<text_") and lines[0].endswith(">"):
            lines = lines[1:]
        if lines and lines[-1].startswith("</text_") and lines[-1].endswith(">"):
            lines = lines[:-1]
        return "\n".join(lines).strip()


def load_prompt(kind: str) -> Prompt:
    """The prompt of a chat backend kind (``openai`` or ``local``)."""
    name = PROMPT_FILES[kind]
    return Prompt(name, (PROMPTS / f"{name}.txt").read_text(encoding="utf-8").strip() + "\n")


class ChatTranslator:
    """Translation by a chat model (``OpenAIBackend`` or ``LocalBackend``).

    Args:
      kind: ``openai`` or ``local`` (picks the prompt file).
      model: the model name or checkpoint, for the cache key.
      backend: answers first attempts.
      retry_backend: answers a second attempt after a failed check (another seed).
    """

    def __init__(
        self,
        kind: str,
        model: str,
        backend: backends.Backend,
        retry_backend: backends.Backend | None = None,
    ) -> None:
        self.kind, self.model, self.backend = kind, model, backend
        self.retry_backend = retry_backend or backend
        self.prompt = load_prompt(kind)
        self.prompt_version = self.prompt.version

    def iter_translate(
        self, requests: Sequence[Request], retry: bool = False
    ) -> Iterator[tuple[int, Completion]]:
        conversations = [[{"role": "user", "content": self.prompt.render(r)}] for r in requests]
        backend = self.retry_backend if retry else self.backend
        for index, completion in backend.iter_complete(conversations):
            if completion.text is not None:
                completion = dataclasses.replace(
                    completion, text=self.prompt.answer(completion.text)
                )
            yield index, completion


class GoogleTranslator:
    """Google Cloud Translation v2 (basic) over REST.

    Args:
      model: ``nmt`` or ``base``; None sends no model (the API's default).
      base_url: scheme and host (default ``https://translation.googleapis.com``), as written or
        as a parsed :class:`Endpoint`; the API path is appended.
      api_key_env: environment variable holding the key.
      concurrency: requests in flight at once.
      timeout: seconds per request (the :class:`RetryPolicy`'s).
      max_retries: extra attempts after a retryable failure (429, 5xx, timeouts, dropped
        connections, malformed bodies); other 4xx are final at once (the policy's).
      backoff: first retry delay in seconds; doubles each attempt, with jitter (the policy's).

    Raises:
      ConfigError: the key's variable is unset, a setting is out of range or the base URL is
        malformed.
    """

    kind = "google"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | Endpoint | None = None,
        api_key_env: str = GOOGLE_KEY_ENV,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
    ) -> None:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(f"--backend google needs an API key in ${api_key_env}")
        self.model = model or "default"
        self._api_model = model
        self.prompt_version = "v2-text"
        self.concurrency = http_client.check_concurrency(concurrency)
        self.retry = http_client.RetryPolicy(
            max_retries=max_retries, backoff=backoff, timeout=timeout
        )
        if not isinstance(base_url, Endpoint):
            base_url = Endpoint.parse(base_url or GOOGLE_URL, "--backend")
        self.server = base_url.shown
        http_client.quiet_url_loggers()
        self._client = httpx.Client(
            base_url=base_url.url.rstrip("/"),
            params=dict(base_url.query),
            headers={"X-Goog-Api-Key": key},
            timeout=self.retry.timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    def _post(self, body: dict[str, str]) -> str:
        """One attempt: the translated text.

        Raises:
          AttemptError: the server or the connection failed, or the body is not a translation.
        """
        try:
            response = self._client.post(GOOGLE_PATH, json=body)
        except httpx.TimeoutException:
            raise AttemptError("timeout") from None
        except httpx.TransportError:
            raise AttemptError("connection error") from None
        if response.status_code != 200:
            raise AttemptError(f"HTTP {response.status_code}", status=response.status_code)
        try:
            text = response.json()["data"]["translations"][0]["translatedText"]
        except ValueError:
            raise AttemptError("malformed response (not JSON)") from None
        except (KeyError, IndexError, TypeError):
            text = None
        if not isinstance(text, str):
            raise AttemptError("malformed response (no translatedText)")
        return text

    def translate(self, request: Request) -> Completion:
        """One text, retried on transient failures; an answer carries its billed usage: the
        characters sent (the API bills per character of the source text)."""
        body = {"q": request.text, "source": request.source, "target": request.target}
        body["format"] = "text"
        if self._api_model:
            body["model"] = self._api_model
        completion = self.retry.call(lambda: self._post(body), "translate")
        if completion.text is None:
            return completion
        billed = usage.Usage(f"{usage.CHARACTER_BILLED}/{self.model}", len(request.text), 0)
        return usage.UsageCompletion(**dataclasses.asdict(completion), usage=billed)

    def iter_translate(
        self, requests: Sequence[Request], retry: bool = False
    ) -> Iterator[tuple[int, Completion]]:
        """All requests in flight ``concurrency`` at a time, yielded as each finishes."""
        return http_client.iter_concurrent(self.translate, requests, self.concurrency)


def from_spec(
    spec: str | BackendSpec,
    concurrency: int = 16,
    timeout: float = 60.0,
    max_retries: int = 5,
    mixture_or_task_name: str | None = None,
) -> Translator:
    """A translator from a ``--backend`` value (one of :data:`SPEC_FORMS`).

    Args:
      spec: the ``--backend`` value, or its parsed spec.
      concurrency: requests in flight at once (HTTP backends).
      timeout: seconds per request (HTTP backends).
      max_retries: extra attempts after a retryable failure (HTTP backends).
      mixture_or_task_name: the vocabulary's task or mixture (local backends whose run does not
        record it).

    Raises:
      ConfigError: a malformed spec (see :func:`backend_spec.parse_spec`), a bad setting or a
        missing Google API key.
    """
    if isinstance(spec, str):
        spec = parse_spec(spec, "--backend", KINDS)
    if spec.kind == "google":
        return GoogleTranslator(
            spec.model or None, spec.endpoint, GOOGLE_KEY_ENV, concurrency, timeout, max_retries
        )

    def chat(seed: int) -> backends.Backend:
        return backends.from_spec(
            spec,
            concurrency,
            timeout,
            max_retries,
            mixture_or_task_name,
            seed=seed,
            max_tokens=4096,
            max_new_tokens=512,
        )

    if spec.kind == "openai":  # a retry after a failed check asks with another seed
        return ChatTranslator(spec.kind, spec.model, chat(0), chat(1))
    return ChatTranslator(spec.kind, spec.model, chat(0))
