"""`Sandbox(...)`: the synchronous, user-facing way to use any backend."""

from __future__ import annotations

import inspect
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

from pydantic import ValidationError

from rlmrt._loop import LoopThread
from rlmrt._registry import LazyRegistry
from rlmrt.errors import ConfigError, SandboxClosedError
from rlmrt.sandbox.base import (
    LIMIT_NAMES,
    Diagnosis,
    ExecResult,
    HostBridge,
    Limits,
    SandboxBackend,
)
from rlmrt.sandbox.kernel import exception_line

SANDBOXES: LazyRegistry[SandboxBackend] = LazyRegistry(
    "sandbox",
    {
        "local": "rlmrt.sandbox.local:LocalSandbox",
        "process": "rlmrt.sandbox.process:ProcessSandbox",
        "wasm": "rlmrt.sandbox.wasm:WasmSandbox",
        "docker": "rlmrt.sandbox.docker:DockerSandbox",
        "remote": "rlmrt.sandbox.remote:RemoteSandbox",
        "kubernetes": "rlmrt.sandbox.kube:KubernetesSandbox",
    },
)

T = TypeVar("T")


def create_backend(
    kind: str,
    *,
    limits: Limits | None = None,
    bridge: HostBridge | None = None,
    options: Mapping[str, Any] | None = None,
) -> SandboxBackend:
    """Build (not start) the backend registered as `kind`; `options` are what that kind
    takes beyond the limits (the remote kind's `url` and `token`)."""
    backend = SANDBOXES.load(kind)
    given = dict(options or {})
    unknown = sorted(set(given) - set(inspect.signature(backend).parameters)) if given else []
    if unknown:
        raise ConfigError(f"the {kind} sandbox takes no option {', '.join(unknown)}")
    return backend(limits=limits, bridge=bridge, **given)


def diagnose(kind: str) -> Diagnosis:
    """The `SandboxBackend.diagnose` of the kind registered as `kind`. A kind that
    cannot even be loaded, or whose check breaks, is a warning: doctor never crashes."""
    try:
        backend = SANDBOXES.load(kind)
    except ImportError as exc:
        return Diagnosis(status="warn", detail=f"not available in this rlmrt ({exc})")
    except Exception as exc:  # noqa: BLE001 - whatever broke is the finding
        return Diagnosis(
            status="warn", detail=f"cannot load the {kind} sandbox: {exception_line(exc)}"
        )
    try:
        return backend.diagnose()
    except Exception as exc:  # noqa: BLE001 - whatever broke is the finding
        return Diagnosis(
            status="warn", detail=f"cannot inspect the {kind} sandbox: {exception_line(exc)}"
        )


class Sandbox:
    """A sandbox usable from synchronous code.

    ```python
    with Sandbox(exec_timeout_s=5, memory_mb=512) as sb:  # the "process" kind
        sb.execute("print(1+1)").stdout  # "2\\n"
    ```

    The backend runs on a private event loop in a helper thread, so the facade also
    works where an event loop is already running (notebooks).
    """

    def __init__(
        self,
        kind: str = "process",
        *,
        limits: Limits | None = None,
        **values: Any,
    ) -> None:
        """`kind` is a registered backend; the default, "process", holds its limits
        whatever the code does (``"local"`` runs in this process: for trusted code only).
        `values` are `Limits` fields (`exec_timeout_s=5`, `memory_mb=512`), given ones
        (not None) overriding `limits`, and the kind's options (``"remote"``: `url`,
        `token`, `ca_file`)."""
        given = {
            name: value
            for name, value in values.items()
            if name in LIMIT_NAMES and value is not None
        }
        options = {name: value for name, value in values.items() if name not in LIMIT_NAMES}
        try:
            self.limits = Limits(**{**(limits or Limits()).model_dump(), **given})
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid sandbox limits: {problems}") from exc
        self.kind = kind
        self._backend = create_backend(kind, limits=self.limits, options=options)
        self._loop = LoopThread(f"rlmrt-sandbox-{kind}")
        self._closed = False
        try:
            self._run(self._backend.start())
        except BaseException:
            self.close()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise SandboxClosedError(f"the {self.kind} sandbox is closed")
        return self._loop.run(coro)

    def execute(self, code: str) -> ExecResult:
        return self._run(self._backend.execute(code))

    def load_context(self, context: Any, *, name: str = "context") -> None:
        """Make `context` available to code as the variable `name` (kept across restarts)."""
        self._run(self._backend.load_context(context, name=name))

    def set_variable(self, name: str, value: Any) -> None:
        self._run(self._backend.set_variable(name, value))

    def get_variable(self, name: str, *, rendered: bool = False) -> Any:
        return self._run(self._backend.get_variable(name, rendered=rendered))

    def list_variables(self) -> dict[str, str]:
        return self._run(self._backend.list_variables())

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._loop.run(self._backend.aclose())
        finally:
            self._closed = True
            self._loop.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
