"""Time and memory accounting for the local sandbox.

`Clock.tick` is called from every loop body, comprehension and function entry of the
user's code (inserted by `_policy`), and from `TickingIter`, the adapter that makes C
consumers (``list(...)``, ``sum(...)``, ``"".join(...)``) pull unbounded iterables
item by item through Python, where the deadline and the memory budget can be checked
and where asynchronous exceptions from the watchdog can land.
"""

from __future__ import annotations

import ctypes
import operator
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MB = 1 << 20
_SLOW_EVERY = 256  # ticks between deadline checks
_RSS_EVERY_S = 0.02  # seconds between RSS reads from ticks
_BIG_REQUEST = 1 << 20  # size estimates below this are not checked

#: at most this many items are consumed by C code without going through a tick
SMALL_ITERABLE = 200_000


class _Injected(BaseException):
    """An interrupt raised into the user's code from outside, again every 0.1 s until
    the code unwinds. Each one lands while the last is being handled, so the interpreter
    chains them: a cell that fought its timeout for a minute carried ~900 linked
    contexts, and rendering that chain crashed pytest (INTERNALERROR) and would crash any
    traceback printer. What came before an interrupt is no part of it: no context."""

    @property
    def __context__(self) -> BaseException | None:
        return None

    @__context__.setter
    def __context__(self, value: BaseException | None) -> None:
        pass


class SandboxTimeout(_Injected):
    """Raised into the user's code when the execute ran past `exec_timeout_s`.

    A BaseException so that `except Exception:` in user code does not swallow it.
    """


class SandboxMemoryExceeded(_Injected):
    """Raised into the user's code when the process grew past `memory_mb`."""


_statm_fd: int | None = None


def rss_bytes() -> int:
    """Resident set size of this process, or 0 where /proc is not available.

    One C call on a descriptor kept open: an asynchronous interrupt landing here
    cannot leave a file object behind.
    """
    global _statm_fd
    try:
        if _statm_fd is None:
            _statm_fd = os.open("/proc/self/statm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        return int(os.pread(_statm_fd, 128, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def inject(thread_ident: int, exc_type: type[BaseException]) -> None:
    """Raise `exc_type` asynchronously in the thread, at its next bytecode boundary."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_ident), ctypes.py_object(exc_type)
    )


class Clock:
    """Deadline and memory checks for the executes of one sandbox."""

    __slots__ = (
        "deadline",
        "expired",
        "last_rss",
        "memory_exceeded",
        "memory_mb",
        "n",
        "owner",
        "rss_base",
        "rss_limit",
    )

    def __init__(self, memory_mb: int | None) -> None:
        self.memory_mb = memory_mb
        self.rss_limit = memory_mb * _MB if memory_mb else 0
        self.n = _SLOW_EVERY
        self.deadline: float | None = None
        self.expired = False
        self.memory_exceeded = False
        self.owner = 0
        self.rss_base = 0
        self.last_rss = 0.0

    def arm(self, timeout_s: float | None, owner: int) -> None:
        """Start one execute that `owner` (a thread ident) will run."""
        now = time.monotonic()
        self.deadline = now + timeout_s if timeout_s is not None else None
        self.expired = False
        self.memory_exceeded = False
        self.owner = owner
        self.rss_base = rss_bytes() if self.rss_limit else 0
        self.last_rss = now
        self.n = _SLOW_EVERY

    def expire(self) -> None:
        """Make every following tick raise (called by the watchdog)."""
        self.expired = True
        self.n = 0

    def tick(self) -> bool:
        self.n -= 1
        if self.n <= 0:
            self._slow()
        return True

    def _slow(self) -> None:
        if threading.get_ident() != self.owner:
            # a worker abandoned after a timeout: end it at its next tick
            raise SandboxTimeout
        if self.expired:
            raise SandboxTimeout
        if self.memory_exceeded:
            raise SandboxMemoryExceeded
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            self.expire()
            raise SandboxTimeout
        if self.rss_limit and now - self.last_rss >= _RSS_EVERY_S:
            self.last_rss = now
            if self.over_memory():
                self.memory_exceeded = True
                self.n = 0
                raise SandboxMemoryExceeded
        self.n = _SLOW_EVERY

    def over_memory(self) -> bool:
        return bool(self.rss_limit) and rss_bytes() - self.rss_base > self.rss_limit

    def growth(self) -> int:
        return max(0, rss_bytes() - self.rss_base)

    # size estimates ------------------------------------------------------------

    def check_size(self, nbytes: float, what: str) -> None:
        """Refuse to build something of about `nbytes` bytes if over the limit.

        Big requests also count what this execute has grown so far, so doubling a
        string in a loop stops at the limit rather than at twice the limit.
        """
        if not self.rss_limit or nbytes < _BIG_REQUEST:
            return
        if nbytes > self.rss_limit or nbytes + self.growth() > self.rss_limit:
            raise MemoryError(
                f"{what} would need about {human_bytes(nbytes)}, over the sandbox "
                f"memory limit (memory_mb={self.memory_mb})"
            )

    def check_items(self, iterable: object, what: str, item_bytes: int = 8) -> None:
        """Refuse to materialise an iterable whose known length is over the limit."""
        if self.rss_limit and type(iterable) not in FINITE_TYPES:
            try:
                n = operator.length_hint(iterable, -1)
            except (TypeError, ValueError, OverflowError):
                n = -1
            if n > 0:
                self.check_size(n * item_bytes, f"{what} of {n} items")

    def bounded(self, iterable: Any) -> Any:
        """`iterable` as is if C code may consume it at once, else a ticking adapter."""
        kind = type(iterable)
        if kind in FINITE_TYPES or kind is TickingIter or not hasattr(kind, "__iter__"):
            return iterable
        try:
            n = operator.length_hint(iterable, -1)
        except (TypeError, ValueError, OverflowError):
            n = -1
        if 0 <= n <= SMALL_ITERABLE:
            return iterable
        return TickingIter(iterable, self)


FINITE_TYPES = frozenset(
    {
        list,
        tuple,
        str,
        bytes,
        bytearray,
        dict,
        set,
        frozenset,
        type({}.keys()),
        type({}.values()),
        type({}.items()),
    }
)


class TickingIter:
    """Iterates `iterable` one Python call per item, ticking the clock each time."""

    __slots__ = ("_clock", "_it")

    def __init__(self, iterable: Iterable[Any], clock: Clock) -> None:
        self._it: Iterator[Any] = iter(iterable)
        self._clock = clock

    def __iter__(self) -> TickingIter:
        return self

    def __next__(self) -> Any:
        self._clock.tick()
        return next(self._it)

    def __length_hint__(self) -> int:
        return operator.length_hint(self._it)

    def __repr__(self) -> str:
        return f"<iterator over {type(self._it).__name__}>"
