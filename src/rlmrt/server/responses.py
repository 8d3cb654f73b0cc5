"""What the routes answer, as `/openapi.json` declares it: the bodies (pydantic models
used only for the schema: the routes build their bodies as dicts, unchecked on the way
out) and every status a route can answer with, errors in OpenAI's body.

FastAPI's own 422 is not declared: a bad request is a 400 here (`api_errors`).
`schemathesis` checks this schema against the server (tests/server/test_schema.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    """A body that may carry more fields than those declared (OpenAI adds fields)."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(_Open):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(_Open):
    """OpenAI's error body."""

    error: ErrorDetail


class AssistantMessage(_Open):
    role: str = Field(description="Always 'assistant'.")
    content: str | None


class Choice(_Open):
    index: int
    message: AssistantMessage
    finish_reason: str = Field(description="'stop', or 'length' when a limit ended the run.")


class TokenUsage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RunSummary(_Open):
    """rlmrt's own fields: the run behind the answer."""

    run_id: str
    partial: bool
    stop_reason: str | None
    iterations: int
    model_calls: int
    cost_usd: float


class ChatCompletion(_Open):
    """A finished run, as OpenAI's `chat.completion`."""

    id: str
    object: str = Field(description="Always 'chat.completion'.")
    created: int
    model: str
    choices: list[Choice]
    usage: TokenUsage
    rlm: RunSummary


class Model(_Open):
    id: str
    object: str
    created: int
    owned_by: str


class ModelList(_Open):
    object: str = Field(description="Always 'list'.")
    data: list[Model]


class Status(_Open):
    status: str


class FileObject(_Open):
    """An uploaded file, as OpenAI describes one, with its SHA-256."""

    id: str
    object: str = Field(description="Always 'file'.")
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    sha256: str


class FileList(_Open):
    object: str = Field(description="Always 'list'.")
    data: list[FileObject]
    has_more: bool


class FileDeleted(_Open):
    id: str
    object: str = Field(description="Always 'file'.")
    deleted: bool


class RunStarted(_Open):
    """An async run just started."""

    id: str
    object: str = Field(description="Always 'run'.")
    model: str
    status: str = Field(description="Always 'running'.")
    created_at: int


class RunUsage(TokenUsage):
    model_calls: int
    cost_usd: float


class Run(RunStarted):
    """An async run: its status, and once it has ended its answer or error."""

    status: str = Field(description="'running', or how it ended.")
    answer: str | None
    error: str | None
    stop_reason: str | None
    usage: RunUsage
    finished_at: int | None


class Trajectory(_Open):
    """A run's events so far, as one document."""

    id: str
    status: str
    events: list[dict[str, Any]]


# one event of a stream (before OpenAPI 3.2, the `schema` of text/event-stream is an event's)
SSE_EVENT = {
    "type": "object",
    "properties": {
        "data": {
            "type": "string",
            "description": "A `chat.completion.chunk` as JSON, an error body, or `[DONE]`.",
        },
        "event": {"type": "string"},
    },
    "required": ["data"],
}


# one event of a run's stream
RUN_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The event's number (`Last-Event-ID`)."},
        "event": {"type": "string", "description": "The event's kind, or `end`."},
        "data": {
            "type": "string",
            "description": "The event as JSON; for `end`, the run's final status.",
        },
    },
    "required": ["data"],
}


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


SERVER_ERROR: dict[int | str, dict[str, Any]] = {
    500: error("The server failed; its log has the details (request id).")
}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error("No key or token, or one that is not valid."),
    403: error("A bearer token without the scope this route needs."),
    503: error("The keys that verify bearer tokens could not be fetched."),
    **SERVER_ERROR,
}
RUN_REQUEST_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error("A request the server cannot run (its field is named in `param`)."),
    404: error(
        "The model is not a profile of this server, or a file of `context_files` is not"
        " one of the tenant's."
    ),
    413: error("The request body is larger than `server.max_request_bytes`."),
    429: error("A rate limit or budget is reached (`Retry-After` says when to retry)."),
    **AUTH_ERRORS,
}
COMPLETION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ChatCompletion,
        "description": "The answer; with `stream: true`, server-sent events of"
        " `chat.completion.chunk` objects ending with `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    },
    502: error("The profile's model failed."),
    **RUN_REQUEST_ERRORS,
}
MODELS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ModelList, "description": "The profiles."},
    **AUTH_ERRORS,
}
READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Status, "description": "The database answers."},
    503: error("The database does not answer."),
    **SERVER_ERROR,
}
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus metrics, in its text format.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    404: error("Metrics need prometheus-client (the metrics extra)."),
    **SERVER_ERROR,
}

NO_FILE = error("No file of the tenant has this id.")
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": FileObject, "description": "The stored file."},
    400: error("Not a multipart body with one `file` and a valid `purpose`."),
    413: error("The file is larger than `server.max_upload_bytes`."),
    **AUTH_ERRORS,
}
FILES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": FileList, "description": "The tenant's files, newest first."},
    **AUTH_ERRORS,
}
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": FileObject, "description": "The file."},
    404: NO_FILE,
    **AUTH_ERRORS,
}
FILE_CONTENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes, as uploaded.",
        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
    },
    404: NO_FILE,
    **AUTH_ERRORS,
}
FILE_DELETE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": FileDeleted, "description": "The file is deleted."},
    404: NO_FILE,
    **AUTH_ERRORS,
}
NO_RUN = error("No async run of the tenant has this id.")
RUN_START_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": RunStarted, "description": "The run started; its id."},
    **RUN_REQUEST_ERRORS,
}
RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Run, "description": "The run."},
    404: NO_RUN,
    **AUTH_ERRORS,
}
RUN_CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Run, "description": "The run has ended (cancelled, or before)."},
    202: {"model": Run, "description": "The replica running it is asked to cancel it."},
    404: NO_RUN,
    **AUTH_ERRORS,
}
RUN_EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events of the run (`id:` each one's number), ending"
        " with an `end` event once the run has ended.",
        "content": {"text/event-stream": {"schema": RUN_EVENT}},
    },
    400: error("`Last-Event-ID` is not an event's number."),
    404: NO_RUN,
    **AUTH_ERRORS,
}
RUN_TRAJECTORY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Trajectory, "description": "The run's events so far."},
    404: NO_RUN,
    **AUTH_ERRORS,
}


def install_openapi(app: FastAPI, models: list[str]) -> None:
    """`app.openapi()` without FastAPI's 422 responses, which this server never sends,
    and with the request's `model` one of `models` (this server's profiles)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            request = components.get("ChatCompletionRequest", {}).get("properties", {})
            if "model" in request:
                request["model"]["enum"] = models
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
