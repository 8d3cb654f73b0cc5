"""What the remote sandbox's client and host share: the token check and the kernel
channel carried over a WebSocket.

One WebSocket binary message holds one frame of the kernel protocol (`encode_frame`:
the length header, then the JSON), so `KernelChannel` runs unchanged over it: the
client reads the host's frames from a `StreamReader` this module feeds, and writes
through `WebSocketWriter`. The only messages of its own are the first two: the
client's ``open`` {limits, session} and the host's ``ready`` {session, resumed,
limits, enforces}.

Tokens are random (`new_token`, 256 bits), so one SHA-256 is a safe hash at rest: a
file holds ``sha256:<hex>`` and the host compares digests in constant time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from rlmrt.errors import ConfigError, MissingDependencyError
from rlmrt.sandbox._channel import MAX_FRAME

if TYPE_CHECKING:
    from websockets.asyncio.connection import Connection

__all__ = [
    "HASH_PREFIX",
    "MAX_MESSAGE",
    "WebSocketWriter",
    "feed_reader",
    "hash_token",
    "new_token",
    "read_token_hash",
    "require_websockets",
    "token_matches",
]

HASH_PREFIX = "sha256:"
MAX_MESSAGE = MAX_FRAME + 4  # one frame and its header


def require_websockets() -> None:
    try:
        import websockets  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("websockets", "remote") from exc


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return HASH_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(presented: str, stored_hash: str) -> bool:
    """Whether `presented` is the token whose hash is `stored_hash` (constant time)."""
    return hmac.compare_digest(hash_token(presented).encode(), stored_hash.encode())


def read_token_hash(path: Path) -> str:
    """The token hash a file holds (`rlm sandbox token` writes it)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from exc
    digest = text.removeprefix(HASH_PREFIX)
    if not text.startswith(HASH_PREFIX) or len(digest) != 64 or not _is_hex(digest):
        raise ConfigError(
            f"the token file {path} does not hold a token hash ({HASH_PREFIX}<64 hex digits);"
            " `rlm sandbox token FILE` makes one"
        )
    return text


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


async def feed_reader(connection: Connection, reader: asyncio.StreamReader) -> None:
    """Copy the frames `connection` receives into `reader`, then end it (EOF) when the
    connection closes, however it closes."""
    from websockets.exceptions import ConnectionClosed

    try:
        async for message in connection:
            reader.feed_data(message if isinstance(message, bytes) else message.encode())
    except ConnectionClosed:
        pass
    finally:
        reader.feed_eof()


class WebSocketWriter:
    """A `FrameWriter` sending what was written since the last `drain` as one message
    (the channel writes one whole frame, then drains), after `prefix` (a Kubernetes
    stream's channel byte); in pieces of at most `max_message` bytes each when set (a
    byte stream whose reader does not need a message per frame, as a pod's stdin)."""

    def __init__(
        self, connection: Connection, *, prefix: bytes = b"", max_message: int | None = None
    ) -> None:
        self.connection = connection
        self.prefix = prefix
        self.piece = max_message - len(prefix) if max_message else None
        self._pending: list[bytes] = []
        self._closing: asyncio.Task[None] | None = None

    def write(self, data: bytes) -> None:
        self._pending.append(data)

    async def drain(self) -> None:
        from websockets.exceptions import ConnectionClosed

        data, self._pending = b"".join(self._pending), []
        if not data:
            return
        piece = self.piece or len(data)
        try:
            for start in range(0, len(data), piece):
                await self.connection.send(self.prefix + data[start : start + piece])
        except ConnectionClosed as exc:
            raise ConnectionResetError(f"the connection closed ({exc})") from exc

    def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await self.drain()  # the shutdown frame
        with contextlib.suppress(Exception):
            await self.connection.close()
        # Python 3.10 leaves a TLS transport marked open when the peer closed first (the
        # host does, after the closing handshake), and its __del__ then warns of an
        # unclosed transport; 3.11 marks it. Closing it again is a no-op elsewhere.
        self.connection.transport.close()

    async def wait_closed(self) -> None:
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing
