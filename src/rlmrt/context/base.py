"""The context provider base class, the hit it returns, and the provider registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from rlmrt._registry import LazyRegistry

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters per token), at least 1."""
    return max(1, (len(text) + 3) // 4)


@dataclass(frozen=True)
class ContextHit:
    """One relevant piece of the corpus, with where it came from.

    `source` is the file (relative to the indexed folder for the local index),
    `start_line`/`end_line` are 1-based and inclusive, `score` is higher-is-better
    and only comparable within one result list, `tokens` is the estimate that was
    charged against the budget.
    """

    source: str
    start_line: int
    end_line: int
    title: str
    text: str
    score: float
    tokens: int


class ContextProvider(ABC):
    """Finds the parts of a corpus that matter for a query, within a token budget.

    A provider is built from the settings by `from_config` (`PROVIDERS` names the
    class). One that keeps its own copy of the corpus (the local index) declares
    `refreshable` and brings the copy up to date in `refresh()`; the others are
    always current.
    """

    refreshable: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_config(cls, config: RLMConfig) -> ContextProvider:
        """The provider the settings describe."""

    def refresh(self) -> object:
        """Bring the provider's copy of the corpus up to date (blocking: call it in a
        thread from async code); only for providers that declare `refreshable`."""
        raise NotImplementedError(f"{type(self).__name__} has nothing to refresh")

    @abstractmethod
    async def search(
        self, query: str, *, max_tokens: int = 2000, limit: int | None = None
    ) -> list[ContextHit]:
        """The best hits for `query`, best first, whose `tokens` sum to <= `max_tokens`."""

    async def aclose(self) -> None:
        """Release files, connections and sockets. Safe to call twice."""

    async def __aenter__(self) -> ContextProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


PROVIDERS: LazyRegistry[ContextProvider] = LazyRegistry(
    "context provider",
    {
        "local": "rlmrt.context.local_index:LocalIndex",
        "snipara": "rlmrt.context.snipara:SniparaProvider",
    },
)
