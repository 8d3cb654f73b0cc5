"""The application factory: `create_app(config)` -> the FastAPI app `rlm serve` runs.

At start (the lifespan) it opens the store, which applies the migrations, and makes
one `RLM` per profile; at the end it closes them (their sandboxes and connections).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from rlmrt.config import RLMConfig
from rlmrt.server.api_errors import install_error_handlers
from rlmrt.server.profiles import profile_configs
from rlmrt.server.routes import api, ops
from rlmrt.server.state import ServerState
from rlmrt.server.storage import Store


def create_app(config: RLMConfig, *, profiles: Sequence[str] = ()) -> FastAPI:
    """The server of `config`'s profiles (`profiles`: only these)."""
    from rlmrt import __version__

    configs = profile_configs(config, profiles)  # bad names fail here, not at start

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from rlmrt.engine.rlm import RLM
        from rlmrt.observe.watchers import metrics_enabled

        if metrics_enabled(config.observe):
            from rlmrt.observe.metrics import run_metrics

            run_metrics()  # /metrics lists the run metrics before the first run
        async with AsyncExitStack() as stack:
            store = await Store.open(config.server.database_url)
            stack.push_async_callback(store.aclose)
            made: dict[str, RLM] = {}
            for name, profile_config in configs.items():
                made[name] = RLM(config=profile_config)
                stack.push_async_callback(made[name].__aexit__, None, None, None)
            app.state.rlm = ServerState(store=store, profiles=made, created=int(time.time()))
            yield

    app = FastAPI(
        title="rlmrt",
        version=__version__,
        summary="Recursive Language Models behind the OpenAI API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(api)
    app.include_router(ops)
    return app
