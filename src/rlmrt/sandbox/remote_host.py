"""`SandboxHost`: kernels for remote clients (`rlm sandbox serve`).

A client (`rlmrt.sandbox.remote.RemoteSandbox`) connects over a WebSocket with a
bearer token, says which limits it wants and gets a session: one sandbox of the
host's kind (process, docker or wasm) with the client's limits capped by the host's
own (`cap_limits`: the host's maxima hold whatever the client asks). Then the
connection carries the kernel protocol (see `rlmrt.sandbox._remote_wire`): requests
from the client run on the session's sandbox, and the kernel's calls to host
functions (llm_query, rlm_query, tools, memory) are relayed back to the client,
which owns the model credentials: this host never holds an API key.

A dropped connection leaves the session alive for `grace_s` seconds: the client may
reconnect to it with its session id and find its variables. A session not claimed
in time is closed. A host that restarted knows no session, so the client is given a
new one and says the sandbox was restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import itertools
import logging
import secrets
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlmrt.errors import SandboxError, UsageError
from rlmrt.sandbox._channel import decode_frame, encode_frame
from rlmrt.sandbox._kernel_backend import KernelBackend
from rlmrt.sandbox._remote_wire import MAX_MESSAGE, require_websockets, token_matches
from rlmrt.sandbox.base import LIMIT_NAMES, ExecResult, Limits, SandboxBackend
from rlmrt.sandbox.kernel import pack_bytes, unpack_bytes
from rlmrt.sandbox.pool import SandboxPool

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

__all__ = ["DEFAULT_GRACE_S", "DEFAULT_MAX_SANDBOXES", "HOST_KINDS", "SandboxHost", "cap_limits"]

log = logging.getLogger("rlmrt")

DEFAULT_GRACE_S = 60.0
DEFAULT_MAX_SANDBOXES = 16
#: kinds a host may run: each holds its limits outside the host's own process
HOST_KINDS = ("process", "docker", "wasm")
OPEN_TIMEOUT_S = 10.0


def cap_limits(asked: dict[str, Any], maximum: Limits) -> Limits:
    """The client's limits with each one capped by the host's: a limit the client
    leaves unset (None) is the host's maximum."""
    try:
        wanted = Limits(**{k: v for k, v in asked.items() if k in LIMIT_NAMES})
    except ValueError as exc:
        raise UsageError(f"invalid limits from the client: {exc}") from exc
    capped: dict[str, Any] = {}
    for name in LIMIT_NAMES:
        mine, theirs = getattr(maximum, name), getattr(wanted, name)
        capped[name] = theirs if mine is None else mine if theirs is None else min(mine, theirs)
    return Limits(**capped)


@dataclass(eq=False)
class _Session:
    id: str
    backend: SandboxBackend
    connection: ServerConnection | None = None
    calls: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    expiry: asyncio.Task[None] | None = None
    requests: set[asyncio.Task[None]] = field(default_factory=set)


class SandboxHost:
    """Serves sandboxes of `kind` to clients that present the token whose hash is
    `token_hash`, within `max_limits`, at most `max_sandboxes` at a time (those waiting
    for their client in the grace period count)."""

    def __init__(
        self,
        *,
        kind: str,
        token_hash: str,
        max_limits: Limits,
        grace_s: float = DEFAULT_GRACE_S,
        max_sandboxes: int = DEFAULT_MAX_SANDBOXES,
        pool: int = 2,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if kind not in HOST_KINDS:
            raise UsageError(f"a sandbox host runs {', '.join(HOST_KINDS)} sandboxes, not {kind!r}")
        require_websockets()
        self.kind = kind
        self.max_limits = max_limits
        self.grace_s = grace_s
        self.max_sandboxes = max_sandboxes
        self._token_hash = token_hash
        self._tls = tls
        self._pool = SandboxPool(pool)
        self._sessions: dict[str, _Session] = {}
        self._opening = 0
        self._call_ids = itertools.count(1)
        self._server: Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on host:port (0: any free port); the address bound."""
        from websockets.asyncio.server import serve

        self._server = await serve(
            self._handle,
            host,
            port,
            ssl=self._tls,
            process_request=self._authenticate,
            max_size=MAX_MESSAGE,
            compression=None,
            ping_interval=20,
            server_header=None,
        )
        address = next(iter(self._server.sockets)).getsockname()
        await self._pool.warm(self.kind, self.max_limits)
        return str(address[0]), int(address[1])

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for session in list(self._sessions.values()):
            await self._end(session)
        await self._pool.aclose()

    # -- connections ----------------------------------------------------------------------

    def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token and token_matches(token, self._token_hash):
            return None
        log.warning("sandbox host: refused a connection from %s (bad token)", _peer(connection))
        return connection.respond(http.HTTPStatus.UNAUTHORIZED, "a valid bearer token is needed\n")

    async def _handle(self, connection: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            session, resumed = await self._open(connection)
        except ConnectionClosed:
            return  # gone before its sandbox was open
        except (UsageError, SandboxError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await connection.send(encode_frame({"op": "error", "error": str(exc)}))
            return
        try:
            await self._serve(session, connection, resumed)
        finally:
            self._detach(session, connection)

    async def _open(self, connection: ServerConnection) -> tuple[_Session, bool]:
        """The session the client's `open` asks for (its own again, or a new one), now
        attached to `connection`, and whether it was resumed."""
        first = decode_frame(_as_bytes(await asyncio.wait_for(connection.recv(), OPEN_TIMEOUT_S)))
        if first.get("op") != "open":
            raise UsageError(f"the first message must be `open`, got {first.get('op')!r}")
        asked = first.get("session")
        session = self._sessions.get(asked) if isinstance(asked, str) else None
        resumed = session is not None
        if session is None:
            if len(self._sessions) + self._opening >= self.max_sandboxes:
                raise UsageError(
                    f"this sandbox host is full: it serves at most {self.max_sandboxes}"
                    " sandboxes at a time; try again later"
                )
            limits = cap_limits(dict(first.get("limits") or {}), self.max_limits)
            self._opening += 1  # counted while it starts: the maximum holds for racing opens
            try:
                backend = await self._pool.acquire(self.kind, limits, None)
            finally:
                self._opening -= 1
            session = _Session(secrets.token_urlsafe(16), backend)
            if isinstance(backend, KernelBackend):  # every HOST_KINDS one
                backend.call_relay = functools.partial(self._relay, session)
            self._sessions[session.id] = session
        elif session.connection is not None:
            await session.connection.close(1008, "the session was claimed by a new connection")
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        session.connection = connection
        log.info(
            "sandbox host: %s session %s for %s",
            "resumed" if resumed else "new",
            session.id[:6],
            _peer(connection),
        )
        return session, resumed

    async def _serve(self, session: _Session, connection: ServerConnection, resumed: bool) -> None:
        from websockets.exceptions import ConnectionClosed

        backend = session.backend
        ready = {
            "op": "ready",
            "session": session.id,
            "resumed": resumed,
            "limits": backend.limits.model_dump(),
            "enforces": sorted(backend.enforces),
        }
        try:
            await connection.send(encode_frame(ready))
            async for message in connection:
                msg = decode_frame(_as_bytes(message))
                op = msg.get("op")
                if op == "result":
                    waiter = session.calls.pop(int(msg.get("id") or 0), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(msg)
                elif op == "shutdown":
                    await self._end(session)
                    return
                else:
                    task = asyncio.create_task(self._answer(session, connection, msg))
                    session.requests.add(task)
                    task.add_done_callback(session.requests.discard)
        except ConnectionClosed:
            pass
        except SandboxError as exc:
            log.warning("sandbox host: session %s sent garbage: %s", session.id[:6], exc)

    def _detach(self, session: _Session, connection: ServerConnection) -> None:
        if session.connection is not connection:
            return  # ended, or claimed by a newer connection
        session.connection = None
        for waiter in session.calls.values():
            if not waiter.done():
                waiter.set_result(
                    {"op": "result", "ok": False, "error": "ConnectionError: the client went away"}
                )
        session.calls.clear()
        if session.id in self._sessions:
            session.expiry = asyncio.create_task(self._expire(session))

    async def _expire(self, session: _Session) -> None:
        await asyncio.sleep(self.grace_s)
        log.info("sandbox host: session %s not reclaimed in %gs", session.id[:6], self.grace_s)
        session.expiry = None
        await self._end(session)

    async def _end(self, session: _Session) -> None:
        if self._sessions.pop(session.id, None) is None:
            return
        if session.expiry is not None:
            session.expiry.cancel()
        for task in list(session.requests):
            task.cancel()
        await session.backend.aclose()

    # -- requests and relayed calls -------------------------------------------------------

    async def _answer(
        self, session: _Session, connection: ServerConnection, msg: dict[str, Any]
    ) -> None:
        try:
            reply = await self._run(session.backend, msg)
        except UsageError as exc:
            reply = {"op": "error", "error": str(exc)}
        except SandboxError as exc:
            reply = {"op": "error", "error": str(exc), "sandbox": True}
        with contextlib.suppress(Exception):  # a client gone: the reply is lost
            await connection.send(encode_frame({**reply, "id": msg.get("id")}))

    async def _run(self, backend: SandboxBackend, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        name = str(msg.get("name"))
        if op == "execute":
            return _done(await backend.execute(msg.get("code")))  # type: ignore[arg-type]
        if op == "load_context":
            await backend.load_context(unpack_bytes(msg.get("value")), name=name)
            return {"op": "value", "value": None}
        if op == "set":
            await backend.set_variable(name, unpack_bytes(msg.get("value")))
            return {"op": "value", "value": None}
        if op == "get":
            value = await backend.get_variable(name, rendered=bool(msg.get("rendered")))
            return {"op": "value", "value": pack_bytes(value)}
        if op == "list":
            return {"op": "value", "value": await backend.list_variables()}
        raise UsageError(f"unknown request {op!r}")

    async def _relay(self, session: _Session, frame: dict[str, Any]) -> dict[str, Any]:
        """A kernel's call, answered by the client that owns the session."""
        connection = session.connection
        if connection is None:
            return {"op": "result", "ok": False, "error": "ConnectionError: no client connected"}
        call_id = next(self._call_ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        session.calls[call_id] = waiter
        try:
            await connection.send(encode_frame({**frame, "id": call_id}))
            return await waiter
        except Exception as exc:  # noqa: BLE001 - the kernel's code gets it as its error
            return {"op": "result", "ok": False, "error": f"ConnectionError: {exc}"}
        finally:
            session.calls.pop(call_id, None)


def _done(result: ExecResult) -> dict[str, Any]:
    """An `ExecResult` as the kernel's ``done`` frame."""
    return {
        "op": "done",
        "stdout": result.stdout,
        "stderr": result.stderr,
        "error": result.error,
        "final": result.final_answer,
        "final_set": result.final_set,
        "display": result.display,
        "duration_s": result.duration_s,
    }


def _as_bytes(message: str | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.encode("utf-8")


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"
