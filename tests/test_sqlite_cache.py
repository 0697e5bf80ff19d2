"""The one SQLite cache under the judgment store and the translation cache."""

import dataclasses
import os
import sqlite3
import subprocess
import sys
import threading

import pytest

from polyglot_jax.clients import sqlite_cache
from polyglot_jax.data import translate_cache
from polyglot_jax.errors import BusyError, DataError
from polyglot_jax.evaluation.judges import store

# The tables as files written before the shared cache hold them, statement for statement.
OLD_JUDGMENTS = """CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY, protocol TEXT, judge TEXT, item_id TEXT,
    status TEXT, raw TEXT, parsed TEXT, reason TEXT)"""
OLD_TRANSLATIONS = """CREATE TABLE IF NOT EXISTS translations (
    key TEXT PRIMARY KEY, status TEXT, translation TEXT, reason TEXT,
    attempts INTEGER, backend TEXT, model TEXT, prompt_version TEXT,
    source_lang TEXT, target_lang TEXT, source TEXT)"""
NOTES = sqlite_cache.Table(
    "notes", (("text", "TEXT"), ("n", "INTEGER"), ("extra", "TEXT")), "note cache", "note",
    json_columns=frozenset({"extra"}),
)  # fmt: skip


def old_file(path, schema, table, *rows):
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(schema)
        for row in rows:
            db.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
    db.close()
    return path


def columns(path, table):
    with sqlite3.connect(path) as db:
        out = [(r[1], r[2], r[5]) for r in db.execute(f"PRAGMA table_info({table})")]
    db.close()
    return out


def test_judgment_files_written_before_read_and_write_as_they_were(tmp_path):
    old = old_file(
        tmp_path / "old.sqlite",
        OLD_JUDGMENTS,
        "judgments",
        ("k1", "single", "openai:m", "r/en/0", "ok", "[[8]]", '{"score": 8}', ""),
        ("k2", "single", "openai:m", "r/en/1", "failed", None, None, None),
    )
    with store.JudgmentStore(old) as judgments:
        assert judgments.get("k1") == store.Judgment(
            "k1", "single", "openai:m", "r/en/0", "ok", "[[8]]", {"score": 8}
        )
        assert judgments.get("k2").raw == "" and judgments.get("k2").reason == ""
        assert judgments.done("k1") and not judgments.done("k2")
        judgments.put(store.Judgment("k3", "pairwise", "j", "r/en/2", "invalid", "?", None, "x"))
        assert [j.key for j in judgments.all("single")] == ["k1", "k2"]
        assert judgments.counts() == {"ok": 1, "invalid": 1, "failed": 1} and len(judgments) == 3
    with sqlite3.connect(old) as db:
        query = "SELECT parsed, raw FROM judgments WHERE key='k1'"
        assert db.execute(query).fetchone() == ('{"score": 8}', "[[8]]")
    db.close()
    new = tmp_path / "new.sqlite"
    store.JudgmentStore(new).close()
    assert columns(new, "judgments") == columns(old, "judgments")


def test_translation_files_written_before_read_and_write_as_they_were(tmp_path):
    row = ("k1", "ok", "Hallo", "", 1, "openai", "m", "chat:1", "en", "de", "Hello")
    old = old_file(tmp_path / "old.sqlite", OLD_TRANSLATIONS, "translations", row)
    with translate_cache.TranslationCache(old) as cache:
        assert cache.get("k1") == translate_cache.Entry("k1", "ok", "Hallo", "", 1)
        assert cache.get("k2") is None
        cache.put(translate_cache.Entry("k2", "rejected", "x", "too long", 2), source="Hi")
        assert len(cache) == 2
    with sqlite3.connect(old) as db:
        query = "SELECT source, attempts, model FROM translations WHERE key='k2'"
        assert db.execute(query).fetchone() == ("Hi", 2, "")
    db.close()
    new = tmp_path / "new.sqlite"
    translate_cache.TranslationCache(new).close()
    assert columns(new, "translations") == columns(old, "translations")


def test_records_are_json_values_kept_per_column(tmp_path):
    with sqlite_cache.Cache(tmp_path / "n.sqlite", NOTES) as cache:
        cache.put("a", {"text": "één", "n": 3, "extra": {"list": [1, "x"], "none": None}})
        cache.put("b", {"text": "b"})
        assert cache.get("a") == {"text": "één", "n": 3, "extra": {"list": [1, "x"], "none": None}}
        assert cache.get("b") == {"text": "b", "n": None, "extra": None}
        assert cache.items(n=3) == [("a", cache.get("a"))]
        with pytest.raises(ValueError, match="no field 'nope'"):
            cache.put("c", {"nope": 1})
        with pytest.raises(ValueError, match="not stored as JSON"):
            cache.put("c", {"text": ["a"]})
        with pytest.raises(ValueError, match="no field 'nope'"):
            cache.items(nope=1)


def test_a_finished_cache_is_read_without_writing_to_its_folder(tmp_path):
    folder = tmp_path / "judge"
    with sqlite_cache.Cache(folder / "n.sqlite", NOTES) as cache:
        cache.put("a", {"text": "a", "extra": {"k": 1}})
    before = sorted(os.listdir(folder)), folder.stat().st_mtime_ns
    rows = sqlite_cache.read_finished(folder / "n.sqlite", NOTES)
    assert rows == [("a", {"text": "a", "n": None, "extra": {"k": 1}})]
    assert (sorted(os.listdir(folder)), folder.stat().st_mtime_ns) == before
    other = dataclasses.replace(NOTES, name="other")
    assert sqlite_cache.read_finished(folder / "n.sqlite", other) == []  # no such table yet
    (folder / "bad.sqlite").write_text("not a database")
    with pytest.raises(DataError, match=r"bad\.sqlite: not a usable"):
        sqlite_cache.read_finished(folder / "bad.sqlite", NOTES)


def test_a_file_whose_table_lacks_a_column_is_named(tmp_path):
    path = tmp_path / "n.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (key TEXT PRIMARY KEY, text TEXT)")
    db.close()
    with pytest.raises(DataError, match=r"n.sqlite: not a usable note cache \(.*column n\)"):
        sqlite_cache.Cache(path, NOTES)


def test_threads_share_one_cache(tmp_path):
    with sqlite_cache.Cache(tmp_path / "n.sqlite", NOTES) as cache:

        def write(t):
            for i in range(50):
                cache.put(f"{t}/{i}", {"text": str(i), "n": t})
                assert cache.get(f"{t}/{i}")["n"] == t

        threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache) == 400


WRITER = """
import sys
from polyglot_jax.clients import sqlite_cache
columns = (("text", "TEXT"), ("n", "INTEGER"), ("extra", "TEXT"))
table = sqlite_cache.Table("notes", columns, "note cache", "note")
with sqlite_cache.Cache(sys.argv[1], table) as cache:
    for i in range(200):
        cache.put(f"{sys.argv[2]}/{i}", {"text": "x" * 100, "n": i})
"""


def test_processes_write_one_file_at_once(tmp_path):
    path = tmp_path / "n.sqlite"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(p)]) for p in range(4)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * 4
    with sqlite_cache.Cache(path, NOTES) as cache:
        assert len(cache) == 800


def test_the_lock_keeps_a_second_process_out_and_names_the_first(tmp_path):
    db = tmp_path / "c.sqlite"
    with translate_cache.exclusive(db):
        holder = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from polyglot_jax.evaluation.judges import store\n"
                "try:\n  store.exclusive(sys.argv[1]).__enter__()\n"
                "except Exception as e:\n  print(type(e).__name__, e)",
                str(db),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        with pytest.raises(BusyError, match="in use by another judge process"):
            store.exclusive(db).__enter__()
    assert holder.stdout.strip() == (
        f"BusyError {db} is in use by another judge process (pid {os.getpid()}); wait for it or "
        "use another --db"
    )
    with store.exclusive(db):  # free again
        pass
