"""Sandboxes: the protocol, the registry of backends, and the synchronous facade."""

from __future__ import annotations

from rlmrt.sandbox.base import ExecResult, HostBridge, Limits, SandboxBackend
from rlmrt.sandbox.facade import SANDBOXES, Sandbox, create_backend

__all__ = [
    "SANDBOXES",
    "ExecResult",
    "HostBridge",
    "Limits",
    "Sandbox",
    "SandboxBackend",
    "create_backend",
]
