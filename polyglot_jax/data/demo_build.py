"""Builds the embedded demo instruction set: parallel chat data in 12 languages.

Every language gets the same examples under the same ids (parallel data), so a recipe can
replace an English example by its translation. Each language has 68 training pairs (five
arithmetic/number templates with 12 number pairs each, plus 8 everyday questions) and 10
held-out evaluation prompts with reference answers (the same templates on unseen numbers).

Run ``python -m polyglot_jax.data.demo_build`` to rewrite ``polyglot_jax/data/demo/*.jsonl``;
a test checks that the stored files equal what this module builds.
"""

from __future__ import annotations

import json
import pathlib
import random

from polyglot_jax import languages

DEMO_DIR = pathlib.Path(__file__).parent / "demo"
DEMO_LANGUAGES: tuple[str, ...] = languages.PINCH_LANGUAGES  # the pinch study's 12
NUM_TRAIN_PAIRS_PER_TEMPLATE = 12
NUM_EVAL_PAIRS_PER_TEMPLATE = 2

# Templates: name -> language -> (question, answer), with slots {a}, {b}, {c}.
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "add": {
        "en": ("What is {a} plus {b}?", "{a} plus {b} equals {c}."),
        "es": ("¿Cuánto es {a} más {b}?", "{a} más {b} es igual a {c}."),
        "it": ("Quanto fa {a} più {b}?", "{a} più {b} fa {c}."),
        "cs": ("Kolik je {a} plus {b}?", "{a} plus {b} se rovná {c}."),
        "et": ("Kui palju on {a} pluss {b}?", "{a} pluss {b} võrdub {c}."),
        "fi": ("Paljonko on {a} plus {b}?", "{a} plus {b} on {c}."),
        "sw": ("{a} jumlisha {b} ni ngapi?", "{a} jumlisha {b} ni sawa na {c}."),
        "ru": ("Сколько будет {a} плюс {b}?", "{a} плюс {b} равно {c}."),
        "ar": ("كم يساوي {a} زائد {b}؟", "{a} زائد {b} يساوي {c}."),
        "he": ("כמה זה {a} ועוד {b}?", "{a} ועוד {b} שווה {c}."),
        "hi": ("{a} जमा {b} कितना होता है?", "{a} जमा {b} बराबर {c} होता है।"),
        "zh": ("{a} 加 {b} 等于多少？", "{a} 加 {b} 等于 {c}。"),
    },
    "sub": {
        "en": ("What is {a} minus {b}?", "{a} minus {b} equals {c}."),
        "es": ("¿Cuánto es {a} menos {b}?", "{a} menos {b} es igual a {c}."),
        "it": ("Quanto fa {a} meno {b}?", "{a} meno {b} fa {c}."),
        "cs": ("Kolik je {a} minus {b}?", "{a} minus {b} se rovná {c}."),
        "et": ("Kui palju on {a} miinus {b}?", "{a} miinus {b} võrdub {c}."),
        "fi": ("Paljonko on {a} miinus {b}?", "{a} miinus {b} on {c}."),
        "sw": ("{a} toa {b} ni ngapi?", "{a} toa {b} ni sawa na {c}."),
        "ru": ("Сколько будет {a} минус {b}?", "{a} минус {b} равно {c}."),
        "ar": ("كم يساوي {a} ناقص {b}؟", "{a} ناقص {b} يساوي {c}."),
        "he": ("כמה זה {a} פחות {b}?", "{a} פחות {b} שווה {c}."),
        "hi": ("{a} घटा {b} कितना होता है?", "{a} घटा {b} बराबर {c} होता है।"),
        "zh": ("{a} 减 {b} 等于多少？", "{a} 减 {b} 等于 {c}。"),
    },
    "mul": {
        "en": ("What is {a} times {b}?", "{a} times {b} equals {c}."),
        "es": ("¿Cuánto es {a} por {b}?", "{a} por {b} es igual a {c}."),
        "it": ("Quanto fa {a} per {b}?", "{a} per {b} fa {c}."),
        "cs": ("Kolik je {a} krát {b}?", "{a} krát {b} se rovná {c}."),
        "et": ("Kui palju on {a} korda {b}?", "{a} korda {b} võrdub {c}."),
        "fi": ("Paljonko on {a} kertaa {b}?", "{a} kertaa {b} on {c}."),
        "sw": ("{a} mara {b} ni ngapi?", "{a} mara {b} ni sawa na {c}."),
        "ru": ("Сколько будет {a} умножить на {b}?", "{a} умножить на {b} равно {c}."),
        "ar": ("كم يساوي {a} ضرب {b}؟", "{a} ضرب {b} يساوي {c}."),
        "he": ("כמה זה {a} כפול {b}?", "{a} כפול {b} שווה {c}."),
        "hi": ("{a} गुणा {b} कितना होता है?", "{a} गुणा {b} बराबर {c} होता है।"),
        "zh": ("{a} 乘以 {b} 等于多少？", "{a} 乘以 {b} 等于 {c}。"),
    },
    "max": {
        "en": ("Which number is larger, {a} or {b}?", "The larger number is {c}."),
        "es": ("¿Qué número es mayor, {a} o {b}?", "El número mayor es {c}."),
        "it": ("Quale numero è più grande, {a} o {b}?", "Il numero più grande è {c}."),
        "cs": ("Které číslo je větší, {a} nebo {b}?", "Větší číslo je {c}."),
        "et": ("Kumb arv on suurem, {a} või {b}?", "Suurem arv on {c}."),
        "fi": ("Kumpi luku on suurempi, {a} vai {b}?", "Suurempi luku on {c}."),
        "sw": ("Namba ipi ni kubwa zaidi, {a} au {b}?", "Namba kubwa zaidi ni {c}."),
        "ru": ("Какое число больше, {a} или {b}?", "Большее число — {c}."),
        "ar": ("أي عدد أكبر، {a} أم {b}؟", "العدد الأكبر هو {c}."),
        "he": ("איזה מספר גדול יותר, {a} או {b}?", "המספר הגדול יותר הוא {c}."),
        "hi": ("कौन सी संख्या बड़ी है, {a} या {b}?", "बड़ी संख्या {c} है।"),
        "zh": ("{a} 和 {b} 哪个数更大？", "更大的数是 {c}。"),
    },
    "next": {
        "en": ("Which number comes after {a}?", "The number after {a} is {c}."),
        "es": ("¿Qué número viene después de {a}?", "El número después de {a} es {c}."),
        "it": ("Quale numero viene dopo {a}?", "Il numero dopo {a} è {c}."),
        "cs": ("Jaké číslo následuje po {a}?", "Po čísle {a} následuje {c}."),
        "et": ("Milline arv tuleb pärast arvu {a}?", "Pärast arvu {a} tuleb {c}."),
        "fi": ("Mikä luku tulee luvun {a} jälkeen?", "Luvun {a} jälkeen tulee {c}."),
        "sw": ("Namba gani inafuata baada ya {a}?", "Baada ya {a} inafuata {c}."),
        "ru": ("Какое число идёт после {a}?", "После {a} идёт {c}."),
        "ar": ("ما العدد الذي يأتي بعد {a}؟", "العدد الذي يأتي بعد {a} هو {c}."),
        "he": ("איזה מספר בא אחרי {a}?", "אחרי {a} בא {c}."),
        "hi": ("{a} के बाद कौन सी संख्या आती है?", "{a} के बाद {c} आती है।"),
        "zh": ("{a} 后面是哪个数？", "{a} 后面是 {c}。"),
    },
}

# Everyday questions: name -> language -> (question, answer).
FIXED: dict[str, dict[str, tuple[str, str]]] = {
    "greet": {
        "en": ("Hello! How are you?", "Hello! I am fine, thank you. How can I help you?"),
        "es": ("¡Hola! ¿Cómo estás?", "¡Hola! Estoy bien, gracias. ¿En qué puedo ayudarte?"),
        "it": ("Ciao! Come stai?", "Ciao! Sto bene, grazie. Come posso aiutarti?"),
        "cs": ("Ahoj! Jak se máš?", "Ahoj! Mám se dobře, děkuji. Jak ti mohu pomoci?"),
        "et": ("Tere! Kuidas läheb?", "Tere! Mul läheb hästi, aitäh. Kuidas saan aidata?"),
        "fi": ("Hei! Mitä kuuluu?", "Hei! Hyvää kuuluu, kiitos. Miten voin auttaa?"),
        "sw": ("Habari! Hujambo?", "Sijambo, asante. Nikusaidie nini?"),
        "ru": ("Привет! Как дела?", "Привет! У меня всё хорошо, спасибо. Чем могу помочь?"),
        "ar": ("مرحبا! كيف حالك؟", "مرحبا! أنا بخير، شكرا. كيف يمكنني مساعدتك؟"),
        "he": ("שלום! מה שלומך?", "שלום! אני בסדר, תודה. איך אוכל לעזור?"),
        "hi": ("नमस्ते! आप कैसे हैं?", "नमस्ते! मैं ठीक हूँ, धन्यवाद। मैं आपकी क्या मदद कर सकता हूँ?"),
        "zh": ("你好！你好吗？", "你好！我很好，谢谢。有什么可以帮你的吗？"),
    },
    "week": {
        "en": ("How many days are in a week?", "A week has seven days."),
        "es": ("¿Cuántos días tiene una semana?", "Una semana tiene siete días."),
        "it": ("Quanti giorni ci sono in una settimana?", "Una settimana ha sette giorni."),
        "cs": ("Kolik dní má týden?", "Týden má sedm dní."),
        "et": ("Mitu päeva on nädalas?", "Nädalas on seitse päeva."),
        "fi": ("Montako päivää viikossa on?", "Viikossa on seitsemän päivää."),
        "sw": ("Wiki moja ina siku ngapi?", "Wiki moja ina siku saba."),
        "ru": ("Сколько дней в неделе?", "В неделе семь дней."),
        "ar": ("كم يوما في الأسبوع؟", "في الأسبوع سبعة أيام."),
        "he": ("כמה ימים יש בשבוע?", "בשבוע יש שבעה ימים."),
        "hi": ("एक सप्ताह में कितने दिन होते हैं?", "एक सप्ताह में सात दिन होते हैं।"),
        "zh": ("一个星期有几天？", "一个星期有七天。"),
    },
    "sky": {
        "en": ("What color is the sky on a clear day?", "On a clear day the sky is blue."),
        "es": (
            "¿De qué color es el cielo en un día despejado?",
            "En un día despejado el cielo es azul.",
        ),
        "it": (
            "Di che colore è il cielo in una giornata serena?",
            "In una giornata serena il cielo è azzurro.",
        ),
        "cs": ("Jakou barvu má obloha za jasného dne?", "Za jasného dne je obloha modrá."),
        "et": ("Mis värvi on taevas selgel päeval?", "Selgel päeval on taevas sinine."),
        "fi": ("Minkä värinen taivas on selkeänä päivänä?", "Selkeänä päivänä taivas on sininen."),
        "sw": (
            "Anga lina rangi gani siku isiyo na mawingu?",
            "Siku isiyo na mawingu anga ni la buluu.",
        ),
        "ru": ("Какого цвета небо в ясный день?", "В ясный день небо голубое."),
        "ar": ("ما لون السماء في يوم صاف؟", "في يوم صاف تكون السماء زرقاء."),
        "he": ("באיזה צבע השמיים ביום בהיר?", "ביום בהיר השמיים כחולים."),
        "hi": ("साफ़ दिन में आसमान किस रंग का होता है?", "साफ़ दिन में आसमान नीला होता है।"),
        "zh": ("晴天的时候天空是什么颜色？", "晴天的时候天空是蓝色的。"),
    },
    "capital": {
        "en": ("What is the capital of France?", "The capital of France is Paris."),
        "es": ("¿Cuál es la capital de Francia?", "La capital de Francia es París."),
        "it": ("Qual è la capitale della Francia?", "La capitale della Francia è Parigi."),
        "cs": ("Jaké je hlavní město Francie?", "Hlavním městem Francie je Paříž."),
        "et": ("Mis on Prantsusmaa pealinn?", "Prantsusmaa pealinn on Pariis."),
        "fi": ("Mikä on Ranskan pääkaupunki?", "Ranskan pääkaupunki on Pariisi."),
        "sw": ("Mji mkuu wa Ufaransa ni upi?", "Mji mkuu wa Ufaransa ni Paris."),
        "ru": ("Какая столица Франции?", "Столица Франции — Париж."),
        "ar": ("ما هي عاصمة فرنسا؟", "عاصمة فرنسا هي باريس."),
        "he": ("מהי בירת צרפת?", "בירת צרפת היא פריז."),
        "hi": ("फ़्रांस की राजधानी क्या है?", "फ़्रांस की राजधानी पेरिस है।"),
        "zh": ("法国的首都是哪里？", "法国的首都是巴黎。"),
    },
    "cat": {
        "en": ("How many legs does a cat have?", "A cat has four legs."),
        "es": ("¿Cuántas patas tiene un gato?", "Un gato tiene cuatro patas."),
        "it": ("Quante zampe ha un gatto?", "Un gatto ha quattro zampe."),
        "cs": ("Kolik nohou má kočka?", "Kočka má čtyři nohy."),
        "et": ("Mitu jalga on kassil?", "Kassil on neli jalga."),
        "fi": ("Montako jalkaa kissalla on?", "Kissalla on neljä jalkaa."),
        "sw": ("Paka ana miguu mingapi?", "Paka ana miguu minne."),
        "ru": ("Сколько лап у кошки?", "У кошки четыре лапы."),
        "ar": ("كم رجلا للقطة؟", "للقطة أربع أرجل."),
        "he": ("כמה רגליים יש לחתול?", "לחתול יש ארבע רגליים."),
        "hi": ("बिल्ली के कितने पैर होते हैं?", "बिल्ली के चार पैर होते हैं।"),
        "zh": ("猫有几条腿？", "猫有四条腿。"),
    },
    "bees": {
        "en": ("What do bees make?", "Bees make honey."),
        "es": ("¿Qué hacen las abejas?", "Las abejas hacen miel."),
        "it": ("Che cosa producono le api?", "Le api producono il miele."),
        "cs": ("Co vyrábějí včely?", "Včely vyrábějí med."),
        "et": ("Mida mesilased teevad?", "Mesilased teevad mett."),
        "fi": ("Mitä mehiläiset tekevät?", "Mehiläiset tekevät hunajaa."),
        "sw": ("Nyuki hutengeneza nini?", "Nyuki hutengeneza asali."),
        "ru": ("Что делают пчёлы?", "Пчёлы делают мёд."),
        "ar": ("ماذا يصنع النحل؟", "النحل يصنع العسل."),
        "he": ("מה הדבורים מייצרות?", "הדבורים מייצרות דבש."),
        "hi": ("मधुमक्खियाँ क्या बनाती हैं?", "मधुमक्खियाँ शहद बनाती हैं।"),
        "zh": ("蜜蜂会做什么？", "蜜蜂会酿蜂蜜。"),
    },
    "thanks": {
        "en": ("Thank you for your help!", "You are welcome! I am glad I could help."),
        "es": ("¡Gracias por tu ayuda!", "¡De nada! Me alegra haber podido ayudar."),
        "it": ("Grazie per il tuo aiuto!", "Prego! Sono contento di averti aiutato."),
        "cs": ("Děkuji za pomoc!", "Není zač! Jsem rád, že jsem mohl pomoci."),
        "et": ("Aitäh abi eest!", "Pole tänu väärt! Mul on hea meel, et sain aidata."),
        "fi": ("Kiitos avustasi!", "Ole hyvä! Olen iloinen, että pystyin auttamaan."),
        "sw": ("Asante kwa msaada wako!", "Karibu! Nafurahi kwamba niliweza kusaidia."),
        "ru": ("Спасибо за помощь!", "Пожалуйста! Я рад, что смог помочь."),
        "ar": ("شكرا على مساعدتك!", "على الرحب والسعة! يسعدني أنني استطعت المساعدة."),
        "he": ("תודה על העזרה!", "בבקשה! אני שמח שיכולתי לעזור."),
        "hi": ("आपकी मदद के लिए धन्यवाद!", "कोई बात नहीं! मुझे खुशी है कि मैं मदद कर सका।"),
        "zh": ("谢谢你的帮助！", "不客气！很高兴能帮到你。"),
    },
    "water": {
        "en": ("At what temperature does water boil?", "Water boils at 100 degrees Celsius."),
        "es": ("¿A qué temperatura hierve el agua?", "El agua hierve a 100 grados Celsius."),
        "it": ("A quale temperatura bolle l'acqua?", "L'acqua bolle a 100 gradi Celsius."),
        "cs": ("Při jaké teplotě se vaří voda?", "Voda se vaří při 100 stupních Celsia."),
        "et": ("Mis temperatuuril vesi keeb?", "Vesi keeb 100 kraadi Celsiuse juures."),
        "fi": ("Missä lämpötilassa vesi kiehuu?", "Vesi kiehuu 100 celsiusasteessa."),
        "sw": ("Maji huchemka kwa joto gani?", "Maji huchemka kwa nyuzi joto 100 za Selsiasi."),
        "ru": ("При какой температуре кипит вода?", "Вода кипит при 100 градусах Цельсия."),
        "ar": ("عند أي درجة حرارة يغلي الماء؟", "يغلي الماء عند 100 درجة مئوية."),
        "he": ("באיזו טמפרטורה רותחים המים?", "המים רותחים ב-100 מעלות צלזיוס."),
        "hi": ("पानी किस तापमान पर उबलता है?", "पानी 100 डिग्री सेल्सियस पर उबलता है।"),
        "zh": ("水在多少度沸腾？", "水在摄氏100度沸腾。"),
    },
}


def _number_pairs(name: str, count: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """Distinct (a, b, c) triples for one template, c being the answer."""
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < count:
        if name == "mul":
            a, b = rng.randint(2, 12), rng.randint(2, 12)
        elif name == "next":
            a, b = rng.randint(1, 999), 0
        else:
            a, b = rng.randint(10, 99), rng.randint(1, 99)
        if name == "sub" and b > a:
            a, b = b, a
        if (a, b) in seen or (name == "max" and a == b):
            continue
        seen.add((a, b))
        c = {"add": a + b, "sub": a - b, "mul": a * b, "max": max(a, b), "next": a + 1}[name]
        out.append((a, b, c))
    return out


def _record(record_id: str, lang: str, question: str, answer: str) -> dict:
    return {
        "id": record_id,
        "lang": lang,
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
    }


def build() -> dict[str, list[dict]]:
    """Returns the demo records keyed by file name (``train.en.jsonl`` ...)."""
    rng = random.Random(20231114)
    per_template = NUM_TRAIN_PAIRS_PER_TEMPLATE + NUM_EVAL_PAIRS_PER_TEMPLATE
    numbers = {name: _number_pairs(name, per_template, rng) for name in TEMPLATES}
    files: dict[str, list[dict]] = {}
    for lang in DEMO_LANGUAGES:
        train, evaluation = [], []
        for name, table in TEMPLATES.items():
            question, answer = table[lang]
            for i, (a, b, c) in enumerate(numbers[name]):
                held_out = i >= NUM_TRAIN_PAIRS_PER_TEMPLATE
                split, index = ("eval", i - NUM_TRAIN_PAIRS_PER_TEMPLATE) if held_out else ("", i)
                record_id = f"demo-{split + '-' if split else ''}{name}-{index:02d}"
                rec = _record(
                    record_id, lang, question.format(a=a, b=b), answer.format(a=a, b=b, c=c)
                )
                (evaluation if held_out else train).append(rec)
        for name, table in FIXED.items():
            train.append(_record(f"demo-{name}", lang, *table[lang]))
        files[f"train.{lang}.jsonl"] = train
        files[f"eval.{lang}.jsonl"] = evaluation
    return files


def serialize(records: list[dict]) -> str:
    """One JSON object per line, UTF-8 kept readable."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def main() -> None:
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    for name, records in build().items():
        (DEMO_DIR / name).write_text(serialize(records), encoding="utf-8")
    print(f"wrote {len(DEMO_LANGUAGES) * 2} files to {DEMO_DIR}")


if __name__ == "__main__":
    main()
