"""What the running server holds: the store, the rate limiter, one `RLM` per profile,
its settings, its async runs, its instance id and the verifier of bearer tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from rlmrt.config import ServerSettings
    from rlmrt.engine.rlm import RLM
    from rlmrt.server.ratelimits import RateLimiter
    from rlmrt.server.run_tasks import RunTasks
    from rlmrt.server.storage import Store
    from rlmrt.server.tokens import TokenVerifier


@dataclass(slots=True, kw_only=True)
class ServerState:
    store: Store
    limiter: RateLimiter
    profiles: dict[str, RLM]  # model name a client gives -> the RLM its runs use
    settings: ServerSettings
    runs: RunTasks  # the async runs of this process
    instance_id: str  # this process, in the database (see `instances`)
    secrets: tuple[str, ...] = ()  # kept out of the events tenants read (see `redact`)
    created: int = field(default=0)  # unix time the profiles were loaded (`/v1/models`)
    tokens: TokenVerifier | None = None  # None: JWT bearer tokens are not accepted


def server_state(request: Request) -> ServerState:
    state = request.app.state.rlm
    assert isinstance(state, ServerState)
    return state


def client_address(request: Request) -> str | None:
    """Where a request came from (the audit log's "from where")."""
    return request.client.host if request.client else None
