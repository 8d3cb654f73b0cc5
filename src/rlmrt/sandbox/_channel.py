"""The host end of the kernel protocol (see `rlmrt.sandbox.kernel` for the messages).

`KernelChannel` only needs an `asyncio.StreamReader` / `StreamWriter` pair, so every
out-of-process backend (subprocess, container attach, pod exec, WebSocket) reuses it:
the backend decides how the kernel starts and how bytes travel, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from rlmrt.errors import KernelTimeout, SandboxError
from rlmrt.sandbox.base import HostBridge, call_host
from rlmrt.sandbox.kernel import HOST_FUNCTIONS, unpack_bytes

__all__ = [
    "MAX_FRAME",
    "CallRelay",
    "FrameWriter",
    "KernelChannel",
    "KernelTimeout",
    "decode_frame",
    "encode_frame",
]

MAX_FRAME = 256 << 20
_HEADER = struct.Struct(">I")


def encode_frame(msg: dict[str, Any]) -> bytes:
    data = json.dumps(msg, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if len(data) > MAX_FRAME:
        raise SandboxError(f"a message of {len(data)} bytes is over the {MAX_FRAME} byte frame cap")
    return _HEADER.pack(len(data)) + data


def decode_frame(frame: bytes, *, max_frame: int = MAX_FRAME) -> dict[str, Any]:
    """The message in one whole frame (the inverse of `encode_frame`)."""
    if len(frame) < _HEADER.size:
        raise SandboxError("a frame shorter than its header")
    (size,) = _HEADER.unpack_from(frame)
    if size > max_frame or size != len(frame) - _HEADER.size:
        raise SandboxError(f"a frame of {len(frame)} bytes does not hold the {size} it announces")
    try:
        msg = json.loads(frame[_HEADER.size :].decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SandboxError(f"garbage instead of a frame: {frame[:80]!r}") from exc
    if not isinstance(msg, dict):
        raise SandboxError(f"a frame that is not a JSON object: {frame[:80]!r}")
    return msg


class FrameWriter(Protocol):
    """Where the channel writes frames: an `asyncio.StreamWriter`, or anything with its
    `write` / `drain` / `close` (a WebSocket carrying one frame per message)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


#: answers a kernel's ``call`` frame with the ``result`` frame for it, instead of the
#: bridge: a sandbox host passes its kernels' calls on to the client that owns the models
CallRelay = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class KernelChannel:
    """Requests to one kernel, serving the kernel's calls to the host while they wait.

    `exit_status`, when given, describes how the kernel ended (exit code, signal) for
    the error raised when the stream closes.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: FrameWriter,
        bridge: HostBridge | None,
        *,
        max_frame: int = MAX_FRAME,
        exit_status: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.bridge = bridge
        self.max_frame = max_frame
        self._exit_status = exit_status
        self._next_id = 0
        self._lock = asyncio.Lock()
        self._broken: str | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self.relay: CallRelay | None = None

    @property
    def broken(self) -> bool:
        return self._broken is not None

    async def receive(self, *, timeout: float | None = None) -> dict[str, Any]:
        """One frame from the kernel (used for its first `ready` message)."""
        return await self._read(asyncio.get_running_loop().time() + timeout if timeout else None)

    async def request(self, msg: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send `msg` (an `id` is added) and return the kernel's reply to it."""
        async with self._lock:
            if self._broken is not None:
                raise SandboxError(f"the kernel channel is unusable: {self._broken}")
            self._next_id += 1
            mid = self._next_id
            deadline = asyncio.get_running_loop().time() + timeout if timeout else None
            try:
                await self.send({**msg, "id": mid})
                while True:
                    frame = await self._read(deadline)
                    if frame.get("op") == "call":
                        task = asyncio.create_task(self._serve_call(frame))
                        self._calls.add(task)
                        task.add_done_callback(self._calls.discard)
                    elif frame.get("id") == mid:
                        return frame
                    else:
                        raise await self._fail(
                            f"unexpected message from the kernel: {frame!r:.200}"
                        )
            finally:
                for task in list(self._calls):
                    task.cancel()

    async def send(self, msg: dict[str, Any]) -> None:
        if self._broken is not None:
            raise SandboxError(f"the kernel channel is unusable: {self._broken}")
        try:
            self.writer.write(encode_frame(msg))
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise await self._fail(f"could not write to the kernel ({exc})") from exc

    async def aclose(self) -> None:
        for task in list(self._calls):
            task.cancel()
        if self._broken is None:
            with contextlib.suppress(Exception):
                self.writer.write(encode_frame({"op": "shutdown"}))
        self._broken = self._broken or "closed"
        with contextlib.suppress(Exception):
            self.writer.close()

    # -- internals ------------------------------------------------------------------------

    async def _read(self, deadline: float | None) -> dict[str, Any]:
        try:
            header = await self._within(self.reader.readexactly(4), deadline)
            (size,) = _HEADER.unpack(header)
            if size > self.max_frame:
                raise await self._fail(
                    f"the kernel sent a frame of {size} bytes, over the {self.max_frame} byte cap"
                )
            data = await self._within(self.reader.readexactly(size), deadline)
        except asyncio.IncompleteReadError as exc:
            raise await self._fail("the kernel closed the channel", died=True) from exc
        except (ConnectionError, OSError) as exc:
            raise await self._fail(f"the kernel channel failed ({exc})", died=True) from exc
        try:
            msg = json.loads(data.decode("utf-8", "surrogatepass"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise await self._fail(f"the kernel sent garbage: {data[:80]!r}") from exc
        if not isinstance(msg, dict):
            raise await self._fail(f"the kernel sent garbage: {data[:80]!r}")
        return msg

    async def _within(self, aw: Awaitable[bytes], deadline: float | None) -> bytes:
        if deadline is None:
            return await aw
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(aw, max(remaining, 0.0))
        except asyncio.TimeoutError as exc:
            self._broken = "a request timed out"
            raise KernelTimeout("the kernel did not answer in time") from exc

    async def _fail(self, what: str, *, died: bool = False) -> SandboxError:
        self._broken = what
        if self._exit_status is not None:
            with contextlib.suppress(Exception):
                what = f"{what}: {await self._exit_status()}"
        elif died:
            what = f"{what} (the kernel died)"
        return SandboxError(what)

    async def _serve_call(self, frame: dict[str, Any]) -> None:
        if self.relay is not None:
            with contextlib.suppress(SandboxError):
                await self.send({**await self.relay(frame), "id": frame.get("id")})
            return
        fn = str(frame.get("fn"))
        try:
            value = await call_host(self.bridge, fn, unpack_bytes(frame.get("args")))
            if HOST_FUNCTIONS[fn].batched:
                # failed items travel as data; the kernel turns them into QueryFailed
                value = [
                    {"ok": False, "error": str(item)}
                    if isinstance(item, BaseException)
                    else {"ok": True, "value": item}
                    for item in value
                ]
            reply: dict[str, Any] = {
                "op": "result",
                "id": frame.get("id"),
                "ok": True,
                "value": value,
            }
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - goes back to the user's code as its error
            reply = {
                "op": "result",
                "id": frame.get("id"),
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
            }
        with contextlib.suppress(SandboxError):
            await self.send(reply)
