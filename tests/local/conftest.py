from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_helpers import MODEL, MODELS_DIR

from rlmrt.local import store
from rlmrt.local.server import ServerInfo, ensure_server, running_server, stop_server


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


@pytest.fixture(scope="module")
def real_cache() -> Iterator[None]:
    """The real model's cache (a failure when the model was not pulled)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RLMRT_MODELS_DIR", MODELS_DIR)
        if not store.verified(MODEL):
            pytest.fail(f"the local model is not in {MODELS_DIR}: run `rlm model pull`")
        yield


@pytest.fixture(scope="module")
def server(real_cache: None) -> Iterator[ServerInfo]:
    """The real model's server: the running one (shared), or one started and stopped here."""
    started_here = running_server() is None
    info = ensure_server(MODEL)
    yield info
    if started_here:
        stop_server()


@pytest.fixture
def real_models_dir(real_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """RLMRT_MODELS_DIR names the real cache again, over the test's isolated RLMRT_HOME."""
    monkeypatch.setenv("RLMRT_MODELS_DIR", MODELS_DIR)
