"""rlmrt's own folder on this machine, under which every default path lives (runs,
models, indexes, the wasm runtime). Below the settings, so a backend can name its
default folder without importing them."""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    """rlmrt's own folder (`RLMRT_HOME`, default `~/.rlmrt`)."""
    return Path(os.environ.get("RLMRT_HOME", Path.home() / ".rlmrt")).expanduser()
