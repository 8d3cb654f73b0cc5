"""The public surface: exported names, lazy imports, the error hierarchy, the build."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import rlmrt
from rlmrt import errors

ROOT = Path(__file__).resolve().parents[1]


def test_exported_names() -> None:
    assert sorted(rlmrt.__all__) == [
        "BudgetExceededError",
        "ConfigError",
        "ContextError",
        "ExecResult",
        "Limits",
        "MissingDependencyError",
        "ModelError",
        "QueryFailed",
        "RLM",
        "RLMConfig",
        "RLMError",
        "RunError",
        "RunResult",
        "Sandbox",
        "SandboxError",
        "Usage",
        "UsageError",
        "__version__",
        "errors",
        "events",
        "load_config",
    ]
    for name in rlmrt.__all__:
        assert getattr(rlmrt, name) is not None
    assert dir(rlmrt) == sorted(rlmrt.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rlmrt.nope  # noqa: B018


def test_import_is_lazy() -> None:
    code = (
        "import sys, rlmrt\n"
        "heavy = [m for m in ('litellm', 'pydantic', 'RestrictedPython', 'httpx', 'rich', 'typer')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def raised_names(modules: list[ast.Module]) -> set[str]:
    """The names of the classes raised in `modules`: `raise X`, `raise X(...)` (with or
    without `from`), and `raise helper(...)` where the helper returns `X(...)`, or
    `cls(...)` with `cls` taken from another helper that returns `X` (as the
    model-error mapping in `llm/_retry.py` does). Importing or naming a class is not
    raising it."""
    functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.setdefault(node.name, []).append(node)

    def called(expr: ast.expr) -> str | None:
        func = expr.func if isinstance(expr, ast.Call) else None
        if isinstance(func, ast.Name):
            return func.id
        return func.attr if isinstance(func, ast.Attribute) else None

    def produced(name: str, seen: frozenset[str]) -> set[str]:
        """Classes a helper returns (made, or handed out as classes)."""
        found: set[str] = set()
        for function in functions.get(name, []) if name not in seen else []:
            assigned = {  # local name -> helpers whose result it holds
                target.id: called(node.value)
                for node in ast.walk(function)
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                for tuple_or_name in node.targets
                for target in (
                    tuple_or_name.elts if isinstance(tuple_or_name, ast.Tuple) else [tuple_or_name]
                )
                if isinstance(target, ast.Name)
            }
            for node in ast.walk(function):
                if not isinstance(node, ast.Return) or node.value is None:
                    continue
                value = node.value
                for part in value.elts if isinstance(value, ast.Tuple) else [value]:
                    found |= made(part, assigned, seen | {name})
        return found

    def made(expr: ast.expr, assigned: dict[str, str | None], seen: frozenset[str]) -> set[str]:
        if isinstance(expr, ast.Name):
            return {expr.id}
        name = called(expr)
        if name is None:
            return set()
        helper = assigned.get(name)
        if helper is not None:  # `cls(...)` with cls from a helper
            return produced(helper, seen)
        return {name} | produced(name, seen)

    names: set[str] = set()
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Raise) and node.exc is not None:
                names |= made(node.exc, {}, frozenset())
    return names


def test_the_raise_check_counts_raise_sites_only() -> None:
    source = (
        "from rlmrt.errors import Imported\n"
        "x = (Named, Listed)\n"
        "def pick(k):\n"
        "    if k:\n"
        "        return Chosen, 'm'\n"
        "    return Other, 'n'\n"
        "def make(k) -> E:\n"
        "    cls, message = pick(k)\n"
        "    return cls(message)\n"
        "def build():\n"
        "    return Built('m')\n"
        "raise Plain\n"
        "raise Called('m') from None\n"
        "raise make(1)\n"
        "raise build()\n"
    )
    names = raised_names([ast.parse(source)])
    assert {"Plain", "Called", "Chosen", "Other", "Built"} <= names
    assert not names & {"Imported", "Named", "Listed"}


def test_every_error_class_is_raised_somewhere_in_the_source() -> None:
    modules = [ast.parse(p.read_text()) for p in (ROOT / "src" / "rlmrt").rglob("*.py")]
    raised = raised_names(modules)
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.RLMError)
    ]
    assert len(classes) == 19
    for cls in classes:
        # a base class is there to be caught: it counts when its subclasses are raised
        below = [other for other in classes if issubclass(other, cls)]
        assert any(other.__name__ in raised for other in below), f"{cls.__name__} is never raised"


def test_every_rlmrt_exception_lives_in_errors_py() -> None:
    for path in (ROOT / "src" / "rlmrt").rglob("*.py"):
        if path.name == "errors.py" and path.parent.name == "rlmrt":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                assert not bases & set(errors.__dict__), f"{path}: class {node.name}"


def test_error_details() -> None:
    missing = errors.MissingDependencyError("docker", "docker")
    assert "pip install 'rlmrt[docker]'" in str(missing)
    model = errors.ModelError("boom", status=503, body="{}")
    assert (model.status, model.body) == (503, "{}")
    assert issubclass(errors.ConfigError, errors.UsageError)
    assert issubclass(errors.BudgetExceededError, errors.RunError)
    assert errors.BudgetExceededError("max_tokens", "m").limit == "max_tokens"


def test_no_message_names_a_repository_script() -> None:
    """A user of the PyPI package has no scripts/: hints name `rlm setup ...` instead.
    Docstrings (read by developers of the repository) may name them."""
    for path in (ROOT / "src" / "rlmrt").rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and id(node) not in docstrings:
                assert "scripts/" not in str(node.value), f"{path}:{node.lineno}: {node.value!r}"
