"""`RemoteSandbox`: a sandbox on a sandbox host (`rlm sandbox serve`), over a WebSocket.

```python
Sandbox("remote", url="wss://sandboxes.example:8765", token=TOKEN, memory_mb=512)
```

The host runs the kernel (process, docker or wasm) and enforces the limits, capped
by its own maxima; this side speaks the kernel protocol to it through `KernelChannel`
and answers the kernel's calls to host functions with its bridge, so model
credentials never leave this process.

Connections: a connection that drops during an execute ends that execute with an
error saying so; the next request reconnects to the same session (the host keeps it
for its grace period, variables and all). When the host no longer knows the session
(it restarted, or the grace period passed) a new sandbox is made, the contexts are
loaded again and the next execute says the sandbox was restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlmrt.errors import (
    ConfigError,
    MissingDependencyError,
    SandboxClosedError,
    SandboxError,
    UsageError,
)
from rlmrt.sandbox._channel import KernelChannel, KernelTimeout
from rlmrt.sandbox._kernel_backend import check_variable_name
from rlmrt.sandbox._remote_wire import (
    MAX_MESSAGE,
    WebSocketWriter,
    feed_reader,
    require_websockets,
)
from rlmrt.sandbox.base import (
    LIMIT_NAMES,
    Diagnosis,
    ExecResult,
    HostBridge,
    Limits,
    QuotaStatus,
    SandboxBackend,
)
from rlmrt.sandbox.kernel import pack_bytes, unpack_bytes

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["RemoteSandbox"]

CONNECT_TIMEOUT_S = 15.0
#: beyond the execute's own limit: the host's kill-and-restart and the way back
REPLY_MARGIN_S = 15.0


class RemoteSandbox(SandboxBackend):
    """Code runs in a sandbox on a sandbox host (see the module docstring)."""

    kind = "remote"

    @classmethod
    def quota_report(cls) -> list[QuotaStatus]:
        """Nothing is claimed before a host says what it holds: once connected,
        `enforces` is what the host's kind enforces there."""
        return [
            QuotaStatus("isolation", False, "the sandbox host's kind, on its machine"),
            *(
                QuotaStatus(name, False, "held by the sandbox host (known once connected)")
                for name in LIMIT_NAMES
            ),
        ]

    @classmethod
    def diagnose(cls) -> Diagnosis:
        try:
            require_websockets()
        except MissingDependencyError as exc:
            return Diagnosis(status="warn", detail=str(exc), quotas=(*cls.quota_report(),))
        return Diagnosis(
            status="ok",
            detail="needs a sandbox host (`rlm sandbox serve`) and its url and token",
            quotas=(*cls.quota_report(),),
        )

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        bridge: HostBridge | None = None,
        url: str | None = None,
        token: str | None = None,
        ca_file: str | Path | None = None,
    ) -> None:
        self._channel: KernelChannel | None = None
        super().__init__(limits=limits, bridge=bridge)
        if not url or not url.startswith(("ws://", "wss://")):
            raise ConfigError(
                "the remote sandbox needs url=, the ws:// or wss:// address of a sandbox"
                f" host (`rlm sandbox serve`), got {url!r}"
            )
        if not token:
            raise ConfigError("the remote sandbox needs token=, the sandbox host's token")
        require_websockets()
        self.url = url
        self._token = token
        self._tls = _tls_context(url, ca_file)
        self._session: str | None = None
        self._pump: asyncio.Task[None] | None = None
        self._writer: WebSocketWriter | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False
        self._contexts: dict[str, Any] = {}  # sent again to a sandbox made anew
        self._notice = ""
        #: the limits the host holds (the asked ones capped by its own), once connected
        self.host_limits = self.limits

    def __repr__(self) -> str:  # never the token
        return f"RemoteSandbox(url={self.url!r}, session={self._session!r})"

    @property
    def bridge(self) -> HostBridge | None:
        return self._bridge

    @bridge.setter
    def bridge(self, bridge: HostBridge | None) -> None:
        self._bridge = bridge
        if self._channel is not None:
            self._channel.bridge = bridge

    @property
    def session(self) -> str | None:
        """The host's id of this sandbox (kept across reconnects)."""
        return self._session

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        async with self._get_lock():
            await self._connected()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._disconnect()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxClosedError("the remote sandbox is closed")

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _connected(self) -> KernelChannel:
        # a finished pump: the connection closed while idle (the host went away)
        gone = self._pump is not None and self._pump.done()
        if self._channel is None or self._channel.broken or gone:
            await self._disconnect(shutdown=False)
            await self._connect()
        assert self._channel is not None
        return self._channel

    async def _connect(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        try:
            connection: ClientConnection = await connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                ssl=self._tls,
                max_size=MAX_MESSAGE,
                compression=None,
                proxy=None,
                open_timeout=CONNECT_TIMEOUT_S,
                user_agent_header=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            why = "the token was refused" if status == 401 else f"HTTP {status}"
            raise SandboxError(f"the sandbox host at {self.url} refused us: {why}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise SandboxError(f"cannot reach the sandbox host at {self.url}: {exc}") from None
        reader = asyncio.StreamReader(limit=MAX_MESSAGE)
        self._pump = asyncio.create_task(feed_reader(connection, reader))
        self._writer = WebSocketWriter(connection)
        channel = KernelChannel(reader, self._writer, self.bridge)
        self._channel = channel
        asked = {"op": "open", "limits": self.limits.model_dump(), "session": self._session}
        try:
            await channel.send(asked)
            ready = await channel.receive(timeout=CONNECT_TIMEOUT_S)
        except (SandboxError, KernelTimeout) as exc:
            await self._disconnect(shutdown=False)
            raise SandboxError(
                f"the sandbox host at {self.url} did not open a sandbox: {exc}"
            ) from None
        if ready.get("op") != "ready":
            await self._disconnect(shutdown=False)
            raise SandboxError(f"the sandbox host at {self.url} said: {ready.get('error')}")
        self.enforces = frozenset(str(name) for name in ready.get("enforces") or ())
        self.host_limits = Limits(**ready.get("limits", {}))
        lost = self._session is not None and not ready.get("resumed")
        self._session = str(ready.get("session"))
        if lost:
            self._notice = (
                f"the sandbox host at {self.url} no longer had this sandbox (restarted, or"
                " the connection was down past its grace period); the sandbox was restarted"
                " and its variables were lost"
            )
            for name, value in self._contexts.items():
                await self._request({"op": "load_context", "name": name, "value": value})
            if self._contexts:
                names = ", ".join(f"`{name}`" for name in self._contexts)
                self._notice += f" ({names} {'was' if len(self._contexts) == 1 else 'were'}"
                self._notice += " loaded again)"
            self._notice += "\n"

    async def _disconnect(self, *, shutdown: bool = True) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            if shutdown:
                await channel.aclose()  # its shutdown frame ends the session on the host
            else:
                channel.writer.close()
        if self._writer is not None:
            await self._writer.wait_closed()
            self._writer = None
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    # -- requests -----------------------------------------------------------------------

    async def _request(self, msg: dict[str, Any], *, timeout: float | None = None) -> Any:
        channel = await self._connected()
        reply = _checked(await channel.request(msg, timeout=timeout or CONNECT_TIMEOUT_S))
        return reply.get("value")

    async def _locked_request(self, msg: dict[str, Any]) -> Any:
        self._check_open()
        async with self._get_lock():
            return await self._request(msg)

    async def load_context(self, context: Any, *, name: str = "context") -> None:
        check_variable_name(name)
        value = pack_bytes(context)
        await self._locked_request({"op": "load_context", "name": name, "value": value})
        self._contexts[name] = value

    async def set_variable(self, name: str, value: Any) -> None:
        check_variable_name(name)
        if isinstance(value, types.ModuleType):
            raise UsageError("modules cannot be put into the sandbox")
        await self._locked_request({"op": "set", "name": name, "value": pack_bytes(value)})

    async def get_variable(self, name: str, *, rendered: bool = False) -> Any:
        request = {"op": "get", "name": name, "rendered": rendered}
        return unpack_bytes(await self._locked_request(request))

    async def list_variables(self) -> dict[str, str]:
        return dict(await self._locked_request({"op": "list"}))

    async def execute(self, code: str) -> ExecResult:
        self._check_open()
        if not isinstance(code, str):
            raise UsageError(f"code must be a str, got {type(code).__name__}")
        async with self._get_lock():
            self._check_open()
            channel = await self._connected()
            notice, self._notice = self._notice, ""
            started = time.perf_counter()
            limit = self.host_limits.exec_timeout_s
            try:
                reply = await channel.request(
                    {"op": "execute", "code": code},
                    timeout=limit + REPLY_MARGIN_S if limit is not None else None,
                )
            except (SandboxError, KernelTimeout) as exc:
                message = (
                    f"SandboxError: the connection to the sandbox host at {self.url} was lost"
                    f" during this execute ({exc}); its outcome is unknown. The next call"
                    " reconnects; the variables are kept if the host still has the sandbox"
                )
                duration = time.perf_counter() - started
                return ExecResult(stderr=notice + message, error=message, duration_s=duration)
        _checked(reply)
        error = reply.get("error")
        return ExecResult(
            stdout=str(reply.get("stdout") or ""),
            stderr=notice + str(reply.get("stderr") or ""),
            error=notice + error if notice and error else error,
            duration_s=float(reply.get("duration_s") or 0.0),
            final_answer=reply.get("final"),
            final_set=bool(reply.get("final_set")),
            display=reply.get("display"),
        )


def _checked(reply: dict[str, Any]) -> dict[str, Any]:
    """`reply`, unless the host answered with an error: raised as the host raised it."""
    if reply.get("op") == "error":
        error = SandboxError if reply.get("sandbox") else UsageError
        raise error(str(reply.get("error")))
    return reply


def _tls_context(url: str, ca_file: str | Path | None) -> ssl.SSLContext | None:
    """The TLS settings of a wss:// URL: the system's trust store, or only `ca_file`
    (a host's own self-signed certificate)."""
    if not url.startswith("wss://"):
        if ca_file is not None:
            raise ConfigError("ca_file is for a wss:// sandbox host; the url is ws://")
        return None
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use the certificate file {ca_file}: {exc}") from exc
