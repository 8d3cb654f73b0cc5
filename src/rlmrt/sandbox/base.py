"""The sandbox protocol every backend implements.

A backend runs Python code with persistent variables and gives back an `ExecResult`.
Code inside the sandbox reaches models only through the `HostBridge` the host hands
to the backend: the host owns credentials, depth and budgets, so sandboxed code can
ask for a sub-call but cannot change what it is allowed to spend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Resource limits of one code execution in a sandbox. `None` means "no limit of
    this kind".

    This is the one declaration of the limits: `RLMConfig.limits`, the `rlm run` flags,
    the `RLM_LIMITS__*` variables and the `Sandbox(...)` keywords all come from these
    fields. A backend that cannot enforce a limit that is set reports it
    (`SandboxBackend.unenforced_limits()`) instead of ignoring it silently.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    exec_timeout_s: float | None = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="Wall seconds each code execution may run (the whole run's time is"
        " budget.max_wall_time_s).",
    )
    memory_mb: int | None = Field(
        default=1024, gt=0, le=1_048_576, description="Memory the code may use, in MB."
    )
    output_bytes: int = Field(
        default=1_000_000,
        gt=0,
        le=1_000_000_000,
        description="Bytes of stdout/stderr one execution returns; the rest is cut with a marker.",
    )
    cpu_s: float | None = Field(
        default=None, gt=0, le=86_400, description="CPU seconds each code execution may use."
    )
    processes: int | None = Field(
        default=None,
        gt=0,
        le=100_000,
        description="Processes (and threads) the code may run at once.",
    )
    file_bytes: int | None = Field(
        default=None, gt=0, description="Largest file the code may write, in bytes."
    )

    def set_names(self) -> list[str]:
        """The names of the limits that are set (not None)."""
        return [name for name in LIMIT_NAMES if getattr(self, name) is not None]


LIMIT_NAMES = tuple(Limits.model_fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult:
    """What one `execute` produced.

    `error` is the formatted exception of the user's code (None on success): it is
    data for the model, not a host-side failure. `final_answer` is set when the code
    called FINAL(...) or FINAL_VAR(...), rendered as a string.
    """

    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    duration_s: float = 0.0
    final_answer: str | None = None
    final_set: bool = False
    display: str | None = None  # repr of the block's last bare expression, notebook style

    @property
    def ok(self) -> bool:
        return self.error is None


class QueryFailed(Exception):
    """The value of a failed item in `llm_query_batched` / `rlm_query_batched` results.

    Returned, not raised: one failed item does not fail the batch. Code checks for it
    with `isinstance(r, Exception)`; it carries only the error message (no traceback,
    nothing of the host).
    """


class HostBridge(Protocol):
    """What sandboxed code may ask of the host. Implemented by the engine.

    These are coroutines run on the host's event loop; backends call them from
    wherever the code runs (a worker thread, a kernel message loop).
    """

    async def llm_query(self, prompt: str, model: str | None = None) -> str: ...

    async def llm_query_batched(
        self, prompts: Sequence[str], model: str | None = None
    ) -> list[str | QueryFailed]: ...

    async def rlm_query(self, prompt: str, context: Any = None) -> str: ...

    async def rlm_query_batched(
        self, prompts: Sequence[str], contexts: Sequence[Any] | None = None
    ) -> list[str | QueryFailed]: ...

    async def context_search(self, query: str, max_tokens: int = 2000) -> list[dict[str, Any]]:
        """Hits of the configured context provider as plain dicts (source, start_line,
        end_line, title, text, score, tokens)."""
        ...


class SandboxBackend(ABC):
    """Base of every sandbox backend: one required method, `execute`.

    Backends are async; `Sandbox` is the synchronous facade for users. Variables set
    by code persist between executions for the life of the backend.
    """

    kind: str = "abstract"
    #: Whether starting takes long enough that runs should get started ones from a
    #: `SandboxPool` (a container, a Pyodide, a process) rather than wait.
    slow_start: bool = False
    #: The limits this backend enforces; any other limit that is set is reported.
    enforces: frozenset[str] = frozenset()

    def __init__(self, *, limits: Limits | None = None, bridge: HostBridge | None = None) -> None:
        self.limits = limits or Limits()
        self.bridge = bridge

    def unenforced_limits(self) -> list[str]:
        """Limits that are set but that this backend cannot enforce."""
        return [name for name in self.limits.set_names() if name not in self.enforces]

    @abstractmethod
    async def execute(self, code: str) -> ExecResult:
        """Run `code`; never raises for errors of the code itself."""

    async def start(self) -> None:
        """Acquire what the backend needs (process, container). Idempotent."""

    async def load_context(self, context: Any, *, name: str = "context") -> None:
        """Make `context` available to code as the variable `name`."""
        await self.set_variable(name, context)

    async def set_variable(self, name: str, value: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support set_variable")

    async def get_variable(self, name: str) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not support get_variable")

    async def list_variables(self) -> dict[str, str]:
        """Names of the user's variables and their type names."""
        raise NotImplementedError(f"{type(self).__name__} does not support list_variables")

    async def aclose(self) -> None:
        """Release everything the backend holds. Idempotent."""

    async def __aenter__(self) -> SandboxBackend:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
