"""Imports flow one way: lm below everything; nothing below eval (lm, data, repair) reads
eval, and eval reads neither training nor unlearning (training reads eval: its monitor
measures with the evaluation suite).

Imports made only for type checking (inside ``if TYPE_CHECKING:``) are allowed: they never
run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import forgetkit

ROOT = Path(forgetkit.__file__).parent
BELOW_EVAL = ("lm", "data", "repair")
ABOVE_LM = ("data", "train", "unlearn", "eval", "repair", "report", "audit", "testbed", "studies",
            "cli")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Absolute module names imported outside ``if TYPE_CHECKING:`` blocks."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            # ``from forgetkit import eval`` names the package in the alias.
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _imports_of(package: str) -> dict[str, list[str]]:
    return {str(path.relative_to(ROOT)): _runtime_imports(ast.parse(path.read_text("utf-8")))
            for path in sorted((ROOT / package).rglob("*.py"))}


def _hits(imports: list[str], banned: str) -> list[str]:
    return [name for name in imports if name == banned or name.startswith(banned + ".")]


def test_nothing_below_eval_imports_eval():
    bad = {path: _hits(names, "forgetkit.eval")
           for package in BELOW_EVAL for path, names in _imports_of(package).items()}
    assert {path: hits for path, hits in bad.items() if hits} == {}


def test_eval_never_imports_training_or_unlearning():
    bad = {path: _hits(names, "forgetkit.train") + _hits(names, "forgetkit.unlearn")
           for path, names in _imports_of("eval").items()}
    assert {path: hits for path, hits in bad.items() if hits} == {}


def test_lm_imports_no_layer_above_it():
    bad = {path: [name for layer in ABOVE_LM for name in _hits(names, f"forgetkit.{layer}")]
           for path, names in _imports_of("lm").items()}
    assert {path: hits for path, hits in bad.items() if hits} == {}


def test_the_walk_sees_imports_and_skips_type_checking_blocks():
    tree = ast.parse("from typing import TYPE_CHECKING\n"
                     "import forgetkit.eval.metrics\n"
                     "def f():\n    from forgetkit.eval import judge\n"
                     "if TYPE_CHECKING:\n    from forgetkit.train import run\n")
    names = _runtime_imports(tree)
    assert _hits(names, "forgetkit.eval") == ["forgetkit.eval.metrics", "forgetkit.eval",
                                              "forgetkit.eval.judge"]
    assert _hits(names, "forgetkit.train") == []
