"""The codebase keeps its shape: no import cycle inside build_httpd (import-linter, configured in
pyproject.toml), and no test function that asserts nothing, itself or through a helper it calls."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TESTS = sorted((ROOT / "tests").rglob("test_*.py"))


def test_build_httpd_has_no_import_cycle_and_profile_is_a_leaf():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def _checks_itself(tree: ast.AST) -> bool:
    """An assert statement, or a pytest.raises/pytest.fail/pytest.warns call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Attribute) and node.attr in ("raises", "fail", "warns") and \
                isinstance(node.value, ast.Name) and node.value.id == "pytest":
            return True
    return False


def _called(function: ast.AST) -> set:
    """The names a function calls (plain or as an attribute: helper(), module.helper())."""
    return {n.func.id if isinstance(n.func, ast.Name) else n.func.attr for n in ast.walk(function)
            if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}


def _checking_functions(trees) -> set:
    """The functions of the test tree that check something, themselves or through a helper of the
    tree they call (assert_suite_passes, checked_in_a_fresh_root, …)."""
    functions = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.setdefault(node.name, []).append(node)
    checking = {name for name, nodes in functions.items() if any(_checks_itself(n) for n in nodes)}
    while True:
        more = {name for name, nodes in functions.items() if name not in checking
                and any(_called(n) & checking for n in nodes)}
        if not more:
            return checking
        checking |= more


def _unchecked_tests(trees) -> list:
    """The test functions that check nothing, themselves or through a helper."""
    checking = _checking_functions(trees)
    return [node.name for tree in trees for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
            and node.name not in checking]


TREES = [ast.parse(path.read_text()) for path in TESTS + sorted((ROOT / "tests").rglob("conftest.py"))]


@pytest.mark.parametrize("path", TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_test_function_checks_something(path):
    mine = [node.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
    unchecked = sorted(set(_unchecked_tests(TREES)) & set(mine))
    assert not unchecked, f"{path.relative_to(ROOT)}: {', '.join(unchecked)} assert nothing"


def test_the_check_itself_sees_a_test_that_asserts_nothing():
    assert _unchecked_tests([ast.parse("def test_x():\n    print('ran')\n")]) == ["test_x"]
    assert not _unchecked_tests([ast.parse("import pytest\ndef test_x():\n    with pytest.raises(ValueError):\n"
                                           "        int('x')\n")])
    # through a helper that asserts, and only then
    helper = "def helper(x):\n    assert x\ndef test_y():\n    helper(1)\ndef test_z():\n    print(2)\n"
    assert _unchecked_tests([ast.parse(helper)]) == ["test_z"]
