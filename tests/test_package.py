"""The public surface: exported names, lazy imports, the error hierarchy, the build."""

from __future__ import annotations

import inspect
import subprocess
import sys
import zipfile
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


def test_every_error_class_is_raised_somewhere_in_the_source() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "rlmrt").rglob("*.py"))
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.RLMError)
    ]
    assert len(classes) == 14
    for cls in classes:
        name = cls.__name__
        used = f"raise {name}(" in source or f"({name}" in source or f"{name}," in source
        subclassed = any(other is not cls and issubclass(other, cls) for other in classes)
        assert used or subclassed, f"{cls.__name__} is never raised"


def test_error_details() -> None:
    missing = errors.MissingDependencyError("docker", "docker")
    assert "pip install 'rlmrt[docker]'" in str(missing)
    model = errors.ModelError("boom", status=503, body="{}")
    assert (model.status, model.body) == (503, "{}")
    assert issubclass(errors.ConfigError, errors.UsageError)
    assert issubclass(errors.BudgetExceededError, errors.RunError)
    assert errors.BudgetExceededError("max_tokens", "m").limit == "max_tokens"


@pytest.mark.slow
def test_the_package_builds_and_passes_twine_check(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list(tmp_path.glob("rlmrt-*.whl"))
    assert len(wheels) == 1 and list(tmp_path.glob("rlmrt-*.tar.gz"))
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "rlmrt/py.typed" in names and "rlmrt/engine/run.py" in names
    subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, tmp_path.iterdir())],
        check=True,
        capture_output=True,
    )
