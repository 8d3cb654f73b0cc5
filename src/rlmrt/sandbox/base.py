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
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from rlmrt.sandbox.kernel import HOST_FUNCTIONS, QueryFailed

__all__ = [
    "LIMIT_NAMES",
    "Diagnosis",
    "ExecResult",
    "HostBridge",
    "Limits",
    "QueryFailed",
    "QuotaStatus",
    "SandboxBackend",
    "call_host",
]


class Limits(BaseModel):
    """Resource limits of one code execution in a sandbox. `None` means "no limit of
    this kind".

    Every limit has a default, so a fork bomb, a disk fill, a spinning child or a flood
    of output is bounded without configuration (safe defaults beat safe options).

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
        default=60.0,
        gt=0,
        le=86_400,
        description="CPU seconds each code execution may use, with the processes and"
        " threads it leaves running.",
    )
    processes: int | None = Field(
        default=64,
        gt=0,
        le=100_000,
        description="Processes (and threads) the code may run at once.",
    )
    file_bytes: int | None = Field(
        default=256 * 1024 * 1024, gt=0, description="Largest file the code may write, in bytes."
    )

    def set_names(self) -> list[str]:
        """The names of the limits that are set (not None)."""
        return [name for name in LIMIT_NAMES if getattr(self, name) is not None]


LIMIT_NAMES = tuple(Limits.model_fields)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """Whether one limit (a `LIMIT_NAMES` name) or other protection (isolation,
    network, ...) is enforced by a sandbox kind on this host, and how."""

    name: str
    enforced: bool
    how: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    """Whether a sandbox kind can run on this host, and what it enforces (`rlm doctor`).

    `status` is "fail" when runs of this kind cannot work, "warn" when the kind is not
    usable here (a missing extra, engine or image), "ok" otherwise.
    """

    status: Literal["ok", "warn", "fail"]
    detail: str
    quotas: tuple[QuotaStatus, ...] = ()

    @property
    def enforced(self) -> list[QuotaStatus]:
        return [q for q in self.quotas if q.enforced]

    @property
    def unenforced(self) -> list[QuotaStatus]:
        return [q for q in self.quotas if not q.enforced]

    def describe(self) -> str:
        """The detail, then what is and is not enforced (when known)."""
        if not self.quotas:
            return self.detail
        enforced = ", ".join(f"{q.name} ({q.how})" for q in self.enforced) or "none"
        missing = ", ".join(f"{q.name} ({q.how})" for q in self.unenforced) or "none"
        return f"{self.detail}; enforced: {enforced}; not enforced: {missing}"


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


class HostBridge(Protocol):
    """What sandboxed code may ask of the host. Implemented by the engine.

    One method per entry of `HOST_FUNCTIONS` (the kernel's table), with its name and
    arguments; `call_host` checks the arguments with the table before a method runs.
    These are coroutines run on the host's event loop; backends call them from
    wherever the code runs (a worker thread, a kernel message loop).
    """

    async def llm_query(
        self,
        prompt: str,
        model: str | None = None,
        images: Sequence[dict[str, str]] | None = None,
        audio: Sequence[dict[str, str]] | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> Any:
        """`images` / `audio`: ``{"format", "data": base64}`` items (the kernel's
        `MEDIA_FORMATS`), checked by the table before they get here. `output_type`: the
        JSON Schema the reply must fit (sent only when code gives one); the reply's
        typed value, as JSON data, is then the result."""

    async def llm_query_batched(
        self,
        prompts: Sequence[str],
        model: str | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> list[Any]:
        """Replies in order, a failed item a `QueryFailed`."""

    async def rlm_query(
        self, prompt: str, context: Any = None, *, output_type: dict[str, Any] | None = None
    ) -> Any: ...

    async def rlm_query_batched(
        self,
        prompts: Sequence[str],
        contexts: Sequence[Any] | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> list[Any]: ...

    async def context_search(self, query: str, max_tokens: int = 2000) -> list[dict[str, Any]]:
        """Hits of the configured context provider as plain dicts (source, start_line,
        end_line, title, text, score, tokens)."""
        ...

    async def tool_call(
        self, tool: str, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> Any:
        """The result of the host tool `tool` (`tools.NAME(...)` in code), as JSON data."""
        ...

    async def tool_batch(self, calls: Sequence[Sequence[Any]]) -> list[Any]:
        """The results of (name, arguments) calls run concurrently (`tools.batch`);
        a failed call's item is a `QueryFailed`."""
        ...

    async def memory_remember(
        self, text: str, tags: Sequence[str] | None = None, pin: bool = False
    ) -> str:
        """The id of a new item of the project's memory (`memory.remember`)."""
        ...

    async def memory_recall(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """The project's memory items that best match `query` (`memory.recall`)."""
        ...

    async def memory_forget(self, item_id: str) -> bool:
        """Whether an item was forgotten (`memory.forget`)."""
        ...


async def call_host(bridge: HostBridge | None, name: str, args: Any) -> Any:
    """Run the host function `name` for sandboxed code: the one dispatch of every kind.

    `args` are checked again with the table's checks (code can forge a kernel frame)
    and passed to the bridge method of that name as keywords.
    """
    function = HOST_FUNCTIONS.get(name)
    if function is None:
        raise ValueError(f"unknown host function {name!r}")
    if bridge is None:
        raise RuntimeError(
            f"{name} is only available inside an RLM run (this sandbox has no host bridge)"
        )
    if not isinstance(args, dict):
        raise TypeError(f"{name}() arguments must come by name, got {type(args).__name__}")
    return await getattr(bridge, name)(**function.arguments(**args))


class SandboxBackend(ABC):
    """Base of every sandbox backend: one required method, `execute`.

    Backends are async; `Sandbox` is the synchronous facade for users. Variables set
    by code persist between executions for the life of the backend.
    """

    kind: str = "abstract"
    #: Whether starting takes long enough that runs should get started ones from a
    #: `SandboxPool` (a container, a Pyodide, a process) rather than wait.
    slow_start: bool = False

    def __init__(self, *, limits: Limits | None = None, bridge: HostBridge | None = None) -> None:
        self.limits = limits or Limits()
        self.bridge = bridge
        #: True when a `SandboxPool` started it before a run asked for it
        self.from_pool = False
        #: The limits this backend enforces on this host (from `quota_report`); any
        #: other limit that is set is reported.
        self.enforces = frozenset(
            q.name for q in self.quota_report() if q.enforced and q.name in LIMIT_NAMES
        )

    @classmethod
    def quota_report(cls) -> list[QuotaStatus]:
        """What this kind enforces on this host, limit by limit (and its other
        protections). A kind that says nothing enforces nothing."""
        return []

    @classmethod
    def diagnose(cls) -> Diagnosis:
        """Whether this kind can run on this host and what it enforces (`rlm doctor`).
        A problem of the host is the diagnosis, not an exception."""
        return Diagnosis(
            status="ok", detail="no check for this kind", quotas=(*cls.quota_report(),)
        )

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

    async def get_variable(self, name: str, *, rendered: bool = False) -> Any:
        """The value of the user's variable `name`. A value that cannot leave the
        sandbox as data (not JSON, bytes aside) is an error, or with `rendered` its
        rendering as text (what a viewer of the REPL wants)."""
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
