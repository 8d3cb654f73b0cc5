"""The shipped tools' tests use rlmrt's pytest plugin as any tool author's tests do.
Installed from this tree, rlmrt's `pytest11` entry point loads it; where the installed
rlmrt predates the entry point, it is registered here (too late for its command-line
option: there, ``pytest -p rlmrt.testing.pytest_plugin tools --rlm-sandboxes=...``)."""

import importlib

import pytest

PLUGIN = "rlmrt.testing.pytest_plugin"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    plugin = importlib.import_module(PLUGIN)
    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, PLUGIN)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """No test reads the developer's rlm.toml or writes to ~/.rlmrt (as in tests/)."""
    monkeypatch.setenv("RLMRT_HOME", str(tmp_path / "rlmrt-home"))
    monkeypatch.chdir(tmp_path)
