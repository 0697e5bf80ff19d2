"""What a study stage's gin files bind, read without configuring gin.

The plan gives a command-line binding (``--gin.NAME=VALUE``) to the stages whose files bind
``NAME`` (:func:`takes`) and reads values the files set (:func:`macro_value`).
"""

from __future__ import annotations

import ast
import functools
from typing import Any

from polyglot_jax import gin_utils


def binding_name(binding: str) -> str:
    """``NAME`` of a ``NAME=VALUE`` binding."""
    return binding.partition("=")[0].strip()


@functools.cache
def bound_keys(files: tuple[str, ...]) -> frozenset[str]:
    """Every key the gin ``files`` (with their includes) bind: macros and ``fn.param``."""
    expanded = gin_utils.expand(list(files), gin_utils.default_search_paths())
    return frozenset(key for gin_file in expanded for key, _, _ in gin_file.bindings)


def _configurable(key: str) -> str | None:
    key = key.rsplit("/", 1)[-1]  # without its scope
    return key.rsplit(".", 1)[0] if "." in key else None


def takes(keys: set[str] | frozenset[str], name: str) -> bool:
    """Whether a stage whose files bind ``keys`` takes a binding of ``name``: a macro or
    parameter they bind, or another parameter of a configurable they bind."""
    configurable = _configurable(name)
    return name in keys or (
        configurable is not None and any(_configurable(k) == configurable for k in keys)
    )


def macro_value(gin_file: str, macro: str, default: Any = KeyError) -> Any:
    """The value a gin file (with its includes) binds ``macro`` to, without configuring gin.

    Raises:
      KeyError: no file binds it and no default is given.
    """
    files = gin_utils.expand([gin_file], gin_utils.default_search_paths())
    value = default
    for gin_file_ in files:
        for key, text, _ in gin_file_.bindings:
            if key == macro:
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    value = default
    if value is KeyError:
        raise KeyError(f"{gin_file} does not bind {macro}")
    return value
