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
COMPLETION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ChatCompletion,
        "description": "The answer; with `stream: true`, server-sent events of"
        " `chat.completion.chunk` objects ending with `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    },
    400: error("A request the server cannot run (its field is named in `param`)."),
    404: error("The model is not a profile of this server."),
    429: error("A rate limit or budget is reached (`Retry-After` says when to retry)."),
    502: error("The profile's model failed."),
    **AUTH_ERRORS,
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
