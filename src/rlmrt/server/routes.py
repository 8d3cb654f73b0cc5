"""The endpoints: the OpenAI API under /v1 (a key or a bearer token needed), health and
metrics outside."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask

from rlmrt.server import completions
from rlmrt.server.api_errors import APIError
from rlmrt.server.auth import Caller, scoped
from rlmrt.server.ratelimits import Admission, RateLimited
from rlmrt.server.responses import (
    COMPLETION_RESPONSES,
    METRICS_RESPONSES,
    MODELS_RESPONSES,
    READY_RESPONSES,
    SERVER_ERROR,
    Status,
)
from rlmrt.server.schemas import ChatCompletionRequest
from rlmrt.server.state import ServerState, client_address, server_state
from rlmrt.server.tokens import READ, WRITE

api = APIRouter(prefix="/v1")
ops = APIRouter()
Reader = Annotated[Caller, Depends(scoped(READ))]
Writer = Annotated[Caller, Depends(scoped(WRITE))]


@api.post("/chat/completions", response_model=None, responses=COMPLETION_RESPONSES)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, caller: Writer
) -> dict[str, Any] | StreamingResponse:
    """One RLM run over the request's context; `stream: true` for SSE chunks."""
    state = server_state(request)
    client = client_address(request)
    admission = await _admit(state, caller, client)
    try:
        completion = completions.prepare(body, state.profiles)
    except BaseException:
        await admission.release(0)
        raise
    run = completions.RecordedRun(state.store, completion, caller, admission, client)
    if body.stream:
        return StreamingResponse(
            completions.stream(run),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            # the run slot is given back even when the stream never started
            background=BackgroundTask(admission.release, 0),
        )
    return await completions.complete(run)


async def _admit(state: ServerState, caller: Caller, client: str | None) -> Admission:
    """The request within its caller's and tenant's rate limits, or a 429 (audited)."""
    tenant = await state.store.tenant_by_id(caller.tenant_id)
    try:
        return await state.limiter.admit(caller, tenant)
    except RateLimited as exc:
        await state.store.audit(
            "ratelimit.refuse",
            actor=caller.actor,
            tenant_id=caller.tenant_id,
            target=exc.scope.name,
            client=client,
            detail={"limit": exc.what, "value": exc.limit, "retry_after_s": exc.retry_after_s},
        )
        raise APIError(
            429,
            str(exc),
            code="rate_limit_exceeded",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc


@api.get("/models", response_model=None, responses=MODELS_RESPONSES)
async def list_models(request: Request, caller: Reader) -> dict[str, Any]:
    """The profiles, as OpenAI lists models."""
    state = server_state(request)
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": state.created, "owned_by": "rlmrt"}
            for name in state.profiles
        ],
    }


@ops.get("/healthz", response_model=None, responses={200: {"model": Status}, **SERVER_ERROR})
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@ops.get("/readyz", response_model=None, responses=READY_RESPONSES)
async def readyz(request: Request) -> dict[str, str] | JSONResponse:
    """The database answers (503 when it does not)."""
    try:
        await server_state(request).store.ping()
    except (SQLAlchemyError, OSError):
        return APIError(503, "the database does not answer", code="not_ready").response()
    return {"status": "ready"}


@ops.get("/metrics", response_model=None, responses=METRICS_RESPONSES)
async def metrics() -> Response:
    """Prometheus metrics of the runs (the `metrics` extra)."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
    except ImportError as exc:
        raise APIError(
            404,
            "metrics need prometheus-client: pip install 'rlmrt[metrics]'",
            code="not_found",
        ) from exc
    return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
