"""Recorded trajectories for the visualizer tests: made once by real runs against the
scripted server, copied into each test's own runs folder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from recordings import record_partial, record_tree

_CACHE: dict[str, tuple[Path, Path, int]] = {}
BROWSER_MARKER = "browser: end-to-end tests in a real headless Chromium; run by .ci/run"


def pytest_configure(config: pytest.Config) -> None:
    # also declared in pyproject.toml; here too so this folder runs on its own
    config.addinivalue_line("markers", BROWSER_MARKER)


@dataclass
class Runs:
    folder: Path
    tree: Path  # the run with a batch, a depth-2 child run and sub-calls
    partial: Path  # a run stopped by max_iterations, recorded after `tree`
    max_in_flight: int  # the most requests the server saw at once during `tree`


@pytest.fixture
def runs(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Runs:
    if "runs" not in _CACHE:
        folder = tmp_path_factory.mktemp("recorded")
        tree, server = record_tree(folder)
        _CACHE["runs"] = (tree, record_partial(folder), server.max_in_flight)
    tree, partial, in_flight = _CACHE["runs"]
    folder = tmp_path / "runs"
    folder.mkdir()
    for path in (tree, partial):
        shutil.copy(path, folder / path.name)
    return Runs(folder, folder / tree.name, folder / partial.name, in_flight)
