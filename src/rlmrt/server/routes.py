"""The endpoints: the OpenAI API under /v1 (a key or a bearer token needed), health and
metrics outside."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from limits.errors import StorageError
from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask

from rlmrt.server import completions
from rlmrt.server.api_errors import APIError
from rlmrt.server.auth import Caller, Reader, Writer
from rlmrt.server.budgets import BudgetSpent, DailyBudget, check_budgets, daily_budgets
from rlmrt.server.files import context_files
from rlmrt.server.memory import TenantMemory
from rlmrt.server.ratelimits import Admission, RateLimited, scopes
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

log = logging.getLogger("rlmrt.server")
STORAGE_RETRY_S = 5  # a client's wait when the rate-limit storage does not answer
api = APIRouter(prefix="/v1")
ops = APIRouter()


@api.post("/chat/completions", response_model=None, responses=COMPLETION_RESPONSES)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, caller: Writer
) -> Response:
    """One RLM run over the request's context; `stream: true` for SSE chunks."""
    run = await admitted_run(request, body, caller)
    if body.stream:
        return completions.RunStreamingResponse(
            completions.stream(run),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            # the run slot is given back even when the stream never started
            background=BackgroundTask(run.admission.release, 0),
        ).ends(run)
    return await completions.complete(run)


async def admitted_run(
    request: Request, body: ChatCompletionRequest, caller: Caller
) -> completions.RecordedRun:
    """The request within its rate limits (its slot taken), checked, its context loaded:
    its run, to record (a completion's or an async run's)."""
    state = server_state(request)
    client = client_address(request)
    admission, daily = await admit(state, caller, client)
    try:
        completion = await prepared(state, body, caller, daily)
    except BaseException:
        await admission.release(0)
        raise
    completion.memory = TenantMemory(state.store, caller.tenant_id)
    return completions.RecordedRun(
        state.store, completion, caller, admission, client, instance_id=state.instance_id
    )


async def prepared(
    state: ServerState, body: ChatCompletionRequest, caller: Caller, daily: DailyBudget | None
) -> completions.Completion:
    """The request checked and its context loaded (`context_files`: the caller's
    tenant's files, read off the event loop); `daily`: the budget its run may spend."""
    if not body.context_files:
        return completions.prepare(body, state.profiles, daily=daily)
    if body.context is not None:
        raise APIError(400, "give the context or context_files, not both", param="context_files")
    found = await context_files(state, caller.tenant_id, body.context_files)
    return await anyio.to_thread.run_sync(
        lambda: completions.prepare(body, state.profiles, found, daily=daily)
    )


async def admit(
    state: ServerState, caller: Caller, client: str | None
) -> tuple[Admission, DailyBudget | None]:
    """The request within its caller's and tenant's daily budgets and rate limits, or a
    429 (audited); the budget its run may spend at most."""
    tenant = caller.tenant  # read with the key (or the token's tenant): no second read
    budgets = await daily_budgets(state.store, scopes(state.limiter.settings, caller, tenant))
    try:
        daily = check_budgets(budgets)
    except BudgetSpent as exc:
        await state.store.audit(
            "budget.refuse",
            actor=caller.actor,
            tenant_id=caller.tenant_id,
            target=exc.budget.scope.name,
            client=client,
            detail={
                "budget": exc.budget.stop_reason,
                "limit_usd": exc.budget.limit_usd,
                "spent_usd": round(exc.budget.spent_usd, 8),
            },
        )
        raise APIError(
            429,
            str(exc),
            type_="insufficient_quota",
            code="budget_exceeded",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    try:
        return await state.limiter.admit(caller, tenant), daily
    except StorageError as exc:  # no counting, no run: a limit must not lapse silently
        log.warning(
            "the rate-limit storage failed (%s): request refused",
            type(exc.storage_error).__name__,
        )
        raise APIError(
            503,
            "the rate-limit storage does not answer; try again later",
            code="rate_limit_storage_unavailable",
            headers={"Retry-After": str(STORAGE_RETRY_S)},
        ) from exc
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
    """The database and the rate-limit storage answer (503 when one does not)."""
    state = server_state(request)
    try:
        await state.store.ping()
    except (SQLAlchemyError, OSError):
        return APIError(503, "the database does not answer", code="not_ready").response()
    if not await state.limiter.storage.check():
        return APIError(503, "the rate-limit storage does not answer", code="not_ready").response()
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
