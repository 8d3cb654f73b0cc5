"""The MCP server: rlmrt's tools and run resources on the official `mcp` SDK (2.x).

Every tool has a typed signature, so its JSON schema is exact and the SDK rejects
bad arguments naming the field. rlmrt errors become tool errors (`isError`, one
message naming the bad argument); nothing sends a traceback to the client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, TypeVar

from pydantic import Field

from rlmrt.config import optional_setting
from rlmrt.errors import MissingDependencyError, RLMError
from rlmrt.mcp.service import RLMService

try:
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ResourceError, ToolError
except ImportError as exc:  # pragma: no cover - the tests run with the extra installed
    raise MissingDependencyError("mcp", "mcp") from exc

T = TypeVar("T")
SERVER_NAME = "rlmrt"
INSTRUCTIONS = (
    "rlmrt runs Recursive Language Models: rlm_completion answers a question over text or "
    "files far larger than a context window by letting a model explore them in a Python "
    "REPL. execute_python and the *_repl_context tools give you persistent named REPL "
    "sessions; context_search finds the passages of the project's files that matter."
)

Session = Annotated[
    str,
    Field(
        description="Session name (1-64 letters, digits, '.', '_' or '-').",
        min_length=1,
        max_length=64,
    ),
]
# rlm_completion's settings: type, bounds and description come from RLMConfig's fields
if TYPE_CHECKING:
    SandboxKind: TypeAlias = str | None
    Model: TypeAlias = str | None
    MaxDepth: TypeAlias = int | None
    MaxIterations: TypeAlias = int | None
    MaxCostUsd: TypeAlias = float | None
else:
    SandboxKind = optional_setting("sandbox")
    Model = optional_setting("model")
    MaxDepth = optional_setting("max_depth")
    MaxIterations = optional_setting("max_iterations")
    MaxCostUsd = optional_setting("max_cost_usd")


async def _guard(work: Awaitable[T]) -> T:
    """rlmrt errors as MCP tool errors: the message only, no traceback."""
    try:
        return await work
    except RLMError as exc:
        raise ToolError(str(exc)) from exc


def _guard_sync(work: Callable[[], T]) -> T:
    try:
        return work()
    except RLMError as exc:
        raise ToolError(str(exc)) from exc


def build_server(service: RLMService) -> MCPServer[Any]:
    """An MCPServer with every rlmrt tool and resource, backed by `service`."""

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield None
        finally:
            await service.aclose()

    app: MCPServer[Any] = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING", lifespan=lifespan
    )

    @app.tool()
    async def rlm_completion(
        prompt: Annotated[str, Field(description="The question or task.", min_length=1)],
        ctx: Context,
        context: Annotated[
            str | None, Field(description="The text to work over, loaded as `context`.")
        ] = None,
        files: Annotated[
            list[str] | None,
            Field(
                description="Files or folders to load as `context` instead (relative paths are"
                " relative to the project root).",
                min_length=1,
            ),
        ] = None,
        model: Model = None,
        sandbox: SandboxKind = None,
        max_depth: MaxDepth = None,
        max_iterations: MaxIterations = None,
        max_cost_usd: MaxCostUsd = None,
        output_schema: Annotated[
            dict[str, Any] | None,
            Field(
                description="A JSON Schema the answer must fit: the run checks it, sends a"
                " misfit back to the model, and returns the checked value as `output`."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Run a Recursive Language Model over `context` or `files` and return its answer,
        whether it is partial (a limit stopped the run), the usage and the run id (read
        the trajectory at rlm://runs/{run_id}). Sends progress notifications as it works."""
        step = 0

        async def progress(message: str) -> None:
            nonlocal step
            step += 1
            await ctx.report_progress(step, None, message)

        settings = {
            "model": model,
            "sandbox": sandbox,
            "max_depth": max_depth,
            "max_iterations": max_iterations,
            "max_cost_usd": max_cost_usd,
        }
        return await _guard(
            service.complete(
                prompt,
                context=context,
                files=files,
                settings=settings,
                progress=progress,
                output_schema=output_schema,
            )
        )

    @app.tool()
    async def execute_python(
        code: Annotated[str, Field(description="Python code to run.")],
        session: Session = "default",
        sandbox: SandboxKind = None,
    ) -> dict[str, Any]:
        """Run Python in a named, persistent sandbox session (made on first use, with the
        configured quotas); variables persist between calls. `context_search()` is
        available in the code. Errors of the code come back in `error`."""
        return await _guard(service.execute(code, session=session, sandbox=sandbox))

    @app.tool()
    async def get_repl_context(
        session: Session = "default",
        names: Annotated[
            list[str] | None, Field(description="Variables to return (default: all).")
        ] = None,
    ) -> dict[str, Any]:
        """The variables of a session: their types, and their values (JSON when they are,
        else their repr)."""
        return await _guard(service.get_variables(session=session, names=names))

    @app.tool()
    async def set_repl_context(
        value: Annotated[Any, Field(description="Any JSON value.")],
        name: Annotated[
            str, Field(description="Variable name.", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
        ] = "context",
        session: Session = "default",
        sandbox: SandboxKind = None,
    ) -> dict[str, Any]:
        """Set a variable of a session (made on first use), e.g. the `context` to work on."""
        return await _guard(
            service.set_variable(session=session, name=name, value=value, sandbox=sandbox)
        )

    @app.tool()
    async def clear_repl_context(session: Session = "default") -> dict[str, Any]:
        """Drop every variable of a session (its sandbox starts afresh)."""
        return await _guard(service.clear(session=session))

    @app.tool()
    async def list_sessions() -> dict[str, Any]:
        """The sessions of the active project, with their sandbox kind and variables."""
        return await _guard(service.list_sessions())

    @app.tool()
    async def destroy_session(session: Session) -> dict[str, Any]:
        """Stop a session's sandbox and forget its variables."""
        return await _guard(service.destroy(session=session))

    @app.tool()
    async def set_project(
        name: Annotated[str, Field(description="A project added with `rlm project add`.")],
    ) -> dict[str, Any]:
        """Switch this server to another project: its settings, runs, index and sessions."""
        return _guard_sync(lambda: service.set_project(name))

    @app.tool()
    async def list_projects() -> dict[str, Any]:
        """The projects, the one this server uses (`active`) and the current default."""
        return _guard_sync(service.list_projects)

    @app.tool()
    async def context_search(
        query: Annotated[str, Field(description="What to look for.", min_length=1)],
        max_tokens: Annotated[
            int, Field(description="Token budget of all hits together.", ge=1, le=200_000)
        ] = 2000,
    ) -> dict[str, Any]:
        """The passages of the project's files that matter to `query`, best first, within
        `max_tokens` (the configured provider; the local index by default)."""
        return await _guard(service.context_search(query, max_tokens))

    @app.tool()
    async def index_project(
        rebuild: Annotated[bool, Field(description="Drop the index and build it anew.")] = False,
    ) -> dict[str, Any]:
        """Build or refresh the local search index of the project (changed files only)."""
        return await _guard(service.index_project(rebuild=rebuild))

    @app.tool()
    async def memory_remember(
        text: Annotated[str, Field(description="What to remember.", min_length=1)],
        tags: Annotated[
            list[str] | None, Field(description="Tags, one word each.", max_length=20)
        ] = None,
        pin: Annotated[
            bool, Field(description="Show it in every run's first prompt (capped).")
        ] = False,
    ) -> dict[str, Any]:
        """Remember a fact in the active project's memory (never visible from another)."""
        return _guard_sync(lambda: service.remember(text, tags=tags or [], pin=pin))

    @app.tool()
    async def memory_recall(
        query: Annotated[str, Field(description="Words to look for.", min_length=1)],
        k: Annotated[int, Field(description="How many items.", ge=1, le=100)] = 5,
    ) -> dict[str, Any]:
        """The project's memory items that best match `query` (full-text search)."""
        return _guard_sync(lambda: service.recall(query, k=k))

    @app.tool()
    async def memory_forget(
        id: Annotated[str, Field(description="The item's id (mem-...).", min_length=1)],
    ) -> dict[str, Any]:
        """Forget one item of the project's memory."""
        return _guard_sync(lambda: service.forget(id))

    @app.tool()
    async def feedback(
        run_id: Annotated[str, Field(description="The run, or a unique part of its id.")],
        verdict: Annotated[Literal["good", "bad"], Field(description="The run's verdict.")],
        note: Annotated[str | None, Field(description="Why, in a few words.")] = None,
        expected: Annotated[
            str | None, Field(description="The answer the run should have given.")
        ] = None,
    ) -> dict[str, Any]:
        """Judge a recorded run good or bad; `rlm memory learn` turns verdicts into
        lessons that later runs see."""
        return _guard_sync(lambda: service.feedback(run_id, verdict, note=note, expected=expected))

    @app.resource("rlm://runs", name="runs", mime_type="application/json")
    def runs() -> str:
        """The project's runs, newest first."""
        return json.dumps(service.runs())

    @app.resource("rlm://runs/{run_id}", name="run", mime_type="application/json")
    def run(run_id: str) -> str:
        """One run: its summary and every event of its trajectory."""
        try:
            return json.dumps(service.run(run_id), ensure_ascii=False, default=str)
        except RLMError as exc:
            raise ResourceError(str(exc)) from exc

    return app


Transport = Literal["stdio", "http"]


def serve(  # pragma: no cover - runs in the server processes of test_mcp_transports.py
    service: RLMService, *, transport: Transport, host: str, port: int
) -> None:
    """Serve until stdin closes (stdio) or the process is stopped (HTTP)."""
    import sys

    import anyio

    app = build_server(service)
    if transport == "stdio":
        anyio.run(app.run_stdio_async)
    else:
        print(f"rlmrt MCP server on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
        anyio.run(lambda: app.run_streamable_http_async(host=host, port=port))
