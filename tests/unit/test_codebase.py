"""The codebase keeps its shape: no import cycle inside build_httpd (import-linter, configured in
pyproject.toml), and no test module that asserts nothing."""

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


def _checks(tree: ast.AST) -> bool:
    """An assert statement, or a pytest.raises/pytest.fail/pytest.warns call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Attribute) and node.attr in ("raises", "fail", "warns") and \
                isinstance(node.value, ast.Name) and node.value.id == "pytest":
            return True
    return False


@pytest.mark.parametrize("path", TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_test_module_checks_something(path):
    assert _checks(ast.parse(path.read_text())), f"{path.relative_to(ROOT)} asserts nothing"


def test_the_check_itself_sees_a_module_that_asserts_nothing():
    assert not _checks(ast.parse("def test_x():\n    print('ran')\n"))
    assert _checks(ast.parse("import pytest\ndef test_x():\n    with pytest.raises(ValueError):\n        int('x')\n"))
