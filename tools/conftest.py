"""The shipped tools' tests use rlmrt's pytest plugin as any tool author's tests do.
Installed from this tree, rlmrt's `pytest11` entry point loads it; where the installed
rlmrt predates the entry point, it is loaded here."""

import pytest

PLUGIN = "rlmrt.testing.pytest_plugin"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    manager = config.pluginmanager
    if not manager.has_plugin("rlmrt") and not manager.has_plugin(PLUGIN):
        manager.import_plugin(PLUGIN)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """No test reads the developer's rlm.toml or writes to ~/.rlmrt (as in tests/)."""
    monkeypatch.setenv("RLMRT_HOME", str(tmp_path / "rlmrt-home"))
    monkeypatch.chdir(tmp_path)
