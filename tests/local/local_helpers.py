"""Helpers of the local model tests: a free port nobody listens on, a tiny model."""

from __future__ import annotations

import hashlib
import socket

from rlmrt.local.catalog import LocalModel, PyPIParts


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
