"""The model call in progress, for a client that answers by where a call comes from.

Around each `ModelClient.complete`, the engine sets `MODEL_CALL` to the call's
`ModelCallStarted` event (its `parent_call_id` is the run node, or the sub-call of an
`llm_query`). Context variables follow asyncio tasks, so concurrent calls each see
their own. `ReplayClient` reads it to find the recorded reply of the same call.
"""

from __future__ import annotations

from contextvars import ContextVar

from rlmrt.events import ModelCallStarted

__all__ = ["MODEL_CALL"]

MODEL_CALL: ContextVar[ModelCallStarted | None] = ContextVar("rlmrt_model_call", default=None)
