"""The tree-wide limit on concurrent child runs (`max_concurrent_runs`).

Every child run holds one slot of its tree from before its sandbox starts until the
sandbox is closed, so a batch of 1,000 prompts runs a few children at a time and the
rest queue. While a run's own code waits on child runs, it lends its slot to them
and takes one back before its code goes on: a tree deeper than one level cannot
deadlock on its slots (the waiting run's sandbox, idle, is the only one beyond them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal

__all__ = ["RunSlot", "RunSlots"]

SlotState = Literal["none", "held", "lent", "retaking"]


class RunSlots:
    """The slots of one run tree."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = asyncio.Semaphore(limit)

    async def take(self) -> float:
        """Wait for a free slot and take it; the seconds waited (0.0: one was free)."""
        if not self._free.locked():
            await self._free.acquire()
            return 0.0
        started = time.perf_counter()
        await self._free.acquire()
        return time.perf_counter() - started

    def give_back(self) -> None:
        self._free.release()


class RunSlot:
    """One run's share of its tree's slots. `waited(seconds)` is told of every wait."""

    def __init__(self, slots: RunSlots, waited: Callable[[float], None]) -> None:
        self._slots = slots
        self._waited = waited
        self._state: SlotState = "none"
        self._children = 0  # child runs this run's code is waiting on

    async def take(self) -> None:
        seconds = await self._slots.take()
        self._state = "held"
        if seconds > 0:
            self._waited(seconds)

    def release(self) -> None:
        if self._state == "held":
            self._slots.give_back()
        self._state = "none"

    @contextlib.asynccontextmanager
    async def lent(self) -> AsyncIterator[None]:
        """Around a wait on a child run: the slot (if held) is free meanwhile."""
        self._children += 1
        if self._state == "held":
            self._state = "lent"
            self._slots.give_back()
        try:
            yield
        finally:
            self._children -= 1
            if self._children == 0 and self._state == "lent":
                self._state = "retaking"  # a child starting meanwhile leaves it to us
                await self.take()
                if self._children > 0:  # one started while this run waited
                    self._state = "lent"
                    self._slots.give_back()
