"""What the MCP tools do, without MCP: runs, sessions, projects and context search.

`RLMService` holds the server's state (the active project, its sessions and context
searchers). Every method raises rlmrt errors for bad input; `server.py` turns them into
MCP tool errors. Settings are read afresh at each call, so an edited rlm.toml counts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rlmrt.config import RLMConfig, config_with
from rlmrt.context.search import ContextSearch, check_search_args
from rlmrt.errors import RunError, UsageError
from rlmrt.events import Event, EventHandler
from rlmrt.mcp.sessions import Session, SessionPool
from rlmrt.memory import Verdict, open_memory
from rlmrt.observe.describe import describe
from rlmrt.projects import Project, ProjectRegistry, load_project_config
from rlmrt.sandbox.kernel import render_value

Progress = Callable[[str], Awaitable[None]]
NO_PROJECT = ""  # the pool key of sessions made without a project
MAX_VALUE_CHARS = 100_000


def progress_message(event: Event) -> str | None:
    """The progress message of `event` (None for events not worth one): its one-line
    description, with the depth of a sub-run's events in front."""
    line = describe(event)
    if line is None or event.depth == 0:
        return line
    return f"depth {event.depth}: {line}"


def plain_value(value: Any) -> Any:
    """`value` as JSON data when it is and is small, else its rendering, cut to
    MAX_VALUE_CHARS characters."""
    try:
        if len(json.dumps(value, allow_nan=False)) <= MAX_VALUE_CHARS:
            return value
    except (TypeError, ValueError, RecursionError):
        pass
    text = render_value(value)
    if len(text) <= MAX_VALUE_CHARS:
        return text
    return text[:MAX_VALUE_CHARS] + f" ... [truncated: {len(text):,} characters in all]"


class RLMService:
    """The state of one MCP server: its active project, sessions and searchers."""

    def __init__(
        self,
        *,
        project: str | None = None,
        config_file: Path | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.registry = ProjectRegistry()
        self.project: Project | None = self.registry.active(project)
        self.config_file = config_file
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self.sessions = SessionPool()
        # get every event of the server's sessions (their code executions)
        self.handlers: list[EventHandler] = []
        self._searchers: dict[str, ContextSearch] = {}

    # -- settings ------------------------------------------------------------------------
    @property
    def project_key(self) -> str:
        return self.project.name if self.project is not None else NO_PROJECT

    def config(self, **overrides: Any) -> RLMConfig:
        config = load_project_config(self.project, config_file=self.config_file, **self.overrides)
        return config_with(config, **overrides) if overrides else config

    def root(self) -> Path:
        return self.project.root if self.project is not None else Path.cwd()

    def searcher(self) -> ContextSearch:
        """The project's searcher; the MCP tools search the local index by default."""
        key = self.project_key
        if key not in self._searchers:
            config = self.config()
            if config.context.provider is None:
                config = config_with(config, context_provider="local")
            self._searchers[key] = ContextSearch(config)
        return self._searchers[key]

    # -- rlm_completion ------------------------------------------------------------------
    def _context(self, context: str | None, files: list[str] | None) -> Any:
        if context is not None and files:
            raise UsageError("context, files: give the context as text or as files, not both")
        if not files:
            return context
        paths = []
        for i, name in enumerate(files):
            path = Path(name).expanduser()
            path = path if path.is_absolute() else self.root() / path
            if not path.exists():
                raise UsageError(f"files[{i}]: no such file or folder: {path}")
            paths.append(path)
        return paths[0] if len(paths) == 1 else paths

    async def complete(
        self,
        prompt: str,
        *,
        context: str | None = None,
        files: list[str] | None = None,
        settings: dict[str, Any] | None = None,
        progress: Progress | None = None,
        output_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One RLM run; `progress` gets a message for each step worth one;
        `output_schema` (a JSON Schema) asks for a typed answer, given as `output`."""
        from rlmrt.engine.rlm import RLM, RunResult

        if not prompt.strip():
            raise UsageError("prompt: must not be empty")
        value = self._context(context, files)
        config = self.config(**(settings or {}))
        rlm = RLM(config=config)
        result: RunResult | None = None
        try:
            async for item in rlm.astream(prompt, value, output_type=output_schema):
                if isinstance(item, RunResult):
                    result = item
                elif progress is not None:
                    message = progress_message(item)
                    if message is not None:
                        await progress(message)
        finally:
            await rlm.aclose()
        assert result is not None  # astream always ends with the result
        if result.error is not None:  # a stream ends with its result; the tool fails
            raise RunError(result.error)
        done = {
            "answer": result.answer,
            "partial": result.partial,
            "stop_reason": result.stop_reason,
            "usage": result.usage.to_dict(),
            "run_id": result.run_id,
            "iterations": result.iterations,
            "project": self.project.name if self.project else None,
        }
        if output_schema is not None:
            done["output"] = result.output
        return done

    # -- memory --------------------------------------------------------------------------

    def remember(self, text: str, *, tags: list[str], pin: bool) -> dict[str, Any]:
        with open_memory(self.config()) as store:
            return store.remember(text, tags=tags, pinned=pin).to_dict()

    def recall(self, query: str, *, k: int) -> dict[str, Any]:
        with open_memory(self.config()) as store:
            return {"items": [item.to_dict() for item in store.recall(query, k=k)]}

    def forget(self, item_id: str) -> dict[str, Any]:
        with open_memory(self.config()) as store:
            if not store.forget(item_id):
                raise UsageError(f"id: no memory item {item_id!r} in this project")
        return {"forgotten": item_id}

    def feedback(
        self, run_id: str, verdict: Verdict, *, note: str | None, expected: str | None
    ) -> dict[str, Any]:
        from rlmrt.memory import give_feedback

        given = give_feedback(self.config(), run_id, verdict, note=note, expected=expected)
        return {"run_id": given.run_id, "verdict": given.verdict}

    # -- sessions ------------------------------------------------------------------------
    async def execute(self, code: str, *, session: str, sandbox: str | None) -> dict[str, Any]:
        live = await self._session(session, sandbox)
        result = await live.code.aexecute(code)
        return {
            "session": live.name,
            "sandbox": live.kind,
            "stdout": result.stdout,
            "stderr": result.stderr,
            "error": result.error,
            "display": result.display,
            "final_answer": result.final_answer if result.final_set else None,
            "duration_s": round(result.duration_s, 6),
        }

    async def get_variables(self, *, session: str, names: list[str] | None) -> dict[str, Any]:
        live = self.sessions.find(self.project_key, session)
        kinds = await live.code.avariables()
        wanted = sorted(kinds) if names is None else names
        values: dict[str, Any] = {}
        for i, name in enumerate(wanted):
            if name not in kinds:
                raise UsageError(
                    f"names[{i}]: no variable {name!r} in session {session!r}"
                    f" (variables: {', '.join(sorted(kinds)) or 'none'})"
                )
            values[name] = plain_value(await live.code.aget_variable(name, rendered=True))
        return {"session": live.name, "types": kinds, "values": values}

    async def set_variable(
        self, *, session: str, name: str, value: Any, sandbox: str | None
    ) -> dict[str, Any]:
        live = await self._session(session, sandbox)
        try:
            await live.code.aset_variable(name, value)
        except (ValueError, UsageError) as exc:
            raise UsageError(f"name: {exc}") from exc
        kinds = await live.code.avariables()
        return {"session": live.name, "name": name, "type": kinds.get(name)}

    async def _session(self, name: str, sandbox: str | None) -> Session:
        return await self.sessions.get_or_create(
            self.project_key, name, self.config(), self.searcher(), sandbox, self.handlers
        )

    async def clear(self, *, session: str) -> dict[str, Any]:
        """Drop the session's variables: its sandbox is replaced by a fresh one."""
        old = await self.sessions.destroy(self.project_key, session)
        await self._session(session, old.kind)
        return {"session": session, "sandbox": old.kind, "cleared": True}

    async def list_sessions(self) -> dict[str, Any]:
        found = []
        for name in self.sessions.names(self.project_key):
            found.append(await self.sessions.find(self.project_key, name).describe())
        return {"project": self.project.name if self.project else None, "sessions": found}

    async def destroy(self, *, session: str) -> dict[str, Any]:
        old = await self.sessions.destroy(self.project_key, session)
        return {"session": old.name, "destroyed": True}

    # -- projects ------------------------------------------------------------------------
    def set_project(self, name: str) -> dict[str, Any]:
        try:
            self.project = self.registry.get(name)
        except UsageError as exc:
            raise UsageError(f"name: {exc}") from exc
        return self.project.to_dict(current=self.registry.current_name() == name)

    def list_projects(self) -> dict[str, Any]:
        current = self.registry.current_name()
        return {
            "active": self.project.name if self.project else None,
            "current": current,
            "projects": [p.to_dict(current=p.name == current) for p in self.registry.list()],
        }

    # -- context -------------------------------------------------------------------------
    async def context_search(self, query: str, max_tokens: int) -> dict[str, Any]:
        check_search_args(query, max_tokens)
        searcher = self.searcher()
        hits = await searcher.search(query, max_tokens)
        return {
            "query": query,
            "provider": searcher.config.context.provider,
            "tokens": sum(hit["tokens"] for hit in hits),
            "hits": hits,
        }

    async def index_project(self, *, rebuild: bool) -> dict[str, Any]:
        import asyncio

        from rlmrt.context.local_index import LocalIndex

        config = self.config()
        index = LocalIndex(config.context.root or Path.cwd(), index_path=config.context.index)
        try:
            stats = await asyncio.to_thread(index.refresh, rebuild=rebuild)
        finally:
            index.close()
        return {"root": str(index.root), "index": str(index.index_path), **asdict(stats)}

    # -- runs ----------------------------------------------------------------------------
    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        from rlmrt.observe.trajectory import list_runs

        folder = self.config().trajectory.dir
        return [
            {"run_id": run.run_id, "uri": f"rlm://runs/{run.run_id}"}
            for run in list_runs(folder)[:limit]
        ]

    def run(self, run_id: str) -> dict[str, Any]:
        from rlmrt.observe.summary import read_summary
        from rlmrt.observe.trajectory import find_run

        found = find_run(self.config().trajectory.dir, run_id)
        events, summary = read_summary(found.path, run_id=found.run_id)
        started, finished = summary.root, summary.finished
        return {
            "run_id": found.run_id,
            "prompt": started.prompt if started else None,
            "model": started.model if started else None,
            "answer": finished.answer if finished else None,
            "partial": finished.partial if finished else None,
            "stop_reason": finished.stop_reason if finished else None,
            "usage": finished.usage if finished else None,
            "events": [event.to_dict() for event in events],
        }

    async def aclose(self) -> None:
        try:
            await self.sessions.aclose()
        finally:
            searchers, self._searchers = list(self._searchers.values()), {}
            for searcher in searchers:
                await searcher.aclose()
