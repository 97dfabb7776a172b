"""The layering drawn from imports: product code never imports devkit or tests; devkit never imports tests.

Every ``import`` / ``from ... import`` statement is read with :mod:`ast`, wherever it sits (module
level, inside a function, under ``if TYPE_CHECKING``), plus ``importlib.import_module("...")`` and
``__import__("...")`` with a literal name. The product is ``components``, ``microvms`` and
``policies`` (the pack runs in the engine's own process) and the program's ``__main__.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("components", "microvms", "policies")


def imported_modules(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, absolute module name)`` for every import in ``source`` (relative ones skipped:
    they stay inside their own package)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            literal = first.value if isinstance(first, ast.Constant) else None
            is_import = name in ("import_module", "__import__")
            if is_import and isinstance(literal, str) and not literal.startswith("."):
                found.append((node.lineno, literal))
    return found


def offending_imports(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    """``"<path>:<line> imports <module>"`` for each import of a ``forbidden`` top-level package."""
    problems = []
    for path in files:
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        for line, module in imported_modules(path.read_text(encoding="utf-8"), str(path)):
            if module.split(".", 1)[0] in forbidden:
                problems.append(f"{shown}:{line} imports {module}")
    return sorted(problems)


def python_files(*packages: str) -> list[Path]:
    files = []
    for package in packages:
        files += sorted(p for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def test_product_code_imports_neither_devkit_nor_tests():
    files = [*python_files(*PRODUCT), REPO / "__main__.py"]
    for package in PRODUCT:  # the walk really covers each package
        assert any(f.is_relative_to(REPO / package) for f in files), package
    assert offending_imports(files, ("devkit", "tests")) == []


def test_devkit_does_not_import_tests():
    files = python_files("devkit")
    assert REPO / "devkit" / "offline" / "evaluate.py" in files
    assert offending_imports(files, ("tests",)) == []


def test_the_walk_finds_imports_wherever_they_hide(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from devkit.offline.records import ProgramGraph\n"
        "def late():\n"
        "    import tests.fixtures\n"
        "    from devkit import services\n"
        "    return importlib.import_module('devkit.policy_check')\n"
        "from . import sibling\n"
        "import devkitten\n",
        encoding="utf-8",
    )
    found = sorted(m for _, m in imported_modules(bad.read_text(encoding="utf-8")))
    assert found == [
        "devkit",
        "devkit.offline.records",
        "devkit.policy_check",
        "devkitten",
        "importlib",
        "tests.fixtures",
        "typing",
    ]
    assert offending_imports([bad], ("devkit", "tests")) == [
        f"{bad}:4 imports devkit.offline.records",
        f"{bad}:6 imports tests.fixtures",
        f"{bad}:7 imports devkit",
        f"{bad}:8 imports devkit.policy_check",
    ]
