"""Imports point one way: routing <- dispatch <- simulator <- api, and nothing imports api."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["routing", "dispatch", "simulator", "api"]


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_no_upward_imports(layer: str) -> None:
    """No module of a layer imports a layer above it."""
    above = set(LAYERS[LAYERS.index(layer) + 1:])
    offenders = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & above)
                 for p in (ROOT / layer).rglob("*.py") if imported_packages(p) & above}
    assert offenders == {}


def test_nothing_outside_api_imports_api() -> None:
    """Only api itself (and the tests) import api; benchmarks and other packages do not."""
    offenders = [str(p.relative_to(ROOT)) for folder in ("routing", "dispatch", "simulator", "benchmarks")
                 for p in (ROOT / folder).rglob("*.py") if "api" in imported_packages(p)]
    assert offenders == []


def test_checker_sees_imports() -> None:
    """The import scanner finds both `import x` and `from x.y import z` forms (so the tests above can fail)."""
    sample = ROOT / "tests" / "test_architecture.py"
    assert {"ast", "pathlib", "pytest"} <= imported_packages(sample)
