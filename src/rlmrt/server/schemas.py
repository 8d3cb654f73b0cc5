"""The chat-completions request, as OpenAI's clients send it, and what it asks of a run.

Fields of OpenAI's API that do not apply to an RLM (temperature, max_tokens, tools...)
are accepted and ignored: the profile's settings decide how its runs sample. `context`
is rlmrt's own field (`extra_body={"context": ...}` with the openai client).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from rlmrt.server.api_errors import APIError

EXAMPLE: dict[str, JsonValue] = {  # in /openapi.json; schemathesis starts from it
    "model": "rlm",
    "messages": [{"role": "user", "content": "How many lines mention an error?"}],
    "context": "ok\nerror: disk full\nok\nerror: timeout",
}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = Field(default=False, strict=True)  # 0 or "true" is a 400


class JSONSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON Schema of the answer.")


class ResponseFormat(BaseModel):
    """OpenAI's `response_format`: "json_schema" makes the run's answer a typed value
    (the run's `output_type`), "json_object" any JSON object, "text" plain text."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    def output_schema(self) -> dict[str, Any] | None:
        """The JSON Schema the answer must fit (None: a plain text answer)."""
        if self.type == "json_schema":
            if self.json_schema is None:
                raise APIError(
                    400,
                    'response_format: type "json_schema" needs json_schema: {"schema": {...}}',
                    param="response_format.json_schema",
                )
            return self.json_schema.schema_
        return {"type": "object"} if self.type == "json_object" else None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE]})

    model: str = Field(description="A profile of this server (GET /v1/models lists them).")
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="The last message is the question (role user); the earlier ones are the"
        " context when `context` is not given.",
    )
    stream: bool = Field(default=False, strict=True)
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = Field(
        default=None,
        description='{"type": "json_schema", "json_schema": {"schema": {...}}} makes the answer'
        " a value of that schema, checked (and sent back to the model while it does not"
        " fit); the message content is its JSON.",
    )
    context: str | list[str] | dict[str, Any] | None = Field(
        default=None,
        description="The context the RLM works over: a string, a list of strings or an object.",
    )
    context_files: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Ids of uploaded files (/v1/files) that are the context instead: one"
        " file is its text, several a dict of file name -> text.",
    )

    @field_validator("context", mode="before")
    @classmethod
    def _context_shape(cls, value: Any) -> Any:
        # one message for a value of none of the three shapes, not one per shape
        fits = (
            value is None
            or isinstance(value, (str, dict))
            or (isinstance(value, list) and all(isinstance(item, str) for item in value))
        )
        if not fits:
            raise ValueError("must be a string, a list of strings or an object")
        return value

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def question(self) -> str:
        """The text of the last message, which must be the user's."""
        index = len(self.messages) - 1
        last = self.messages[index]
        if last.role != "user":
            raise APIError(
                400,
                f"messages[{index}]: the last message must be the user's question"
                f" (role 'user', not {last.role!r})",
                param=f"messages.{index}.role",
            )
        question = message_text(last, index)
        if not question.strip():
            raise APIError(
                400, f"messages[{index}]: the question is empty", param=f"messages.{index}"
            )
        return question

    def run_context(self) -> str | list[str] | dict[str, Any] | None:
        """`context` when given, else the earlier messages as "role: text" lines (None
        when the question is the only message)."""
        if self.context is not None:
            return self.context
        earlier = self.messages[:-1]
        if not earlier:
            return None
        return [f"{m.role}: {message_text(m, i)}" for i, m in enumerate(earlier)]


def message_text(message: ChatMessage, index: int) -> str:
    """A message's text: its string content, or its text parts joined."""
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise APIError(
                400,
                f"messages[{index}].content: only text parts are supported"
                f" (got type {part.get('type')!r})",
                param=f"messages.{index}.content",
            )
        texts.append(part["text"])
    return "".join(texts)
