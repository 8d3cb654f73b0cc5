"""rlmrt: a runtime for Recursive Language Models.

The names below are imported on first use, so `import rlmrt` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "RLM": "rlmrt.engine.rlm",
    "RunResult": "rlmrt.engine.rlm",
    "RLMConfig": "rlmrt.config",
    "load_config": "rlmrt.config",
    "Usage": "rlmrt.observe.usage",
    "Sandbox": "rlmrt.sandbox.facade",
    "Limits": "rlmrt.sandbox.base",
    "ExecResult": "rlmrt.sandbox.base",
    "QueryFailed": "rlmrt.sandbox.base",
    "events": "rlmrt.events",
    "errors": "rlmrt.errors",
    "RLMError": "rlmrt.errors",
    "UsageError": "rlmrt.errors",
    "ConfigError": "rlmrt.errors",
    "ContextError": "rlmrt.errors",
    "MissingDependencyError": "rlmrt.errors",
    "RunError": "rlmrt.errors",
    "ModelError": "rlmrt.errors",
    "SandboxError": "rlmrt.errors",
    "BudgetExceededError": "rlmrt.errors",
}

__all__ = [
    "RLM",
    "BudgetExceededError",
    "ConfigError",
    "ContextError",
    "ExecResult",
    "Limits",
    "MissingDependencyError",
    "ModelError",
    "QueryFailed",
    "RLMConfig",
    "RLMError",
    "RunError",
    "RunResult",
    "Sandbox",
    "SandboxError",
    "Usage",
    "UsageError",
    "__version__",
    "errors",
    "events",
    "load_config",
]

if TYPE_CHECKING:
    from rlmrt import errors, events
    from rlmrt.config import RLMConfig, load_config
    from rlmrt.engine.rlm import RLM, RunResult
    from rlmrt.errors import (
        BudgetExceededError,
        ConfigError,
        ContextError,
        MissingDependencyError,
        ModelError,
        RLMError,
        RunError,
        SandboxError,
        UsageError,
    )
    from rlmrt.observe.usage import Usage
    from rlmrt.sandbox.base import ExecResult, Limits, QueryFailed
    from rlmrt.sandbox.facade import Sandbox


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'rlmrt' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name in ("events", "errors") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
