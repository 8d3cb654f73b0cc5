"""The application factory: `create_app(config)` -> the FastAPI app `rlm serve` runs.

It makes one `RLM` per profile; at start (the lifespan) it opens the store, which
applies the migrations, records this server (its heartbeat, and the runs of dead
servers marked failed: `instances`); at the end it cancels its async runs and closes
them all (sandboxes, connections).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from rlmrt.config import RLMConfig
from rlmrt.server import instances
from rlmrt.server.api_errors import install_error_handlers
from rlmrt.server.body_limit import BodyLimit, is_upload
from rlmrt.server.files import files
from rlmrt.server.profiles import profile_configs
from rlmrt.server.redact import server_secrets
from rlmrt.server.responses import install_openapi
from rlmrt.server.routes import api, ops
from rlmrt.server.run_tasks import RunTasks
from rlmrt.server.runs import runs
from rlmrt.server.state import ServerState
from rlmrt.server.storage import Store


def create_app(config: RLMConfig, *, profiles: Sequence[str] = ()) -> FastAPI:
    """The server of `config`'s profiles (`profiles`: only these). Their `RLM`s are made
    here, so a profile that cannot run (no model) fails now, not at start."""
    from rlmrt import __version__
    from rlmrt.engine.rlm import RLM
    from rlmrt.observe.watchers import metrics_enabled
    from rlmrt.server.ratelimits import RateLimiter
    from rlmrt.server.tokens import TokenVerifier

    settings = config.server
    limiter = RateLimiter(settings)  # a bad storage URI fails now, not at start
    tokens = TokenVerifier(settings) if settings.jwt_jwks_url else None
    made = {
        name: RLM(config=profile) for name, profile in profile_configs(config, profiles).items()
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if metrics_enabled(config.observe):
            from rlmrt.observe.metrics import run_metrics

            run_metrics()  # /metrics lists the run metrics before the first run
        async with AsyncExitStack() as stack:
            for rlm in made.values():
                stack.push_async_callback(rlm.__aexit__, None, None, None)
            stack.push_async_callback(limiter.aclose)
            store = await Store.open(settings.database_url)
            stack.push_async_callback(store.aclose)
            settings.files_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            instance_id = instances.new_instance_id()
            await instances.register(store.sessions, instance_id)
            stack.push_async_callback(instances.unregister, store.sessions, instance_id)
            await instances.fail_orphaned_runs(store, settings.instance_stale_s)
            tasks = RunTasks()
            stack.push_async_callback(tasks.aclose)  # before the store closes
            keeper = asyncio.create_task(
                instances.keep_alive(
                    store,
                    instance_id,
                    interval_s=settings.heartbeat_s,
                    stale_s=settings.instance_stale_s,
                    cancel=tasks.cancel,
                )
            )
            stack.push_async_callback(_stopped, keeper)
            app.state.rlm = ServerState(
                store=store,
                limiter=limiter,
                profiles=made,
                settings=settings,
                runs=tasks,
                instance_id=instance_id,
                secrets=server_secrets([config, *(rlm.config for rlm in made.values())]),
                created=int(time.time()),
                tokens=tokens,
            )
            yield

    app = FastAPI(
        title="rlmrt",
        version=__version__,
        summary="Recursive Language Models behind the OpenAI API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, exempt=is_upload)
    if metrics_enabled(config.observe):  # outside BodyLimit: its 413s are counted too
        from rlmrt.server.http_metrics import RequestMetrics, http_metrics

        app.add_middleware(RequestMetrics, metrics=http_metrics())
    install_openapi(app, list(made))
    app.include_router(api)
    app.include_router(files)
    app.include_router(runs)
    app.include_router(ops)
    return app


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
