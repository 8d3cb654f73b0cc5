"""`POST /v1/chat/completions`: one RLM run per request, answered as OpenAI does.

The run starts the one way runs start (`Engine.run`, with a run id chosen here so its
record exists before it starts) and is recorded for the caller's tenant: status,
usage, cost. A run a limit ended is answered with its best answer and says so
(`finish_reason` "length", `rlm.partial`); a failed run is an error, never an answer.
Streamed, the root model's tokens arrive as `reasoning_content` deltas while the run
works, then the answer as `content`, the usage chunk when asked for, and `[DONE]`.
A run is audited when it starts and ends (its id, profile, status and token counts:
never the prompt), each record in the transaction that writes the run's row (one
commit at the start, one at the end), and gives back its rate-limit slot, charging
its tokens, at the end.

The start is committed before the run's first model call: a completion's run sets up
(sandbox, context, prompt) while it commits (`Engine.run(ready=...)`); a start that
fails calls no model and fails the request. The end of a completion is written
right after its answer was sent (`RunResponse`: same request, awaited before it
finishes, shielded from cancellation, so a server that stops drains it; a server
that dies first leaves the run "running" on a dead instance, which `instances` marks
failed): the client does not wait for that commit. Two exceptions write the end
before the answer: a run under a daily USD budget (the caller's next request must
see what this one cost) and an async run (`/v1/runs`, whose status is read back).
The rate-limit slot and the tokens are always given back before the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from rlmrt.config import InputSettings
from rlmrt.engine.context_input import LoadedContext, load_context
from rlmrt.engine.rlm import RLM
from rlmrt.engine.start import RunResult, TypedOutput, new_run_id, stream_run, typed_output
from rlmrt.errors import BudgetExceededError, ConfigError, ContextError, ModelError, RLMError
from rlmrt.events import EventHandler, TokenDelta
from rlmrt.memory.backend import MemoryBackend, NoMemory
from rlmrt.observe.usage import Usage
from rlmrt.server.api_errors import APIError, internal_error
from rlmrt.server.audit import Entry
from rlmrt.server.auth import Caller
from rlmrt.server.budgets import DailyBudget, capped
from rlmrt.server.ratelimits import Admission
from rlmrt.server.schemas import ChatCompletionRequest
from rlmrt.server.storage import Store

log = logging.getLogger("rlmrt.server")
COST_CAP = "max_cost_usd"  # the engine's budget a daily budget's remainder is run as


@dataclass(slots=True, kw_only=True)
class Completion:
    """A checked request, ready to run: everything a bad request could fail on is done."""

    profile: str
    rlm: RLM
    question: str
    context: LoadedContext
    include_usage: bool
    output: TypedOutput | None = None  # from the request's response_format
    daily: DailyBudget | None = None  # the budget the run may spend at most
    # the caller's tenant's memory (`server.memory`); never the machine's own store
    memory: MemoryBackend = field(default_factory=NoMemory)
    run_id: str = field(default_factory=lambda: server_run_id())
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def id(self) -> str:
        return f"chatcmpl-{self.run_id}"


def server_run_id() -> str:
    """A run id (sortable by time, as every run's) no one can guess: 128 random bits
    (the API answers a run to the tenant that knows its id)."""
    return f"{new_run_id()}-{secrets.token_hex(12)}"


def prepare(
    body: ChatCompletionRequest,
    profiles: dict[str, RLM],
    files: Sequence[tuple[str, Path]] = (),
    *,
    daily: DailyBudget | None = None,
) -> Completion:
    """The checked request; `files` (names and paths of its `context_files`) are its
    context when given: one file its text, several a dict of name -> text. `daily` is
    the daily budget its run may spend at most."""
    rlm = profiles.get(body.model)
    if rlm is None:
        raise APIError(
            404,
            f"the model {body.model!r} does not exist: this server's models are its"
            f" profiles ({', '.join(sorted(profiles))})",
            param="model",
            code="model_not_found",
        )
    question = body.question()
    schema = body.response_format.output_schema() if body.response_format else None
    try:
        output = typed_output(schema)
    except ConfigError as exc:
        raise APIError(400, f"response_format: {exc}", param="response_format") from exc
    try:
        context = (
            _files_context(files, rlm.config.input)
            if files
            else load_context(body.run_context(), rlm.config.input)
        )
    except ContextError as exc:
        param = "context_files" if files else "context"
        raise APIError(400, f"{param}: {exc}", param=param) from exc
    return Completion(
        profile=body.model,
        rlm=rlm,
        question=question,
        context=context,
        include_usage=body.include_usage,
        output=output,
        daily=daily,
    )


def _files_context(files: Sequence[tuple[str, Path]], options: InputSettings) -> LoadedContext:
    """Uploaded files as a context, read as a path given to `rlm` is (`[input]`)."""
    if len(files) == 1:
        return load_context(files[0][1], options)
    texts: dict[str, Any] = {}
    for name, path in files:
        key = name if name not in texts else f"{name} ({path.name})"
        texts[key] = load_context(path, options).value
    return load_context(texts, options)


class RecordedRun:
    """The run's row of the caller's tenant, from "running" to how it ended (also when
    the client went away: "cancelled"), its audit records and its rate-limit slot."""

    def __init__(
        self,
        store: Store,
        completion: Completion,
        caller: Caller,
        admission: Admission,
        client: str | None,
        *,
        instance_id: str | None = None,
    ) -> None:
        self.store = store
        self.instance_id = instance_id
        self.kind = "completion"  # or "run": an async run (`/v1/runs`)
        self.completion = completion
        self.caller = caller
        self.admission = admission
        self.client = client
        self.result: RunResult | None = None
        self._after_answer = False  # the end written by `RunResponse`, not on exit
        self._end: tuple[str, Entry] | None = None  # the end to write, once
        self._early = False  # entered before the start's commit landed
        self._start: asyncio.Future[None] | None = None

    async def __aenter__(self) -> RecordedRun:
        """Commit the run's start (the row and its `run.create` record); after
        `start_early()`, only begin it: the run awaits `ready` before calling a model."""
        self._start = asyncio.ensure_future(
            self.store.start_run(
                self.completion.run_id,
                caller=self.caller,
                profile=self.completion.profile,
                kind=self.kind,
                instance_id=self.instance_id,
                audited=self._entry("run.create", {"profile": self.completion.profile}),
            )
        )
        if not self._early:
            await self._started()
        return self

    def start_early(self) -> None:
        """Let the run set up while its start commits (its model waits: `ready`)."""
        self._early = True

    @property
    def ready(self) -> asyncio.Future[None]:
        """The start's commit (entered only): for `Engine.run(ready=...)`."""
        assert self._start is not None, "the run was not entered"
        return self._start

    async def _started(self) -> None:
        """Wait for the start's commit, even while being cancelled; when it failed, give
        the rate-limit slot back, write no end, and raise its error."""
        with anyio.CancelScope(shield=True):
            try:
                await asyncio.shield(self.ready)
            except BaseException:
                self._end = None
                await self.admission.release(0)
                raise

    def end_after_answer(self) -> None:
        """Write the run's end once its answer was sent (a `RunResponse` does), not as
        it exits; except under a daily budget, which the caller's next request must
        find spent."""
        self._after_answer = self.completion.daily is None

    def _entry(self, action: str, detail: dict[str, Any]) -> Entry:
        """The run's audit record of `action`, written with its row."""
        return Entry(
            action,
            actor=self.caller.actor,
            tenant_id=self.caller.tenant_id,
            target=self.completion.run_id,
            client=self.client,
            detail=detail,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._started()
        except BaseException:
            if exc is None:  # the run called no model: it fails as its start did
                raise
            return  # the run's error (the start's, raised at its first model call)
        result = self.result
        if result is not None:
            status = "failed" if result.error else "partial" if result.partial else "completed"
        elif exc_type is not None and not issubclass(exc_type, Exception):
            status = "cancelled"  # the client left (cancellation, a closed stream)
        else:
            status = "failed"
        usage = result.usage if result else None
        self._end = (
            status,
            self._entry(
                "run.cancel" if status == "cancelled" else "run.finish",
                {
                    "status": status,
                    "stop_reason": result.stop_reason if result else None,
                    "total_tokens": usage.total_tokens if usage else 0,
                },
            ),
        )
        with anyio.CancelScope(shield=True):  # recorded even while being cancelled
            await self.admission.release(usage.total_tokens if usage else 0)
            if not self._after_answer:
                await self.record_end()

    async def record_end(self) -> None:
        """Write how the run ended and its audit record (once; nothing before it ended),
        even while being cancelled."""
        end, self._end = self._end, None
        if end is None:
            return
        status, entry = end
        result = self.result
        with anyio.CancelScope(shield=True):
            await self.store.finish_run(
                self.completion.run_id,
                status=status,
                stop_reason=result.stop_reason if result else None,
                usage=result.usage if result else None,
                audited=entry,
            )


class RunResponse(Response):
    """A response that writes its run's end once it was sent, or failed to be: the
    client has its answer without waiting for that commit (see the module's doc).
    Mixed in before a Starlette response class."""

    run: RecordedRun

    def ends(self, run: RecordedRun) -> RunResponse:
        """This response, which ends `run` (`run.end_after_answer()` was called)."""
        self.run = run
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                body = getattr(self, "body_iterator", None)
                if isinstance(body, AsyncGenerator):  # a stream cut short ends here
                    await body.aclose()
                await self.run.record_end()


class RunJSONResponse(RunResponse, JSONResponse):
    """A completion's body; its run's end written after it was sent."""


class RunStreamingResponse(RunResponse, StreamingResponse):
    """A completion's SSE stream; its run's end written after `[DONE]` was sent."""


def run_failed(exc: RLMError, completion: Completion) -> APIError:
    """The answer to a run that raised: what failed, with the run id; the details
    stay in the server's log."""
    run = completion.run_id
    if isinstance(exc, BudgetExceededError):
        return APIError(
            429, f"{exc} (run {run})", type_="insufficient_quota", code="budget_exceeded"
        )
    if isinstance(exc, ModelError):
        return model_failed(
            completion, f"{type(exc).__name__}" + (f", status {exc.status}" if exc.status else "")
        )
    return internal_error(exc, f"run {run} failed ({type(exc).__name__})")


def model_failed(completion: Completion, how: str) -> APIError:
    """A 502: the profile's model failed. Neither the answer nor the log repeats the
    provider's message (it may quote a key); the run's trajectory keeps it."""
    run = completion.run_id
    log.warning("run %s: the model of profile %r failed (%s)", run, completion.profile, how)
    return APIError(
        502,
        f"the model of profile {completion.profile!r} failed ({how}); run {run}",
        code="model_error",
    )


async def complete(run: RecordedRun) -> RunResponse:
    """Run to the end; the chat.completion response (which writes the run's end)."""
    completion = run.completion
    run.end_after_answer()
    run.start_early()
    try:
        async with run as record:
            try:
                record.result = await run_completion(completion, ready=run.ready)
            except RLMError as exc:
                raise run_failed(exc, completion) from exc
    except BaseException:
        await run.record_end()  # the error's answer, after the end
        raise
    result = record.result
    return RunJSONResponse(_completion_body(completion, result)).ends(run)


def _completion_body(completion: Completion, result: RunResult) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.profile,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer_content(completion, result)},
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": usage_body(result.usage),
        "rlm": rlm_body(result),
    }


async def stream(run: RecordedRun) -> AsyncIterator[str]:
    """The run as server-sent events of chat.completion.chunk objects; a
    `RunStreamingResponse` of `run` sends them (it writes the run's end)."""
    completion = run.completion
    run.end_after_answer()
    run.start_early()
    async with run as record:
        yield _chunk(completion, {"role": "assistant", "content": ""})
        try:
            async for item in stream_run(
                lambda on: run_completion(completion, on, stream_root=True, ready=run.ready)
            ):
                if isinstance(item, RunResult):
                    record.result = item
                elif isinstance(item, TokenDelta) and item.depth == 0:
                    yield _chunk(completion, {"reasoning_content": item.text})
        except RLMError as exc:
            yield _event(run_failed(exc, completion).body())
            yield "data: [DONE]\n\n"
            return
        result = record.result
        assert result is not None  # a stream ends with its result
        if result.error is not None:
            yield _event(model_failed(completion, "its reply failed or broke off").body())
            yield "data: [DONE]\n\n"
            return
        yield _chunk(
            completion,
            {"content": answer_content(completion, result)},
            finish=finish_reason(result),
            rlm=result,
        )
        if completion.include_usage:
            body = _chunk_body(completion, {}, finish=None)
            body["choices"] = []
            body["usage"] = usage_body(result.usage)
            yield _event(body)
        yield "data: [DONE]\n\n"


async def run_completion(
    completion: Completion,
    on_event: EventHandler | None = None,
    *,
    stream_root: bool = False,
    ready: Awaitable[None] | None = None,
) -> RunResult:
    """The run, on an engine whose cost cap is the daily budget's remainder when that is
    tighter than the profile's own (a run it ends says which budget); its first model
    call waits for `ready` (the start's commit)."""
    engine = replace(completion.rlm.engine, memory=completion.memory)
    config = capped(engine.config, completion.daily)
    if config is not None:
        engine = replace(engine, config=config)
    result = await engine.run(
        completion.question,
        completion.context,
        on_event=on_event,
        stream_root=stream_root,
        run_id=completion.run_id,
        output=completion.output,
        ready=ready,
    )
    if config is not None and completion.daily is not None and result.stop_reason == COST_CAP:
        return replace(result, stop_reason=completion.daily.stop_reason)
    return result


def answer_content(completion: Completion, result: RunResult) -> str | None:
    """The message content: the typed value's JSON when the request asked for a schema
    and the answer fits it, else the answer's text (a misfit ends the run partial)."""
    if completion.output is None or result.output is None:
        return result.answer
    data = completion.output.type.adapter.dump_python(result.output, mode="json")
    return json.dumps(data, ensure_ascii=False)


def finish_reason(result: RunResult) -> str:
    """OpenAI's words: "length" when a limit ended the run, else "stop"."""
    return "length" if result.partial else "stop"


def usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def rlm_body(result: RunResult) -> dict[str, Any]:
    """rlmrt's own fields of an answer: the run, whether it is partial and why it ended."""
    return {
        "run_id": result.run_id,
        "partial": result.partial,
        "stop_reason": result.stop_reason,
        "iterations": result.iterations,
        "model_calls": result.usage.model_calls,
        "cost_usd": round(result.usage.cost_usd, 8),
    }


def _chunk_body(
    completion: Completion,
    delta: dict[str, Any],
    *,
    finish: str | None,
    rlm: RunResult | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.profile,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if rlm is not None:
        body["rlm"] = rlm_body(rlm)
    return body


def _chunk(
    completion: Completion,
    delta: dict[str, Any],
    *,
    finish: str | None = None,
    rlm: RunResult | None = None,
) -> str:
    return _event(_chunk_body(completion, delta, finish=finish, rlm=rlm))


def _event(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
