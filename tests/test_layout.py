"""The package layout: no import cycles, stages import only downward, short files, a small root.

Every module under ``polyglot_jax/`` and ``tasks/`` is parsed with :mod:`ast` (nothing is
imported). Imports anywhere in a module count: module level, inside functions, and
``importlib.import_module("literal")`` calls, since a lazy import is still a dependency.

Stages, lowest first; a module may import its own stage or a lower one:

  0  the package root's shared modules (languages, errors, gin_utils, storage)
  1  models
  2  data
  3  training
  4  runtime (a loaded ChatModel: decoding, beam search, placement on a mesh)
  4.2  clients (HTTP clients of chat and translation APIs, their spec and retry policy, the
       SQLite cache; a local model as a client)
  4.5  inference (the offline ``infer`` job) and serving (the OpenAI-protocol server)
  4.6  data.translate* (translation: a data tool beside ``data tag`` and ``data fetch`` that
       needs a client or a model, so it sits above them)
  5  evaluation
  6  launch, testing
  6.5  studies (grids of runs: train, infer, judge, benchmarks, report)
  7  cli and the ``python -m`` entry modules (train, infer, judge, report)

``tasks/`` (SeqIO registrations) sits just above data: it may import the root, models and data,
and stages from training up may import it.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "polyglot_jax"
MAX_LINES = 400
ROOT_FILES = {
    "__init__.py",
    "languages.py",
    "errors.py",
    "gin_utils.py",
    "storage.py",
    "train.py",
    "infer.py",
    "judge.py",
    "report.py",
}
TASKS_LAYER = 2.5  # above data, below training
TRANSLATE_LAYER = 4.6  # data.translate*: above clients and runtime, below evaluation
LAYERS: dict[str, float] = {
    PACKAGE: 0,
    "languages": 0,
    "errors": 0,
    "gin_utils": 0,
    "storage": 0,
    "models": 1,
    "data": 2,
    "training": 3,
    "runtime": 4,
    "clients": 4.2,
    "inference": 4.5,
    "serving": 4.5,
    "evaluation": 5,
    "launch": 6,
    "testing": 6,
    "studies": 6.5,
    "cli": 7,
    "train": 7,
    "infer": 7,
    "judge": 7,
    "report": 7,
}


@dataclasses.dataclass(frozen=True)
class Import:
    """One import of a project module: where it is written and what it names."""

    source: str  # importing module, e.g. "polyglot_jax.models.hf"
    path: str  # file relative to the repository root
    line: int
    target: str  # imported module, e.g. "polyglot_jax.models.hf_layout"

    def __str__(self) -> str:
        return f"{self.path}:{self.line} → {self.target}"


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    """Every project module by dotted name."""
    files = [*(ROOT / PACKAGE).rglob("*.py"), *(ROOT / "tasks").rglob("*.py")]
    return {_module_name(f): f for f in sorted(files) if "__pycache__" not in f.parts}


def _resolve(name: str, modules: dict[str, pathlib.Path]) -> str | None:
    """The project module that ``name`` (a module or a name inside one) refers to, if any."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names that one AST node imports (candidates: module or module.attribute)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        return [f"{base}.{alias.name}" for alias in node.names] or [base]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and getattr(node.func, "attr", getattr(node.func, "id", None))
        in ("import_module", "__import__")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


def collect_imports() -> list[Import]:
    """Every import of a project module by a project module, lazy ones included."""
    modules = _modules()
    found: set[Import] = set()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            for name in _imported_names(node, module, is_package):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    rel = str(path.relative_to(ROOT))
                    found.add(Import(module, rel, node.lineno, target))
    return sorted(found, key=lambda i: (i.path, i.line, i.target))


def find_cycle(imports: list[Import]) -> list[Import] | None:
    """One import cycle between modules, as the imports that form it, or None."""
    graph: dict[str, list[Import]] = {}
    for imp in imports:
        graph.setdefault(imp.source, []).append(imp)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Import] = []

    def visit(module: str) -> list[Import] | None:
        state[module] = 1
        for imp in graph.get(module, []):
            if state.get(imp.target) == 1:
                start = next(k for k, step in enumerate(path) if step.source == imp.target)
                return [*path[start:], imp]
            if imp.target not in state:
                path.append(imp)
                if found := visit(imp.target):
                    return found
                path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def layer_of(module: str) -> float | None:
    """The stage of a module (see the module docstring), or None if it has none."""
    parts = module.split(".")
    if parts[0] == "tasks":
        return TASKS_LAYER
    if parts[0] != PACKAGE:
        return None
    if parts[1:2] == ["data"] and len(parts) > 2 and parts[2].startswith("translate"):
        return TRANSLATE_LAYER
    return LAYERS.get(parts[1] if len(parts) > 1 else PACKAGE)


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return collect_imports()


def test_every_module_has_a_layer():
    unplaced = [m for m in _modules() if layer_of(m) is None]
    assert not unplaced, f"modules outside every stage (add them to LAYERS): {unplaced}"


def test_no_import_cycles(imports):
    cycle = find_cycle(imports)
    if cycle is not None:
        pytest.fail("import cycle:\n  " + "\n  ".join(str(i) for i in cycle), pytrace=False)


def test_stages_import_only_downward(imports):
    upward = [
        f"{imp}  (stage {layer_of(imp.source):g} imports stage {layer_of(imp.target):g})"
        for imp in imports
        if None not in (layer_of(imp.source), layer_of(imp.target))
        and layer_of(imp.target) > layer_of(imp.source)
    ]
    if upward:
        pytest.fail(f"{len(upward)} upward import(s):\n  " + "\n  ".join(upward), pytrace=False)


def test_no_file_over_the_line_limit():
    too_long = []
    for folder in (PACKAGE, "tasks", "benchmarks", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    if too_long:
        message = f"files over {MAX_LINES} lines (split them along a seam):\n  " + "\n  ".join(
            too_long
        )
        pytest.fail(message, pytrace=False)


def test_package_root_holds_only_shared_modules_and_entry_points():
    present = {p.name for p in (ROOT / PACKAGE).glob("*.py")}
    extra, missing = sorted(present - ROOT_FILES), sorted(ROOT_FILES - present)
    assert present == ROOT_FILES, f"{PACKAGE}/: unexpected modules {extra}, missing {missing}"


def test_the_checks_see_lazy_relative_and_dynamic_imports():
    """The parser itself: a function-level, a relative and an import_module import all count."""
    tree = ast.parse(
        "def f():\n"
        "    from polyglot_jax.cli import common\n"
        "    from ..data import formats\n"
        "    importlib.import_module('tasks')\n"
    )
    names = [
        name
        for node in ast.walk(tree)
        for name in _imported_names(node, "polyglot_jax.models.hf", is_package=False)
    ]
    assert names == ["polyglot_jax.cli.common", "polyglot_jax.data.formats", "tasks"]
    a, b = (Import(s, f"{s}.py", 1, t) for s, t in (("x", "y"), ("y", "x")))
    assert find_cycle([a, b]) == [a, b]
    assert find_cycle([a]) is None
