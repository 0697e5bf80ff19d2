import json

import pytest

from polyglot_jax.data import sources

GOOD = {
    "id": "a",
    "lang": "fi",
    "messages": [{"role": "user", "content": "Hei"}, {"role": "assistant", "content": "Moi"}],
}


def write(tmp_path, lines: list[bytes]):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def good_line(**changes) -> bytes:
    return json.dumps({**GOOD, **changes}, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (b'{"id": "b", "lang": "fi", "messages": [', "malformed JSON"),
        (b"\xff\xfe not utf-8", "invalid UTF-8"),
        (good_line(messages=[]), "'messages' must be a non-empty list"),
        (good_line(messages=[{"role": "user", "content": ""}]), "content is empty"),
        (good_line(messages=[{"role": "bot", "content": "x"}]), "role 'bot'"),
        (good_line(messages=[{"role": "user", "content": 3}]), "content must be a string"),
        (good_line(lang="xx"), "unknown language code 'xx'"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, bad, expected):
    path = write(tmp_path, [good_line(), bad])
    with pytest.raises(sources.DataError) as info:
        list(sources.read_jsonl(path))
    message = str(info.value)
    assert message.startswith(f"{path}:2: ") and expected in message and "\n" not in message


def test_skip_bad_counts_instead_of_raising(tmp_path):
    path = write(tmp_path, [good_line(), b"{oops", good_line(id="c"), good_line(lang="xx")])
    skipped = sources.SkipCounter()
    records = list(sources.read_jsonl(path, skip_bad=True, skipped=skipped))
    assert [r["id"] for r in records] == ["a", "c"]
    assert skipped.total == 2


def test_missing_id_gets_a_stable_content_hash(tmp_path):
    record = {k: v for k, v in GOOD.items() if k != "id"}
    path = write(tmp_path, [json.dumps(record).encode(), json.dumps(record).encode()])
    first, second = sources.read_jsonl(path)
    assert first["id"] == second["id"] and first["id"].startswith("sha-")


def test_file_language_must_match_record(tmp_path):
    path = write(tmp_path, [good_line()])
    with pytest.raises(sources.DataError, match="record language 'fi' but file is 'et'"):
        list(sources.read_jsonl(path, lang="et"))


def test_oasst_prompts_from_shared_data(shared_data):
    folder = shared_data / "oasst_prompts"
    ids = {}
    for path in sorted(folder.glob("test_*.jsonl")):
        lang = path.stem.split("_")[1]
        skipped = sources.SkipCounter()
        records = list(sources.read_prompts_jsonl(path, lang, skip_bad=True, skipped=skipped))
        assert len(records) == 50 and skipped.total == 0, path
        assert all(r["messages"][0]["content"].strip() for r in records)
        ids[lang] = {r["id"] for r in records}
    assert len(ids) == 11
    assert len(set.intersection(*ids.values())) >= 45  # the same 50 prompts in every language


def test_malformed_line_is_named_or_skipped_and_counted(shared_data, tmp_path):
    # The release's Hindi file had a stray quote on line 50 (repaired in ../shared/data): the
    # same defect elsewhere is an error naming file and line, or skipped and counted on request.
    lines = (shared_data / "oasst_prompts" / "test_hi.jsonl").read_text().splitlines()
    broken = tmp_path / "test_hi.jsonl"
    broken.write_text("\n".join([*lines[:49], lines[49].rstrip("}") + '"}']) + "\n")
    with pytest.raises(sources.DataError, match=r"test_hi\.jsonl:50: malformed JSON"):
        list(sources.read_prompts_jsonl(broken, "hi"))
    skipped = sources.SkipCounter()
    kept = list(sources.read_prompts_jsonl(broken, "hi", skip_bad=True, skipped=skipped))
    assert (len(kept), skipped.total) == (49, 1)


def test_over_long_line_is_named_with_its_size_and_never_read_whole(tmp_path):
    import tracemalloc

    limit = 1024 * 1024
    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        f.write(good_line() + b"\n")
        f.write(b'{"text": "' + b"x" * (20 * 1024 * 1024) + b'"}\n')
        f.write(good_line(id="c") + b"\n")
    tracemalloc.start()
    try:
        with pytest.raises(sources.DataError) as info:
            list(sources.read_jsonl(path, max_line_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{path}:2: line too long ({20 * 1024 * 1024 + 12} bytes")
    assert f"limit is {limit} bytes" in message and "\n" not in message
    assert peak < 4 * limit, peak
    skipped = sources.SkipCounter()
    records = list(sources.read_jsonl(path, skip_bad=True, skipped=skipped, max_line_bytes=limit))
    assert [r["id"] for r in records] == ["a", "c"]
    assert skipped.counts == {"line too long": 1}


def test_line_of_exactly_the_limit_is_read(tmp_path):
    line = good_line()
    path = write(tmp_path, [line, good_line(id="b")])
    assert len(list(sources.read_jsonl(path, max_line_bytes=len(line)))) == 2
    with pytest.raises(sources.DataError, match=r":1: line too long"):
        list(sources.read_jsonl(path, max_line_bytes=len(line) - 1))
