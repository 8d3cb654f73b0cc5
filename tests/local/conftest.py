from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("RLMRT_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip sees only the index the test sets (no user config, no cache)."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)


def _zombie_children() -> list[int]:
    """This process's children that ended and were not collected."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(autouse=True)
def _no_zombies_left() -> Iterator[None]:
    """Every test here reaps what it starts (the local-model suite once left a crashed
    server uncollected)."""
    before = set(_zombie_children())
    yield
    left = sorted(set(_zombie_children()) - before)
    assert not left, f"processes left uncollected (zombies): {left}"
