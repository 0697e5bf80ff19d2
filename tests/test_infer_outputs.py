"""Inference output files: resume keeps every valid line, rewrites are atomic, one writer at a time.

Generation is replaced by a stub (empty responses), so these tests exercise only the files.
"""

import builtins
import errno
import io
import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from polyglot_jax.errors import BusyError
from polyglot_jax.inference import infer, output_files
from polyglot_jax.runtime import decoding
from polyglot_jax.runtime.chat_model import ChatModel

REPO = pathlib.Path(__file__).resolve().parents[1]


class StubVocabulary:
    eos_id = 1

    def encode(self, text: str) -> list[int]:
        return [2, 3]

    def decode(self, tokens: list[int]) -> str:
        return "ok"


def stub_generate(model, params, prompts, *args, **kwargs) -> decoding.Generation:
    return decoding.Generation(tokens=[[] for _ in prompts], finish_reasons=["eos"] * len(prompts))


def records(n: int) -> list[dict]:
    return [
        {"id": f"p{i}", "lang": "fi", "messages": [{"role": "user", "content": f"q{i}"}]}
        for i in range(n)
    ]


def line(i: int, sample: int = 0) -> str:
    return json.dumps({"id": f"p{i}", "lang": "fi", "response": "old", "sample": sample})


def resume(path: pathlib.Path, n: int, **kwargs) -> int:
    model = ChatModel(None, None, StubVocabulary(), "guanaco")
    return infer.generate_records(model, records(n), path, **kwargs)


@pytest.fixture(autouse=True)
def _stub_generation(monkeypatch):
    monkeypatch.setattr(decoding, "generate", stub_generate)


def keys(path: pathlib.Path) -> list[tuple[str, int]]:
    return [(r["id"], r["sample"]) for r in map(json.loads, path.read_text().splitlines())]


def test_corrupt_line_in_the_middle_keeps_every_valid_line_after_it(tmp_path, caplog):
    path = tmp_path / "out.jsonl"
    lines = [line(i) for i in range(10)]
    lines[3] = '{"id": "p3", "resp'  # damaged on disk
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        assert resume(path, 10) == 1  # only the damaged record is generated again
    kept = path.read_text().splitlines()
    assert kept[:9] == lines[:3] + lines[4:]
    assert sorted(keys(path)) == sorted((f"p{i}", 0) for i in range(10))
    assert "dropped 1 corrupt lines (line 4); kept 9 valid records" in caplog.text


class FullDisk:
    """A file whose writes fail with ENOSPC once ``budget[0]`` bytes have been written."""

    def __init__(self, f, budget: list[int]) -> None:
        self._f, self._budget = f, budget

    def write(self, data):
        if len(data) > self._budget[0]:
            self._f.write(data[: self._budget[0]])
            self._budget[0] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._budget[0] -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def test_full_disk_during_resume_leaves_the_file_byte_identical(tmp_path, monkeypatch):
    path = tmp_path / "out.jsonl"
    original = "".join(line(i) + "\n" for i in range(2000)) + line(2000)[:25]  # cut last line
    path.write_text(original)
    budget = [len(original) // 2]
    real_open = builtins.open

    def failing_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        writing = any(c in mode for c in "wax+")
        inside = isinstance(file, str | os.PathLike) and str(tmp_path) in os.fspath(file)
        return FullDisk(f, budget) if writing and inside else f

    monkeypatch.setattr(builtins, "open", failing_open)
    monkeypatch.setattr(io, "open", failing_open)
    with pytest.raises(OSError) as raised:
        resume(path, 2010)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC
    assert path.read_text() == original
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left


def test_cut_last_line_resumes_with_one_record_per_id_and_sample(tmp_path):
    path = tmp_path / "out.jsonl"
    full = [line(i, s) for i in range(5) for s in range(2)]
    path.write_text("\n".join(full[:7]) + "\n" + full[7][:30])
    sampling = decoding.Sampling(temperature=0.5, num_samples=2)
    assert resume(path, 6, sampling=sampling) == 5  # p3/1, p4/0, p4/1, p5/0, p5/1
    text = path.read_text()
    assert text.endswith("\n") and text.splitlines()[:7] == full[:7]
    assert sorted(keys(path)) == sorted((f"p{i}", s) for i in range(6) for s in range(2))


def test_clean_file_is_appended_to_not_rewritten(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("".join(line(i) + "\n" for i in range(3)))
    inode = path.stat().st_ino
    assert resume(path, 5) == 2
    assert path.stat().st_ino == inode and len(keys(path)) == 5


KILL_CHILD = """
import sys
from polyglot_jax.runtime import decoding
from polyglot_jax.inference import infer
sys.path.insert(0, {tests!r})
import test_infer_outputs as t
decoding.generate = t.stub_generate
t.resume(__import__("pathlib").Path({path!r}), {n})
"""


def test_sigkill_while_resuming_a_large_file_keeps_every_valid_line(tmp_path):
    n = 200_000
    path = tmp_path / "out.jsonl"
    valid = [line(i) for i in range(n)]
    path.write_text("\n".join(valid) + "\n" + line(n)[:20])  # cut last line
    size = path.stat().st_size
    script = KILL_CHILD.format(tests=str(REPO / "tests"), path=str(path), n=n + 1)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO)
    deadline = time.time() + 120
    # Kill the child as soon as it starts writing anything in the folder.
    while time.time() < deadline and proc.poll() is None:
        if len(os.listdir(tmp_path)) > 1 or path.stat().st_size != size:
            break
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the child finished before it could be killed"
    assert set(valid) <= set(path.read_text().splitlines())

    assert resume(path, n + 1) == 1
    assert sorted(keys(path)) == sorted((f"p{i}", 0) for i in range(n + 1))
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # the killed temp file is gone


def test_merge_parts_skips_damaged_lines_and_writes_atomically(tmp_path):
    for index in range(2):
        part = tmp_path / output_files.part_name("x", index, 2)
        part.write_text("".join(line(i) + "\n" for i in range(index, 6, 2)) + "not json\n")
    target = output_files.merge_parts(tmp_path, "x", 2)
    assert [k for k, _ in keys(target)] == [f"p{i}" for i in range(6)]
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_second_lock_on_the_folder_is_busy(tmp_path):
    busy = rf"in use by another infer process \(pid {os.getpid()}\)"
    with output_files.locked(tmp_path), pytest.raises(BusyError, match=busy):
        output_files.locked(tmp_path).__enter__()
    with output_files.locked(tmp_path):  # released
        pass


LOCK_CHILD = """
import os, pathlib, sys, time
from polyglot_jax.runtime import decoding
from polyglot_jax.inference import infer
from polyglot_jax.training import runs
sys.path.insert(0, {tests!r})
import test_infer_outputs as t

def slow(*args, **kwargs):
    while os.environ.get("HOLD") and not pathlib.Path({go!r}).exists():
        time.sleep(0.05)
    return t.stub_generate(*args, **kwargs)

decoding.generate = slow
runs.load_model = lambda path, dtype=None: (None, None)
from polyglot_jax import cli
sys.exit(cli.main(["infer", "--gin_file=runs/infer.gin", *sys.argv[1:]]))
"""


def test_two_infer_processes_on_one_folder(tmp_path):
    run_dir, out_dir = tmp_path / "run", tmp_path / "out"
    run_dir.mkdir()
    (run_dir / "model_config.json").write_text("{}")  # the model itself is stubbed
    prompts = tmp_path / "test_fi.jsonl"
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": f"q{i}"}) + "\n" for i in range(120))
    )
    script = LOCK_CHILD.format(tests=str(REPO / "tests"), go=str(tmp_path / "go"))
    argv = [
        f'--gin.CHECKPOINT_PATH="{run_dir}"',
        '--gin.MIXTURE_OR_TASK_NAME="demo_uniform"',
        f'--gin.INFER_OUTPUT_DIR="{out_dir}"',
        f'--gin.PROMPT_FILES=["{prompts}"]',
        "--gin.BATCH_SIZE=8",
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(
        [sys.executable, "-c", script, *argv], env={**env, "HOLD": "1"}, cwd=REPO, text=True
    )
    lock = out_dir / ".lock"
    deadline = time.time() + 120
    while time.time() < deadline and first.poll() is None:
        if lock.exists() and lock.read_text().strip() == str(first.pid):
            break
        time.sleep(0.05)
    try:
        second = subprocess.run(
            [sys.executable, "-c", script, *argv],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        (tmp_path / "go").touch()
    assert first.wait(timeout=300) == 0
    assert second.returncode == 2, second.stderr[-2000:]
    assert second.stderr.strip().splitlines()[-1] == (
        f"error: {out_dir} is in use by another infer process (pid {first.pid}); wait for it "
        f"or pass another INFER_OUTPUT_DIR"
    )
    ids = [json.loads(x)["id"] for x in (out_dir / "test_fi.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(f"p{i}" for i in range(120))
