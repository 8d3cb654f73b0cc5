"""Named, persistent sandboxes for the MCP tools `execute_python` & co.

A session is an engine `CodeSession` (a sandbox of any registered kind, with the
configured quotas, whose variables persist between calls, and whose executions are
`CodeExecuted` events for the server's handlers). Sessions belong to a project: the
pool is keyed by project, so one project never sees another's sessions. Their code
may search the context; it runs no model.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from rlmrt.config import RLMConfig, config_with
from rlmrt.context.search import ContextSearch
from rlmrt.engine.session import CodeSession
from rlmrt.errors import ConfigError, UsageError
from rlmrt.events import EventHandler
from rlmrt.sandbox.facade import SANDBOXES

MAX_SESSIONS = 32
_SESSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NO_MODEL = (
    "{fn} is not available in an execute_python session (it has no model run); "
    "use the rlm_completion tool for work that needs models"
)


@dataclass
class Session:
    name: str
    kind: str
    code: CodeSession
    created: float = field(default_factory=time.time)

    async def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sandbox": self.kind,
            "created": self.created,
            "executions": self.code.executions,
            "variables": await self.code.avariables(),
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
        handlers: list[EventHandler] | None = None,
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
        code = CodeSession(
            config_with(config, sandbox=chosen),
            searcher=searcher,
            handlers=handlers if handlers is not None else [],
            no_run=NO_MODEL,
        )
        await code.astart()  # a sandbox that cannot start fails here, not at a later call
        session = Session(name=name, kind=chosen, code=code)
        self._sessions[key] = session
        return session

    async def destroy(self, project: str, name: str) -> Session:
        session = self.find(project, name)
        del self._sessions[(project, name)]
        await session.code.aclose()
        return session

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.code.aclose()
