"""T5X-style gin command lines: ``--gin_file``, ``--gin_search_paths`` and ``--gin.NAME=VALUE``.

``--gin.MODEL_DIR=\\"/ckpt\\"`` becomes the binding ``MODEL_DIR = "/ckpt"``; files are found
in the search paths (the working directory and the installed ``gin_configs/`` by default).
Errors in files, bindings or missing required macros become one-line :class:`GinError`\\ s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import importlib.resources
import logging
import os
import pathlib
import re
import tokenize
from collections.abc import Iterator, Sequence
from typing import NoReturn

import gin
from etils import epath
from gin import config as gin_config
from gin import config_parser

from polyglot_jax.errors import ConfigError

log = logging.getLogger(__name__)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` whose flag errors are :class:`ConfigError`\\ s: one ``error:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message}")


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


_REQUIRED = re.compile(r"^(\w+)/macro\.value set to `%gin\.REQUIRED`")

# Macros that a run needs and a shipped file provides when no given file binds them. Using a
# default is logged, never silent.
DEFAULT_FILES = {"MODEL_CONFIG": "models/tiny.gin"}


def _find(path: str, roots: Sequence[str]) -> pathlib.Path | None:
    """The first regular file ``root/path`` (a folder of the same name does not count)."""
    if pathlib.Path(path).is_absolute():
        return pathlib.Path(path) if pathlib.Path(path).is_file() else None
    for root in roots:
        candidate = pathlib.Path(root) / path
        if candidate.is_file():
            return candidate
    return None


def _resolve(path: str, search_paths: Sequence[str]) -> pathlib.Path:
    found = _find(path, search_paths)
    if found is None:
        if pathlib.Path(path).is_absolute():
            raise GinError(f"gin file {path} does not exist")
        raise GinError(f"gin file {path!r} not found in search paths {list(search_paths)}")
    return found


class _Statements(config_parser.ParserDelegate):
    """Parses a gin file into statements without resolving references or macros."""

    def configurable_reference(self, scoped_name: str, evaluate: bool) -> str:
        return f"@{scoped_name}{'()' if evaluate else ''}"

    def macro(self, name: str) -> str:
        return f"%{name}"


@dataclasses.dataclass
class GinFile:
    """A gin file as it will be parsed: its statements and who brought it in.

    Attributes:
      name: the name it was given or included by.
      path: where it was found.
      origin: the command-line file (or default) whose includes reached it.
      includes: resolved paths of the files it includes.
      bindings: ``(key, value text, line)`` of its bindings, in order.
      text: its text with ``include`` lines blanked (includes are parsed once, separately).
    """

    name: str
    path: pathlib.Path
    origin: str
    includes: list[pathlib.Path]
    bindings: list[tuple[str, str, int]]
    text: str


def _read(name: str, path: pathlib.Path, origin: str, search_paths: Sequence[str]) -> GinFile:
    text = path.read_text(encoding="utf-8")
    try:
        statements = list(config_parser.ConfigParser(text, _Statements()))
    except SyntaxError as e:
        raise GinError(f"gin: {path}:{e.lineno}: {e.msg}") from None
    except tokenize.TokenError as e:
        raise GinError(f"gin: {path}:{e.args[1][0]}: {e.args[0]}") from None
    lines = text.split("\n")
    includes, bindings = [], []
    for st in statements:
        if isinstance(st, config_parser.IncludeStatement):
            roots = [str(path.parent), *search_paths]
            found = _find(st.filename, roots)
            if found is None:
                raise GinError(
                    f"gin: {path}:{st.location.line_num}: include {st.filename!r} not found in "
                    f"{roots}"
                )
            includes.append(found.resolve())
            lines[st.location.line_num - 1] = ""
        elif isinstance(st, config_parser.BindingStatement):
            key = "/".join(
                filter(None, [st.scope, ".".join(filter(None, [st.selector, st.arg_name]))])
            )
            bindings.append((key, repr(st.value), st.location.line_num))
    return GinFile(name, path, origin, includes, bindings, "\n".join(lines))


def expand(files: Sequence[str], search_paths: Sequence[str]) -> list[GinFile]:
    """Command-line files with their includes, each file once, included files first.

    A file included by several others (``runs/finetune.gin`` by ``mix_pinch.gin`` and
    ``runs/lora.gin``) is parsed once, before the first file that includes it, so a later
    include cannot reset what an earlier file set.
    """
    ordered: list[GinFile] = []
    seen: set[pathlib.Path] = set()

    def visit(name: str, path: pathlib.Path, origin: str, stack: tuple[pathlib.Path, ...]) -> None:
        key = path.resolve()
        if key in stack:
            raise GinError(f"gin: {path} includes itself (through {' -> '.join(map(str, stack))})")
        if key in seen:
            return
        gin_file = _read(name, path, origin, search_paths)
        for included in gin_file.includes:
            visit(str(included), included, origin, (*stack, key))
        seen.add(key)
        ordered.append(gin_file)

    for name in files:
        visit(name, _resolve(name, search_paths), name, ())
    return ordered


def _includes_transitively(files: Sequence[GinFile]) -> dict[pathlib.Path, set[pathlib.Path]]:
    direct = {f.path.resolve(): set(f.includes) for f in files}
    closure: dict[pathlib.Path, set[pathlib.Path]] = {}

    def reach(path: pathlib.Path) -> set[pathlib.Path]:
        if path not in closure:
            closure[path] = set()
            for child in direct.get(path, ()):
                closure[path] |= {child, *reach(child)}
        return closure[path]

    for path in direct:
        reach(path)
    return closure


def check_conflicts(files: Sequence[GinFile]) -> None:
    """Refuses two files that set one binding to different values unless one includes the other.

    A file may override what the files it includes set (``llama2_7b.gin`` over
    ``llama2_base.gin``); two unrelated files that disagree would make the result depend on
    their order on the command line.

    Raises:
      GinError: naming the binding, both files and both values.
    """
    closure = _includes_transitively(files)
    first: dict[str, tuple[str, GinFile, int]] = {}
    for gin_file in files:
        for key, value, line in gin_file.bindings:
            if key not in first:
                first[key] = (value, gin_file, line)
                continue
            old_value, old_file, old_line = first[key]
            overrides = old_file.path.resolve() in closure[gin_file.path.resolve()]
            if old_value != value and not overrides and old_value != "%gin.REQUIRED":
                raise GinError(
                    f"gin: {key} is set to {old_value} by {old_file.path}:{old_line} and to "
                    f"{value} by {gin_file.path}:{line}; the result would depend on file order: "
                    f"pass one of them, include the file you override, or set --gin.{key}=..."
                )
            first[key] = (value, gin_file, line)


def _macros(files: Sequence[GinFile]) -> tuple[set[str], set[str]]:
    bound = {key for f in files for key, _, _ in f.bindings}
    used = {
        name
        for f in files
        for _, value, _ in f.bindings
        for name in re.findall(r"%([A-Za-z_]\w*)", value)
    }
    return bound, used - {"gin"}


def check_macros(files: Sequence[GinFile], bindings: Sequence[str]) -> None:
    """Refuses a ``--gin.NAME=...`` macro that none of the gin files binds (a typo).

    Gin accepts any new macro silently, so ``--gin.BATCH_SIZ=8`` would otherwise be ignored.

    Raises:
      GinError: names the unknown macro and the closest known one.
    """
    known = {key for f in files for key, _, _ in f.bindings if "." not in key and "/" not in key}
    for binding in bindings:
        name = binding.partition("=")[0].strip()
        if files and name.isidentifier() and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            shown = ", ".join(f.name for f in files if f.name == f.origin)
            raise GinError(f"unknown gin macro {name}: {shown} does not define it{hint}")


def _macro_of(default_file: str) -> str:
    return next(m for m, f in DEFAULT_FILES.items() if f == default_file)


def configure(args: GinArgs, finalize: bool = True) -> list[GinFile]:
    """Clears gin and parses ``args``'s files (each once) and bindings.

    A macro that the files use but none binds, and that has a default file
    (:data:`DEFAULT_FILES`), gets that file, with a log line saying so.

    Returns:
      The parsed files in order.

    Raises:
      GinError: one line naming the file, binding or required macro at fault.
    """
    search_paths = [*args.search_paths, *default_search_paths()]
    gin.clear_config()
    files = expand(args.files, search_paths)
    bound, used = _macros(files)
    defaults = [DEFAULT_FILES[m] for m in sorted(used - bound) if m in DEFAULT_FILES and args.files]
    if defaults:
        default_files = expand(defaults, search_paths)
        for name in defaults:
            log.warning("no gin file sets %s: using the default %s", _macro_of(name), name)
        taken = {d.path.resolve() for d in default_files}
        files = default_files + [f for f in files if f.path.resolve() not in taken]
    check_conflicts(files)
    check_macros(files, args.bindings)
    quiet = _DropMissedSearchPaths()
    logging.getLogger().addFilter(quiet)
    try:
        for gin_file in files:
            gin.parse_config(gin_file.text, skip_unknown=False)
        for binding in args.bindings:
            try:
                gin.parse_config(binding, skip_unknown=False)
            except tokenize.TokenError:
                raise GinError(f"gin: binding {binding!r} is not complete") from None
        if finalize:
            gin.finalize()
    except (ValueError, SyntaxError, KeyError, ImportError, TypeError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        match = _REQUIRED.match(message)
        if match:
            macro = match.group(1)
            raise GinError(f"gin macro {macro} is required: pass --gin.{macro}=...") from None
        raise GinError(f"gin: {message}") from None
    finally:
        logging.getLogger().removeFilter(quiet)
    return files


class _DropMissedSearchPaths(logging.Filter):
    """Gin logs every search path an ``include`` misses before it finds the file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Path not found:")


def write_config(model_dir: str | os.PathLike) -> epath.Path:
    """Writes the operative gin config to ``MODEL_DIR/config.gin`` (atomically; local or gs://)."""
    path = epath.Path(os.fspath(model_dir)) / "config.gin"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".config.gin.tmp-{os.getpid()}"
    tmp.write_text(gin.operative_config_str(), encoding="utf-8")
    tmp.replace(path)
    return path


@contextlib.contextmanager
def isolated_config() -> Iterator[None]:
    """A block whose gin parsing and bindings are undone when it ends, however it ends.

    For reading what a set of gin files binds (the study plan reads a run's
    :class:`~polyglot_jax.training.config.TrainConfig`) in a process whose own gin config must
    stay as it was. Gin keeps one global config and has no public way to save it, so this
    copies its tables (bindings, imported modules, operative config, singletons and the lock)
    and puts them back. Modules the block imported stay imported, as any import does.
    """
    bindings = {key: dict(values) for key, values in gin_config._CONFIG.items()}
    operative = {key: dict(values) for key, values in gin_config._OPERATIVE_CONFIG.items()}
    imports = set(gin_config._IMPORTS)
    singletons = dict(gin_config._SINGLETONS)
    locked = gin_config._CONFIG_IS_LOCKED
    try:
        yield
    finally:
        gin_config._CONFIG.clear()
        gin_config._CONFIG.update(bindings)
        with gin_config._OPERATIVE_CONFIG_LOCK:
            gin_config._OPERATIVE_CONFIG.clear()
            gin_config._OPERATIVE_CONFIG.update(operative)
        gin_config._IMPORTS.clear()
        gin_config._IMPORTS.update(imports)
        gin_config._SINGLETONS.clear()
        gin_config._SINGLETONS.update(singletons)
        gin_config._set_config_is_locked(locked)
