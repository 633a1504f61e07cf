"""The package's shape: every stage imports only the stages below it, and everything but
training loads without torch."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import posecli

PACKAGE = Path(posecli.__file__).parent
# The stages from the ground up (network -> maps -> parser -> inference -> writers/video/batch
# -> cli); a module may import its own stage and those with a lower rank, never a higher one.
RANKS = {
    "errors": 0, "version": 0,
    "io": 1, "skeleton": 1,
    "types": 2, "maps": 2, "angles": 2,
    "network": 3,
    "parser": 4,
    "inference": 5,
    "formats": 6,
    "evaluate": 7, "video": 7,
    "batch": 8, "train": 8, "multiview": 8,
    "__init__": 9,
    "cli": 10,
    "__main__": 11,
}


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("posecli",) + path.relative_to(PACKAGE).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _stage(module: str) -> str:
    """``posecli.network.store`` -> ``network``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imported(path: Path, module: str) -> set[str]:
    """Absolute names of the posecli modules that ``path`` imports (at any depth in the file)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("posecli"):
                out.add(target)
                out.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("posecli"))
    return {m for m in out if m in set(_modules()) or m == "posecli"}


def test_every_module_has_a_stage():
    assert {_stage(m) for m in _modules()} <= set(RANKS)


def test_no_import_runs_back_up_the_stages():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _modules()[sorted(PACKAGE.rglob("*.py")).index(path)]
        for target in _imported(path, module):
            if RANKS[_stage(target)] > RANKS[_stage(module)]:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_every_module_but_training_loads_without_torch():
    modules = [m for m in _modules() if _stage(m) != "train" and m != "posecli.__main__"]
    code = "import importlib, sys\nsys.modules['torch'] = None\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in modules)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


_FLAG = re.compile(r"(?<![\w-])--[a-z]|\bposecli (image|video|batch|models|eval|train)\b")


def _message_texts(tree: ast.AST):
    """Every string literal of a module but its docstrings (messages, notes; f-strings included)."""
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.value


def test_library_messages_name_parameters_never_flags():
    """The library words messages and notes in Python's terms; only cli/ words them as flags."""
    worded = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] in ("cli", "train"):
            continue
        worded += [f"{path.name}: {text}" for text in _message_texts(ast.parse(path.read_text()))
                   if _FLAG.search(text)]
    assert worded == []
