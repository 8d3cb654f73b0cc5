"""The application factory: `create_app(config)` -> the FastAPI app `rlm serve` runs.

It makes one `RLM` per profile; at start (the lifespan) it opens the store, which
applies the migrations; at the end it closes them all (sandboxes, connections).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from rlmrt.config import RLMConfig
from rlmrt.server.api_errors import install_error_handlers
from rlmrt.server.profiles import profile_configs
from rlmrt.server.responses import install_openapi
from rlmrt.server.routes import api, ops
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

    limiter = RateLimiter(config.server)  # a bad storage URI fails now, not at start
    tokens = TokenVerifier(config.server) if config.server.jwt_jwks_url else None
    made = {
        name: RLM(config=settings) for name, settings in profile_configs(config, profiles).items()
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if metrics_enabled(config.observe):
            from rlmrt.observe.metrics import run_metrics

            run_metrics()  # /metrics lists the run metrics before the first run
        async with AsyncExitStack() as stack:
            for rlm in made.values():
                stack.push_async_callback(rlm.__aexit__, None, None, None)
            store = await Store.open(config.server.database_url)
            stack.push_async_callback(store.aclose)
            app.state.rlm = ServerState(
                store=store,
                limiter=limiter,
                profiles=made,
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
    install_openapi(app, list(made))
    app.include_router(api)
    app.include_router(ops)
    return app
