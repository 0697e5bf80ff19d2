"""A local chat-completions server that judges by simple rules and injects faults on request.

For tests and benchmarks of the judge stage: it speaks the OpenAI ``/v1/chat/completions``
protocol on 127.0.0.1, answers each judge prompt deterministically (the longer response wins a
pairwise comparison; scales grow with response length), and misbehaves when the judged text
contains a fault word:

=================  =============================================================
``FAULT429``       HTTP 429 on the first two attempts, then an answer
``FAULT500``       HTTP 500 on the first attempt
``FAULTSLOW``      the first attempt takes longer than any sensible client timeout
``FAULTDROP``      the first attempt's connection is closed without a response
``FAULTJUNK``      the first attempt answers 200 with a body that is not JSON
``FAULTALWAYS``    HTTP 500 on every attempt
``FAULT400``       HTTP 400 on every attempt (also ``FAULT401``, ``FAULT403``, ``FAULT404``)
``FAULTJUNKEVER``  200 with a body that is not JSON on every attempt
``FAULTEMPTY``     200 with an empty ``choices`` list on every attempt
``FAULTHANG``      every attempt takes longer than any sensible client timeout
``UNPARSEABLE``    a well-formed answer whose text follows no judge format
``POSITIONBIAS``   pairwise: always prefers the first response shown
``QUOTEJUDGE``     the judge quotes the response (as shown to it) before its verdict
=================  =============================================================

A translation prompt (``data/translate_prompts/translate_chat_v*.txt``) is answered by
:func:`fake_translation`: prose in the target language of about the source's length, with every
``⟦n⟧`` token in place. Faults in the text to translate:

======================  ========================================================
``FAULTWRONGLANG``      the first attempt answers the source text untranslated
``FAULTWRONGLANGEVER``  every attempt answers the source text untranslated
``FAULTLOSETOKENS``     every answer drops the ``⟦n⟧`` tokens
``FAULTVERBOSE``        every answer is five translations long
======================  ========================================================

With ``gate``, every request waits for that event before it is answered (after it is counted),
so a test can hold requests in flight for as long as it needs.
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import json
import re
import sys
import threading
import time
from typing import Any, Self

FIRST_ATTEMPTS = {
    "FAULT429": 2,
    "FAULT500": 1,
    "FAULTSLOW": 1,
    "FAULTDROP": 1,
    "FAULTJUNK": 1,
    "FAULTWRONGLANG": 1,
}
EVERY_ATTEMPT = {
    "FAULTALWAYS": "FAULT500",
    "FAULT400": "FAULT400",
    "FAULT401": "FAULT401",
    "FAULT403": "FAULT403",
    "FAULT404": "FAULT404",
    "FAULTJUNKEVER": "FAULTJUNK",
    "FAULTEMPTY": "FAULTEMPTY",
    "FAULTHANG": "FAULTSLOW",
    "FAULTWRONGLANGEVER": "FAULTWRONGLANG",
    "FAULTLOSETOKENS": "FAULTLOSETOKENS",
    "FAULTVERBOSE": "FAULTVERBOSE",
}
STATUS = {"FAULT400": 400, "FAULT401": 401, "FAULT403": 403, "FAULT404": 404, "FAULT500": 500}


# One sentence per language, cut and repeated to the length of the text it "translates".
SENTENCES = {
    "en": "The weather is very pleasant today and we are going for a long walk in the park "
    "with our friends.",
    "de": "Das Wetter ist heute sehr schön und wir gehen mit unseren Freunden lange im Park "
    "spazieren.",
    "fr": "Il fait très beau aujourd'hui et nous allons faire une longue promenade dans le parc "
    "avec nos amis.",
    "es": "Hoy hace muy buen tiempo y vamos a dar un largo paseo por el parque con nuestros "
    "amigos.",
    "it": "Oggi il tempo è molto bello e andiamo a fare una lunga passeggiata nel parco con i "
    "nostri amici.",
    "pt": "Hoje o tempo está muito agradável e vamos dar um longo passeio no parque com os "
    "nossos amigos.",
    "nl": "Het weer is vandaag erg mooi en we gaan met onze vrienden een lange wandeling maken "
    "in het park.",
    "da": "Vejret er meget dejligt i dag, og vi skal på en lang gåtur i parken med vores venner.",
    "ru": "Сегодня очень хорошая погода, и мы идём на долгую прогулку в парк с нашими друзьями.",
    "uk": "Сьогодні дуже гарна погода, і ми йдемо на довгу прогулянку в парк з нашими друзями.",
    "bg": "Днес времето е много хубаво и отиваме на дълга разходка в парка с нашите приятели.",
    "cs": "Dnes je velmi pěkné počasí a jdeme se svými přáteli na dlouhou procházku do parku.",
    "pl": "Dzisiaj jest bardzo ładna pogoda i idziemy z przyjaciółmi na długi spacer do parku.",
    "fi": "Tänään on todella kaunis sää ja lähdemme ystäviemme kanssa pitkälle kävelylle puistoon.",
    "et": "Täna on väga ilus ilm ja me läheme koos sõpradega pikale jalutuskäigule parki.",
    "hu": "Ma nagyon szép idő van, és hosszú sétára megyünk a parkba a barátainkkal.",
    "sw": "Leo hali ya hewa ni nzuri sana na tunaenda kutembea kwa muda mrefu katika bustani "
    "pamoja na marafiki zetu.",
    "tr": "Bugün hava çok güzel ve arkadaşlarımızla parkta uzun bir yürüyüşe çıkıyoruz.",
    "el": "Ο καιρός είναι πολύ ωραίος σήμερα και πάμε για μια μεγάλη βόλτα στο πάρκο με τους "
    "φίλους μας.",
    "vi": "Hôm nay thời tiết rất đẹp và chúng tôi sẽ đi dạo lâu trong công viên cùng với bạn bè.",
    "id": "Hari ini cuacanya sangat bagus dan kami akan berjalan-jalan lama di taman bersama "
    "teman-teman kami.",
    "ar": "الطقس جميل جدا اليوم وسنذهب في نزهة طويلة في الحديقة مع أصدقائنا.",
    "he": "מזג האוויר נעים מאוד היום ואנחנו יוצאים לטיול ארוך בפארק עם החברים שלנו.",
    "hi": "आज मौसम बहुत अच्छा है और हम अपने दोस्तों के साथ पार्क में लंबी सैर के लिए जा रहे हैं।",
    "zh": "今天天气非常好，我们要和朋友们一起去公园散步很长时间。",
    "ja": "今日はとても良い天気なので、友達と一緒に公園を長い時間散歩します。",
    "ko": "오늘은 날씨가 아주 좋아서 친구들과 함께 공원에서 오래 산책을 합니다.",
}
_TOKEN = re.compile(r"(⟦\d+⟧)")
_TRANSLATE_PROMPT = re.compile(
    r"into [^\n]*?\((?P<target>[a-z]{2,3})\)\..*<text_(?P<nonce>[0-9a-f]+)>\n(?P<text>.*)"
    r"\n</text_(?P=nonce)>",
    re.DOTALL,
)


def fake_translation(text: str, target: str, fault: str | None = None) -> str:
    """``text`` "translated" into ``target``: each stretch of prose between ``⟦n⟧`` tokens
    becomes about as much of the target language's sentence (English for a language without
    one), and the tokens stay where they were. ``fault`` is a translation fault word."""
    if fault == "FAULTWRONGLANG":
        return text
    sentence = SENTENCES.get(target, SENTENCES["en"])
    units, joiner = (sentence.split(), " ") if " " in sentence else (list(sentence), "")
    out, k = [], 0
    for piece in _TOKEN.split(text):
        if _TOKEN.fullmatch(piece):
            out.append("" if fault == "FAULTLOSETOKENS" else piece)
            continue
        words, size = [], 0
        while size < len(piece.strip()):
            words.append(units[k % len(units)])
            size, k = size + len(words[-1]) + len(joiner), k + 1
        lead, trail = piece[: len(piece) - len(piece.lstrip())], piece[len(piece.rstrip()) :]
        out.append(lead + joiner.join(words) + trail if words else piece)
    answer = "".join(out)
    if fault == "FAULTVERBOSE":  # tokens once, prose five times
        return " ".join([answer] + [_TOKEN.sub("", answer)] * 4)
    return answer


def fault_for(text: str, attempt: int) -> str | None:
    """The fault word that applies to this attempt at ``text`` (see the module docstring)."""
    fault = next(
        (f for f in FIRST_ATTEMPTS if f in text and attempt <= FIRST_ATTEMPTS[f]),
        None,
    )
    return next((v for k, v in EVERY_ATTEMPT.items() if k in text), fault)


def _between(text: str, tag: str) -> str:
    match = re.search(rf"<{tag}_[0-9a-f]+>\n(.*?)\n</{tag}_[0-9a-f]+>", text, re.DOTALL)
    if match is None and tag == "response":  # the releases' "[Submission]: ...\n***" layout
        match = re.search(r"\[Submission\]: (.*?)\n\*\*\*", text, re.DOTALL)
    return match.group(1) if match else ""


def judge_answer(prompt: str, fault: str | None = None) -> str:
    """The rule-based judge's output for one of our judge prompts, or the fake translation of
    a translation prompt."""
    translation = _TRANSLATE_PROMPT.search(prompt)
    if translation:
        return fake_translation(translation["text"], translation["target"], fault)
    if "UNPARSEABLE" in prompt:
        return "I would rather not say."
    if "QUOTEJUDGE" in prompt:
        quoted = _between(prompt, "response")
        return f"The response says: {quoted}\n" + judge_answer(
            prompt.replace("QUOTEJUDGE", "quotejudge")
        )
    if "Verdict: [[A]]" in prompt:
        if "POSITIONBIAS" in prompt:
            return "The first one.\nVerdict: [[A]]"
        a, b = _between(prompt, "response_a"), _between(prompt, "response_b")
        verdict = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "C"
        return (
            f"The {'first' if verdict == 'A' else 'second'} one is longer.\nVerdict: [[{verdict}]]"
        )
    response = _between(prompt, "response")
    level = len(response) // 10
    if "Rating: [[n]]" in prompt:
        return f"Length-based.\nRating: [[{min(10, 1 + level)}]]"
    if '"logical_coherence"' in prompt or "Logical coherence:" in prompt:
        value = min(3, 1 + level // 2)  # keys as a judge of the release's prompt writes them
        names = ("Language", "Fluency", "Helpfulness", "Accuracy", "Logical coherence")
        return json.dumps(dict.fromkeys([*names, "Harmlessness"], value))
    return json.dumps({"reasoning": "length-based", "score": min(6, 1 + level)})


class _QuietServer(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 drops concurrent connects (1 s retries)
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up (the FAULTSLOW case) is expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """An HTTP server on 127.0.0.1 in a daemon thread, used as a context manager."""

    def _serve(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class MockChatServer(LocalServer):
    """Serves in a background thread; use as a context manager.

    Args:
      latency: seconds each answer takes (for throughput measurements).
      slow_seconds: how long a ``FAULTSLOW`` or ``FAULTHANG`` attempt hangs.
      gate: when given, requests are answered only once it is set.
    """

    def __init__(
        self,
        latency: float = 0.0,
        slow_seconds: float = 5.0,
        gate: threading.Event | None = None,
    ) -> None:
        self.latency, self.slow_seconds, self.gate = latency, slow_seconds, gate
        self.requests = 0
        self.authorization: set[str] = set()
        self.paths: set[str] = set()  # request paths with their query strings
        self.prompts: list[str] = []  # the last message of every request, in arrival order
        self._attempts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stall

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with server._lock:
                    server.requests += 1
                    server.authorization.add(self.headers.get("Authorization", ""))
                    server.paths.add(self.path)
                    server.prompts.append(prompt)
                    key = hashlib.sha256(prompt.encode()).hexdigest()
                    server._attempts[key] += 1
                    attempt = server._attempts[key]
                fault = fault_for(prompt, attempt)
                if server.gate is not None:
                    server.gate.wait()
                time.sleep(server.latency)
                if fault == "FAULTDROP":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "FAULTSLOW":
                    time.sleep(server.slow_seconds)
                if fault == "FAULT429" or fault in STATUS:
                    self._send(STATUS.get(fault, 429), b'{"error": {"message": "x"}}')
                    return
                if fault == "FAULTJUNK":
                    self._send(200, b"<html>bad gateway</html>")
                    return
                content = judge_answer(prompt, fault)
                choices = [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ]
                asked = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
                usage = {"prompt_tokens": asked, "completion_tokens": len(content.split())}
                answer = {
                    "id": "mock",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [] if fault == "FAULTEMPTY" else choices,
                    "usage": {**usage, "total_tokens": sum(usage.values())},  # words as tokens
                }
                self._send(200, json.dumps(answer).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(payload)

        self._serve(Handler)

    @property
    def base_url(self) -> str:
        return f"{self.address}/v1"
