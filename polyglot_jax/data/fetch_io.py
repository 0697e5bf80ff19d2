"""The download and write steps of ``data fetch``: one :class:`Fetcher` per data folder.

:meth:`Fetcher.load` reads one pinned source through Hugging Face ``datasets``;
:meth:`Fetcher.job` writes the files made from it atomically and then a marker listing them and
the languages absent from the download, or skips them when they are all present or the marker
says the job is done (so a killed fetch resumes and a repeated one downloads nothing).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import socket
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence

from polyglot_jax import storage
from polyglot_jax.data.fetch_sources import UNPINNED, Source
from polyglot_jax.errors import ConfigError, DataError, MissingFileError

log = logging.getLogger(__name__)

Files = dict[str, str]  # file relative to the data folder -> its text


@dataclasses.dataclass
class Row:
    """One line of the fetch summary."""

    file: str
    lines: int
    status: str  # "written" or "present"


@dataclasses.dataclass
class Fetcher:
    """Downloads sources and writes files under one data folder.

    Attributes:
      data_dir: the data folder (local or ``gs://``).
      cache_dir: the ``datasets`` cache (None: its default, ``$HF_HOME``).
      identifier: language identifier for datasets split by ``data tag`` (Guanaco).
      threshold: the tagging confidence threshold (None: the dataset's own).
      progress: show progress bars.
    """

    data_dir: str | os.PathLike
    cache_dir: str | None = None
    identifier: object | None = None
    threshold: float | None = None
    progress: bool = True
    rows: list[Row] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        check_writable_folder("--data_dir", self.data_dir)
        if self.cache_dir is not None:
            check_writable_folder("--cache_dir", self.cache_dir)

    def path(self, rel: str) -> os.PathLike:
        return storage.as_path(self.data_dir) / rel

    def load(self, src: Source, **values: str) -> list[dict]:
        """The rows of one source file (or glob) at its pinned revision."""
        import datasets

        url = src.url(**values)
        shown = src.label(**values)
        log.info("downloading %s", shown)
        if src.revision == UNPINNED:
            log.warning(
                "%s: no commit of %s could be checked, so this reads its default branch; a later "
                "fetch may get other data",
                shown,
                src.repo,
            )
        if not self.progress:
            datasets.disable_progress_bars()
        kwargs = {"field": src.field} if src.field else {}
        try:
            ds = datasets.load_dataset(
                src.builder, data_files=url, split="train", cache_dir=self.cache_dir, **kwargs
            )
        except Exception as e:  # only the download is in the try: network, format, access
            unreachable = _unreachable(url)
            if unreachable is not None:
                raise DataError(
                    f"{shown}: the source could not be reached ({unreachable}); check the "
                    f"network connection or proxy and fetch again (finished files are kept)"
                ) from None
            if isinstance(e, FileNotFoundError):
                raise MissingFileError(f"{shown}: not found ({_first_line(e)})") from None
            reason = f"{type(e).__name__}: {_first_line(e)}"
            raise DataError(f"{shown}: could not be downloaded or read ({reason})") from e
        return list(ds)

    def job(
        self,
        key: str,
        outputs: Sequence[str] | Mapping[str, str],
        produce: Callable[[], Files],
    ) -> None:
        """Writes ``produce()``'s files unless the job ``key`` is done.

        A job is done when every one of ``outputs`` exists, or when its marker
        (:meth:`marker`) lists every file it wrote as present and every output it did not
        write as absent from the download (a language the source has no data for), so a
        second fetch downloads nothing.

        Args:
          key: the job, a path in the data folder (``aya/test``); its marker is
            ``aya/.test.done``.
          outputs: the files the job may write, or a mapping from a label (the language)
            to each file; labels name what is absent in the log and the marker.
          produce: makes the files (downloads and converts).
        """
        outputs = dict(outputs) if isinstance(outputs, Mapping) else {rel: rel for rel in outputs}
        if outputs and self._done(key, outputs):
            for rel in outputs.values():
                if self.path(rel).exists():
                    log.info("%s is present: skipped", rel)
                    self.rows.append(Row(rel, _count_lines(self.path(rel)), "present"))
            return
        written = []
        for rel, text in produce().items():
            storage.write_atomic(self.path(rel), text)
            lines = text.count("\n") if rel.endswith(".jsonl") else 1
            log.info("wrote %s (%d lines)", rel, lines)
            self.rows.append(Row(rel, lines, "written"))
            written.append(rel)
        absent = [label for label, rel in outputs.items() if not self.path(rel).exists()]
        if absent:
            log.warning(
                "%s: no data for %s in the download (recorded in %s: not downloaded again)",
                key,
                ", ".join(absent),
                self.marker(key),
            )
        # What an earlier fetch of other languages recorded stays recorded.
        files, was_absent = self._read_marker(key) or ([], [])
        asked = set(outputs.values())
        files = [rel for rel in files if rel not in asked and self.path(rel).exists()]
        was_absent = [label for label in was_absent if label not in outputs]
        done = {"files": files + written, "absent": was_absent + absent}
        storage.write_json(self.path(self.marker(key)), done)

    @staticmethod
    def marker(key: str) -> str:
        """The marker of job ``key`` (``aya/test`` -> ``aya/.test.done``), in the data folder."""
        folder, _, name = key.rpartition("/")
        return f"{folder}/.{name}.done" if folder else f".{name}.done"

    def _read_marker(self, key: str) -> tuple[list[str], list[str]] | None:
        """The files a done job wrote and the labels it found absent; None when not done."""
        path = self.path(self.marker(key))
        if not path.exists():
            return None
        try:
            done = json.loads(path.read_text())
            return [str(rel) for rel in done["files"]], [str(x) for x in done["absent"]]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable marker, fetching again", self.marker(key))
            return None

    def _done(self, key: str, outputs: Mapping[str, str]) -> bool:
        """Every output is present, or recorded by the marker as absent from the download (a
        lost file that the marker lists is not absent, so it is made again)."""
        if all(self.path(rel).exists() for rel in outputs.values()):
            return True
        marker = self._read_marker(key)
        if marker is None:
            return False
        absent = set(marker[1])
        return all(label in absent or self.path(rel).exists() for label, rel in outputs.items())


def check_writable_folder(flag: str, folder: str | os.PathLike) -> None:
    """Makes sure a local ``folder`` exists (created if needed) and can be written to.

    A ``gs://`` folder is not checked: it has no permissions to read before writing.

    Raises:
      ConfigError: ``folder`` is a file, cannot be created or is not writable (names ``flag``).
    """
    if not storage.is_local(storage.as_path(folder)):
        return
    path = pathlib.Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{flag} {path}: cannot be created ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: not writable")


def _unreachable(url: str) -> str | None:
    """Why the host of a remote ``url`` cannot be reached; None when it can (or is local).

    ``datasets`` reports a host it cannot reach as a missing file ("Unable to find ..."), so a
    failed download asks the host itself before calling a file missing.
    """
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "hf":
        if any(os.environ.get(v, "").lower() in ("1", "true") for v in _OFFLINE):
            return (
                "offline mode is set (" + ", ".join(v for v in _OFFLINE if os.environ.get(v)) + ")"
            )
        url = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    elif scheme not in ("http", "https"):
        return None
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as e:
        return f"{host}: {e.strerror or type(e).__name__}"
    return None


_OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _count_lines(path: os.PathLike) -> int:
    with storage.as_path(path).open("rb") as f:
        return sum(1 for _ in f)


def jsonl(records: Iterable[dict]) -> str:
    """Records as JSON lines (UTF-8 kept)."""
    return "".join(json.dumps(r, ensure_ascii=False, default=_jsonable) + "\n" for r in records)


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "tolist"):  # numpy arrays and scalars from Parquet
        return value.tolist()
    return str(value)  # timestamps


def staged(rows: Sequence[dict], name: str, folder: str, as_list: bool = False) -> pathlib.Path:
    """Rows written to ``folder/name`` as JSON lines (or one JSON list) for a reader."""
    path = pathlib.Path(folder) / name
    text = json.dumps(rows, ensure_ascii=False, default=_jsonable) if as_list else jsonl(rows)
    path.write_text(text, encoding="utf-8")
    return path


def with_tmp(produce: Callable[[str], Files]) -> Callable[[], Files]:
    """``produce(folder)`` run with a temporary folder for staged rows."""

    def run() -> Files:
        with tempfile.TemporaryDirectory(prefix="polyglot-fetch-") as folder:
            return produce(folder)

    return run
