"""T5X-style gin command lines: ``--gin_file``, ``--gin_search_paths`` and ``--gin.NAME=VALUE``.

``--gin.MODEL_DIR=\\"/ckpt\\"`` becomes the binding ``MODEL_DIR = "/ckpt"``; files are found
in the search paths (the working directory and the installed ``gin_configs/`` by default).
Errors in files, bindings or missing required macros become one-line :class:`GinError`\\ s.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import pathlib
import re
from collections.abc import Sequence

import gin

from polyglot_jax.errors import ConfigError


class GinError(ConfigError):
    """A gin file or binding that cannot be used; the message names it."""


@dataclasses.dataclass
class GinArgs:
    """Gin flags taken out of a command line.

    Attributes:
      files: ``--gin_file`` values, in order.
      bindings: bindings from ``--gin.NAME=VALUE`` and ``--gin_bindings``, in order.
      search_paths: ``--gin_search_paths`` entries (comma separated, repeatable).
      rest: the other arguments, untouched.
    """

    files: list[str] = dataclasses.field(default_factory=list)
    bindings: list[str] = dataclasses.field(default_factory=list)
    search_paths: list[str] = dataclasses.field(default_factory=list)
    rest: list[str] = dataclasses.field(default_factory=list)


def default_search_paths() -> list[str]:
    """The working directory, then the ``gin_configs`` folder shipped with the project."""
    return [".", str(importlib.resources.files("gin_configs"))]


def parse_args(argv: Sequence[str]) -> GinArgs:
    """Splits gin flags from other arguments (``--flag=value`` and ``--flag value`` forms)."""
    out = GinArgs()
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        takes = name in ("--gin_file", "--gin_search_paths", "--gin_bindings")
        if takes and not eq:
            if i + 1 >= len(args):
                raise GinError(f"{name} needs a value")
            value, i = args[i + 1], i + 1
        if name == "--gin_file":
            out.files.append(value)
        elif name == "--gin_search_paths":
            out.search_paths.extend(p for p in value.split(",") if p)
        elif name == "--gin_bindings":
            out.bindings.append(value)
        elif name.startswith("--gin."):
            if not eq:
                raise GinError(f"{arg}: expected --gin.NAME=VALUE")
            out.bindings.append(f"{name[len('--gin.') :]} = {value}")
        else:
            out.rest.append(arg)
        i += 1
    return out


def _resolve(path: str, search_paths: Sequence[str]) -> str:
    if pathlib.Path(path).is_absolute():
        if pathlib.Path(path).exists():
            return path
        raise GinError(f"gin file {path} does not exist")
    for root in search_paths:
        candidate = pathlib.Path(root) / path
        if candidate.exists():
            return str(candidate)
    raise GinError(f"gin file {path!r} not found in search paths {list(search_paths)}")


_REQUIRED = re.compile(r"^(\w+)/macro\.value set to `%gin\.REQUIRED`")


def configure(args: GinArgs, finalize: bool = True) -> None:
    """Clears gin and parses ``args``'s files and bindings.

    Raises:
      GinError: one line naming the file, binding or required macro at fault.
    """
    search_paths = [*args.search_paths, *default_search_paths()]
    gin.clear_config()
    for root in search_paths:
        gin.add_config_file_search_path(root)
    files = [_resolve(f, search_paths) for f in args.files]
    quiet = _DropMissedSearchPaths()
    logging.getLogger().addFilter(quiet)
    try:
        gin.parse_config_files_and_bindings(
            files, args.bindings, finalize_config=finalize, skip_unknown=False
        )
    except (ValueError, SyntaxError, KeyError, ImportError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        match = _REQUIRED.match(message)
        if match:
            macro = match.group(1)
            raise GinError(f"gin macro {macro} is required: pass --gin.{macro}=...") from None
        raise GinError(f"gin: {message}") from None
    finally:
        logging.getLogger().removeFilter(quiet)


class _DropMissedSearchPaths(logging.Filter):
    """Gin logs every search path an ``include`` misses before it finds the file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Path not found:")


def write_config(model_dir: str | pathlib.Path) -> pathlib.Path:
    """Writes the operative gin config to ``MODEL_DIR/config.gin`` and returns its path."""
    path = pathlib.Path(model_dir) / "config.gin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(gin.operative_config_str(), encoding="utf-8")
    return path
