"""What keeps the code readable for the next contributor, held as tests: short functions, and
the study's table notebooks calling sekd rather than defining logic of their own."""

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LONGEST_FUNCTION = 80  # lines, decorators and docstring included


def _functions(tree):
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    return [n for n in ast.walk(tree) if isinstance(n, kinds)]


def test_no_function_of_the_package_is_longer_than_80_lines():
    long = [
        f"{p.relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for p in sorted((ROOT / "sekd").rglob("*.py"))
        for n in _functions(ast.parse(p.read_text()))
        if not isinstance(n, (ast.ClassDef, ast.Lambda))
        and n.end_lineno - n.lineno + 1 > LONGEST_FUNCTION
    ]
    assert long == []


@pytest.mark.parametrize("book", ["06_tables_mvat", "07_snr_teachers_student"])
def test_the_table_notebooks_define_no_function_or_class(book):
    cells = json.loads((ROOT / "notebooks" / f"{book}.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert [type(n).__name__ for n in _functions(ast.parse(code))] == []


def test_the_check_sees_a_long_function_and_a_lambda():
    body = "\n".join(f"    x{i} = {i}" for i in range(LONGEST_FUNCTION))
    tree = ast.parse(f"def f():\n{body}\n\ng = lambda: 0\n")
    f, g = _functions(tree)
    assert f.end_lineno - f.lineno + 1 == LONGEST_FUNCTION + 1 and isinstance(g, ast.Lambda)
