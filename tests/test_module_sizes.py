"""The code stays in parts a reader can hold: no runtime module over 500 lines, no class
over 350 (the pipeline was one 1,155-line class with ten jobs before it was split)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "orders_tui"
MODULES = sorted(PACKAGE.rglob("*.py"))
MODULE_LINES, CLASS_LINES = 500, 350


def test_the_package_is_where_the_sizes_are_counted():
    assert len(MODULES) > 50


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_and_no_class_is_too_long(path: Path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MODULE_LINES
    too_long = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > CLASS_LINES
    }
    assert too_long == {}
