"""The cache of local model files: `$RLMRT_MODELS_DIR`, default `$RLMRT_HOME/models`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from rlmrt._home import default_home
from rlmrt.local.catalog import LocalModel

__all__ = ["file_sha256", "model_path", "models_dir", "remove", "verified"]

_CHUNK = 1 << 20


def models_dir() -> Path:
    folder = os.environ.get("RLMRT_MODELS_DIR")
    return Path(folder).expanduser() if folder else default_home() / "models"


def model_path(model: LocalModel) -> Path:
    return models_dir() / model.filename


def _stamp(model: LocalModel) -> Path:
    """Written after a full check, so later runs need not hash 1 GB again."""
    return models_dir() / f".{model.filename}.sha256"


def file_sha256(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def verified(model: LocalModel) -> bool:
    """Whether the model's file is in the cache, whole and checked."""
    path = model_path(model)
    try:
        size = path.stat().st_size
        stamp = _stamp(model).read_text().strip()
    except OSError:
        return False
    return size == model.size and stamp == f"{model.sha256} {path.stat().st_mtime_ns}"


def mark_verified(model: LocalModel) -> None:
    path = model_path(model)
    _stamp(model).write_text(f"{model.sha256} {path.stat().st_mtime_ns}\n")


def remove(model: LocalModel) -> bool:
    """Delete the model's file; whether there was one."""
    found = False
    for path in (model_path(model), _stamp(model)):
        try:
            path.unlink()
            found = True
        except FileNotFoundError:
            pass
    return found
