"""`/v1/runs`: async runs. `POST` takes a chat-completions body and answers at once
(202, the run's id); the run goes on in a task of this server, within the caller's rate
limits (its concurrent slot held until it ends), recorded and audited as a completion
is. Its events are kept (`run_events`) for `/events` and `/trajectory`; `/cancel` ends
it (its task cancelled, so its sandbox is stopped; on another replica, that replica's
heartbeat takes the cancel). Ids are "run-" and the run id (128 random bits); another
tenant's run is answered exactly like one that does not exist (404).
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import AsyncExitStack
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select, update

from rlmrt.errors import RLMError
from rlmrt.server.api_errors import APIError, internal_error
from rlmrt.server.auth import Reader, Writer
from rlmrt.server.completions import RecordedRun, run_completion, run_failed
from rlmrt.server.instances import SERVER_STOPPED
from rlmrt.server.models import RunRecord
from rlmrt.server.responses import (
    RUN_CANCEL_RESPONSES,
    RUN_EVENTS_RESPONSES,
    RUN_RESPONSES,
    RUN_START_RESPONSES,
    RUN_TRAJECTORY_RESPONSES,
)
from rlmrt.server.routes import admitted_run
from rlmrt.server.run_events import ENDED, EventRecorder, event_stream, trajectory_document
from rlmrt.server.schemas import ChatCompletionRequest
from rlmrt.server.state import ServerState, client_address, server_state

log = logging.getLogger("rlmrt.server")

runs = APIRouter(prefix="/v1/runs")
PREFIX = "run-"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def run_body(record: RunRecord) -> dict[str, Any]:
    """An async run as the API shows it."""
    return {
        "id": PREFIX + record.id,
        "object": "run",
        "model": record.profile,
        "status": record.status,
        "answer": record.answer,
        "error": record.error,
        "stop_reason": record.stop_reason,
        "usage": {
            "prompt_tokens": record.input_tokens,
            "completion_tokens": record.output_tokens,
            "total_tokens": record.input_tokens + record.output_tokens,
            "model_calls": record.model_calls,
            "cost_usd": round(record.cost_usd, 8),
        },
        "created_at": int(record.created_at.timestamp()),
        "finished_at": int(record.finished_at.timestamp()) if record.finished_at else None,
    }


async def owned_run(state: ServerState, tenant_id: str, run_id: str) -> RunRecord:
    """The tenant's run `run_id` ("run-..."), or a 404 (whether it does not exist or
    is another tenant's)."""
    record = None
    if run_id.startswith(PREFIX):
        async with state.store.sessions() as session:
            record = await session.scalar(
                select(RunRecord).where(
                    RunRecord.id == run_id.removeprefix(PREFIX),
                    RunRecord.tenant_id == tenant_id,
                    RunRecord.kind == "run",  # a completion's events are not kept
                )
            )
    if record is None:
        raise APIError(404, f"no run {run_id!r}", param="run_id", code="run_not_found")
    return record


@runs.post("", status_code=202, response_model=None, responses=RUN_START_RESPONSES)
async def create_run(
    body: ChatCompletionRequest, request: Request, caller: Writer
) -> dict[str, Any]:
    """Start a run of a chat-completions body; its id at once."""
    state = server_state(request)
    run = await admitted_run(request, body, caller)
    run.kind = "run"
    completion = run.completion
    recorded = AsyncExitStack()
    await recorded.enter_async_context(run)  # the record exists before the answer
    state.runs.start(completion.run_id, _drive(state, run, recorded))
    return {
        "id": PREFIX + completion.run_id,
        "object": "run",
        "model": completion.profile,
        "status": "running",
        "created_at": completion.created,
    }


async def _drive(state: ServerState, run: RecordedRun, recorded: AsyncExitStack) -> None:
    """The run to its end; its events, answer or error stored before its status."""
    completion = run.completion
    recorder = EventRecorder(state.store.sessions, completion.run_id, state.secrets)
    writer = asyncio.create_task(recorder.run())
    error: str | None = None
    async with recorded:
        try:
            run.result = await run_completion(completion, recorder)
        except RLMError as exc:
            error = run_failed(exc, completion).message
        except Exception as exc:  # noqa: BLE001 - a bug: logged, the run failed
            error = internal_error(exc, f"run {completion.run_id} failed").message
        except asyncio.CancelledError:
            if not state.runs.stopping:
                error = "cancelled"
                raise
            # the server stops: the run failed, as a run of a server that died does
            # (its task ends here, the cancellation taken: `RunTasks.aclose` waits)
            error = SERVER_STOPPED
            uncancel = getattr(asyncio.current_task(), "uncancel", None)
            if uncancel is not None:  # Python 3.11+ counts the cancellations taken
                uncancel()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await recorder.close()
                    await writer
                finally:  # the answer is kept even if recording its events failed
                    await _store_outcome(state, run, error)


async def _store_outcome(state: ServerState, run: RecordedRun, error: str | None) -> None:
    answer = run.result.answer if run.result is not None else None
    async with state.store.sessions.begin() as session:
        await session.execute(
            update(RunRecord)
            .where(RunRecord.id == run.completion.run_id)
            .values(answer=answer, error=error)
        )


@runs.get("/{run_id}", response_model=None, responses=RUN_RESPONSES)
async def get_run(run_id: str, request: Request, caller: Reader) -> dict[str, Any]:
    return run_body(await owned_run(server_state(request), caller.tenant_id, run_id))


@runs.post("/{run_id}/cancel", response_model=None, responses=RUN_CANCEL_RESPONSES)
async def cancel_run(
    run_id: str, request: Request, caller: Writer
) -> dict[str, Any] | JSONResponse:
    """End the run: cancelled here, or asked of the replica running it (202 until then)."""
    state = server_state(request)
    record = await owned_run(state, caller.tenant_id, run_id)
    if record.status in ENDED:
        return run_body(record)
    task = state.runs.cancel(record.id)
    if task is not None:
        await _ended(task)
        return run_body(await owned_run(state, caller.tenant_id, run_id))
    async with state.store.sessions.begin() as session:
        await session.execute(
            update(RunRecord).where(RunRecord.id == record.id).values(cancel_requested=True)
        )
    await state.store.audit(
        "run.cancel.ask",
        actor=caller.actor,
        tenant_id=caller.tenant_id,
        target=record.id,
        client=client_address(request),
    )
    return JSONResponse(run_body(record), status_code=202)


async def _ended(task: asyncio.Task[None]) -> None:
    """Wait for the cancelled task to record its end (its cancellation not raised here)."""
    with anyio.CancelScope(shield=True):
        await asyncio.wait({task})


@runs.get("/{run_id}/events", response_model=None, responses=RUN_EVENTS_RESPONSES)
async def run_events(
    run_id: str,
    request: Request,
    caller: Reader,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The run's events as server-sent events (`id:` its number; `Last-Event-ID`
    resumes after it), ending with an `end` event once the run has ended."""
    state = server_state(request)
    record = await owned_run(state, caller.tenant_id, run_id)
    after = 0
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise APIError(400, "Last-Event-ID must be an event's number", param="Last-Event-ID")
        after = int(last_event_id)
    return StreamingResponse(
        event_stream(state.store.sessions, record.id, after, state.settings.event_keepalive_s),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@runs.get("/{run_id}/trajectory", response_model=None, responses=RUN_TRAJECTORY_RESPONSES)
async def run_trajectory(run_id: str, request: Request, caller: Reader) -> StreamingResponse:
    """The run's events so far as one JSON document: `{"id", "status", "events": [...]}`."""
    state = server_state(request)
    record = await owned_run(state, caller.tenant_id, run_id)
    head = json.dumps({"id": PREFIX + record.id, "status": record.status})[:-1] + ', "events": ['
    return StreamingResponse(
        trajectory_document(state.store.sessions, record.id, head),
        media_type="application/json",
    )
