"""Named, persistent sandboxes for the MCP tools `execute_python` & co.

A session is one started sandbox backend of any registered kind, with the configured
quotas, whose variables persist between calls. Sessions belong to a project: the
pool is keyed by project, so one project never sees another's sessions.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rlmrt.config import RLMConfig
from rlmrt.context.search import ContextSearch
from rlmrt.errors import ConfigError, UsageError
from rlmrt.sandbox.base import QueryFailed, SandboxBackend
from rlmrt.sandbox.facade import SANDBOXES, create_backend

MAX_SESSIONS = 32
_SESSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NO_MODEL = (
    "{fn} is not available in an execute_python session (it has no model run); "
    "use the rlm_completion tool for work that needs models"
)


class SessionBridge:
    """What code in an MCP session may ask of the host: only `context_search`."""

    def __init__(self, searcher: ContextSearch) -> None:
        self.searcher = searcher

    async def llm_query(self, prompt: str, model: str | None = None) -> str:
        raise UsageError(NO_MODEL.format(fn="llm_query"))

    async def llm_query_batched(
        self, prompts: Sequence[str], model: str | None = None
    ) -> list[str | QueryFailed]:
        raise UsageError(NO_MODEL.format(fn="llm_query_batched"))

    async def rlm_query(self, prompt: str, context: Any = None) -> str:
        raise UsageError(NO_MODEL.format(fn="rlm_query"))

    async def rlm_query_batched(
        self, prompts: Sequence[str], contexts: Sequence[Any] | None = None
    ) -> list[str | QueryFailed]:
        raise UsageError(NO_MODEL.format(fn="rlm_query_batched"))

    async def context_search(self, query: str, max_tokens: int = 2000) -> list[dict[str, Any]]:
        return await self.searcher.search(query, max_tokens)


@dataclass
class Session:
    name: str
    kind: str
    backend: SandboxBackend
    created: float = field(default_factory=time.time)
    executions: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sandbox": self.kind,
            "created": self.created,
            "executions": self.executions,
            "variables": await self.backend.list_variables(),
        }


def check_session_name(name: str) -> str:
    if not _SESSION_NAME.match(name):
        raise UsageError(f"session: bad name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


class SessionPool:
    """The sessions of every project of one server."""

    def __init__(self, *, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[tuple[str, str], Session] = {}

    def names(self, project: str) -> list[str]:
        return sorted(name for key, name in self._sessions if key == project)

    def find(self, project: str, name: str) -> Session:
        session = self._sessions.get((project, check_session_name(name)))
        if session is None:
            known = ", ".join(self.names(project)) or "none"
            raise UsageError(f"session: no session named {name!r} (sessions: {known})")
        return session

    async def get_or_create(
        self,
        project: str,
        name: str,
        config: RLMConfig,
        searcher: ContextSearch,
        kind: str | None = None,
    ) -> Session:
        key = (project, check_session_name(name))
        if kind is not None:
            try:
                SANDBOXES.check(kind)
            except ConfigError as exc:
                raise ConfigError(f"sandbox: {exc}") from exc
        session = self._sessions.get(key)
        if session is not None:
            if kind is not None and kind != session.kind:
                raise UsageError(
                    f"sandbox: session {name!r} is a {session.kind} sandbox, not {kind};"
                    " destroy it first or use another session name"
                )
            return session
        chosen = kind or config.sandbox.kind
        if len(self._sessions) >= self.max_sessions:
            raise UsageError(f"session: {self.max_sessions} sessions are open; destroy one first")
        backend = create_backend(chosen, limits=config.limits, bridge=SessionBridge(searcher))
        try:
            await backend.start()
        except BaseException:
            await backend.aclose()
            raise
        session = Session(name=name, kind=chosen, backend=backend)
        self._sessions[key] = session
        return session

    async def destroy(self, project: str, name: str) -> Session:
        session = self.find(project, name)
        del self._sessions[(project, name)]
        await session.backend.aclose()
        return session

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.backend.aclose()
