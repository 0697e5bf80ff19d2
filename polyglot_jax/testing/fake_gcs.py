"""A local stand-in for Google Cloud Storage, so ``gs://`` run directories are tested offline.

``install(root)`` routes ``gs://BUCKET/KEY`` to the file ``root/BUCKET/KEY`` for the two clients a
run uses: ``etils.epath`` (through its fsspec backend) and orbax's tensorstore ``gcs`` driver
(through an HTTP server on 127.0.0.1 that speaks the parts of the GCS JSON API tensorstore uses:
object reads with ranges, uploads, deletes, listings and generation preconditions). Everything
above those two clients runs unchanged, so a test exercises the same code path as a real bucket.

It changes process-wide settings (environment variables, fsspec registrations): use it in a
process of its own. TensorFlow's own GCS client (TensorBoard event files) is not redirected.
"""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import threading
import urllib.parse
from typing import Any

import fsspec
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem


class _BucketFileSystem(DirFileSystem):
    """fsspec ``gs``/``gcs`` protocol over a local folder (one sub-folder per bucket)."""

    protocol = ("gs", "gcs")
    root = ""
    cachable = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("finalize_on_close", None)  # an option of gcsfs that epath passes
        super().__init__(path=self.root, fs=LocalFileSystem(), **kwargs)


def _object(bucket: str, name: str, path: str) -> dict[str, str]:
    stat = os.stat(path)
    return {
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "size": str(stat.st_size),
        "generation": str(stat.st_mtime_ns),
        "metageneration": "1",
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    """The GCS JSON API calls of tensorstore's ``gcs`` driver, on files under ``root``."""

    protocol_version = "HTTP/1.1"
    root = ""

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any = b"", headers: tuple = ()) -> None:
        content_type = "application/octet-stream"
        if isinstance(body, dict):
            body, content_type = json.dumps(body).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _target(self) -> tuple[str, str | None, dict[str, str]]:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = url.path.split("/")  # '', [upload,] storage, v1, b, BUCKET, o, [OBJECT]
        if parts[1] == "upload":
            parts = parts[1:]
        bucket = urllib.parse.unquote(parts[4])
        name = urllib.parse.unquote("/".join(parts[6:])) if len(parts) > 6 else None
        return bucket, name, query

    def _preconditions_hold(self, path: str, query: dict[str, str]) -> bool:
        generation = str(os.stat(path).st_mtime_ns) if os.path.isfile(path) else "0"
        if "ifGenerationMatch" in query and query["ifGenerationMatch"] != generation:
            return False
        return query.get("ifGenerationNotMatch") != generation

    def do_GET(self) -> None:
        bucket, name, query = self._target()
        base = os.path.join(self.root, bucket)
        if not name:  # listing
            prefix, start = query.get("prefix", ""), query.get("startOffset", "")
            end = query.get("endOffset")
            items = []
            for folder, _, files in os.walk(base):
                for file in files:
                    full = os.path.join(folder, file)
                    key = os.path.relpath(full, base)
                    if key.startswith(prefix) and key >= start and (end is None or key < end):
                        items.append(_object(bucket, key, full))
            items.sort(key=lambda item: item["name"])
            return self._send(200, {"kind": "storage#objects", "items": items})
        path = os.path.join(base, name)
        if not os.path.isfile(path):
            return self._send(404, {"error": {"code": 404, "message": "No such object"}})
        if not self._preconditions_hold(path, query):
            return self._send(304 if "ifGenerationNotMatch" in query else 412)
        if query.get("alt") != "media":
            return self._send(200, _object(bucket, name, path))
        data = pathlib.Path(path).read_bytes()
        headers = [("x-goog-generation", str(os.stat(path).st_mtime_ns))]
        byte_range = self.headers.get("Range")
        if not byte_range:
            return self._send(200, data, tuple(headers))
        first, last = byte_range.split("=")[1].split("-")
        if first == "":  # the last N bytes
            first, last = str(max(0, len(data) - int(last))), str(len(data) - 1)
        lo, hi = int(first), int(last) if last else len(data) - 1
        headers.append(("Content-Range", f"bytes {lo}-{min(hi, len(data) - 1)}/{len(data)}"))
        return self._send(206, data[lo : hi + 1], tuple(headers))

    do_HEAD = do_GET  # noqa: N815 (the name http.server calls)

    def do_POST(self) -> None:
        bucket, _, query = self._target()
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = os.path.join(self.root, bucket, query["name"])
        if not self._preconditions_hold(path, query):
            return self._send(412, {"error": {"code": 412}})
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.upload-{threading.get_ident()}"
        pathlib.Path(tmp).write_bytes(data)
        os.replace(tmp, path)
        return self._send(200, _object(bucket, query["name"], path))

    def do_DELETE(self) -> None:
        bucket, name, query = self._target()
        path = os.path.join(self.root, bucket, name or "")
        if not os.path.isfile(path):
            return self._send(404, {"error": {"code": 404}})
        if not self._preconditions_hold(path, query):
            return self._send(412, {"error": {"code": 412}})
        os.remove(path)
        return self._send(204)


def install(root: str | os.PathLike) -> http.server.ThreadingHTTPServer:
    """Routes this process's ``gs://`` paths to ``root``; call before any ``gs://`` use.

    Returns:
      The running HTTP server (a daemon thread; it ends with the process).
    """
    root = os.path.abspath(root)
    os.makedirs(root, exist_ok=True)
    os.environ["EPATH_USE_TF"] = "false"  # epath: fsspec instead of tf.io.gfile for gs://
    _BucketFileSystem.root = root
    for protocol in ("gs", "gcs"):
        fsspec.register_implementation(protocol, _BucketFileSystem, clobber=True)
    handler = type("Handler", (_Handler,), {"root": root})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["TENSORSTORE_GCS_HTTP_URL"] = f"http://127.0.0.1:{server.server_port}"
    os.environ["GOOGLE_AUTH_TOKEN_FOR_TESTING"] = "fake-token"
    from orbax.checkpoint._src.path import gcs_utils

    # A real bucket answers whether it has a hierarchical namespace; this one has none.
    gcs_utils.is_hierarchical_namespace_enabled = lambda path: False
    return server
