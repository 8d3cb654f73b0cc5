"""`ReplayClient`: a model client that answers with the replies of a recorded run.

A call is answered by what was recorded, never by a prompt rebuilt from it (the first
prompt also depends on the prompt profile, its peek lines and the session). The
client watches the replayed run's events (`observe`, subscribed by the replay) and
matches each replayed node to the recorded one: the root to the root, a sub-call to
the next recorded sub-call of the matched node with the same kind and prompt, a child
run to the child run of the matched sub-call. Each model call says which node or
sub-call makes it (`rlmrt.llm.call_site.MODEL_CALL`): a node's calls (root,
compaction, best effort) get that node's recorded replies in order, an `llm_query`
gets the reply recorded for its sub-call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rlmrt.errors import ModelError
from rlmrt.events import Event, ModelCallFinished, RunStarted, SubCallStarted
from rlmrt.llm.base import ChatMessage, DeltaCallback, ModelClient, ModelReply
from rlmrt.llm.call_site import MODEL_CALL

__all__ = ["ReplayClient"]


class ReplayClient(ModelClient):
    """Answers the model calls of a replayed run with the recorded replies (see the
    module docs). Subscribe `observe` to the replayed run's events before it starts.

    A call the recording has no reply for raises `ModelError`."""

    def __init__(self, events: Sequence[Event], *, model: str | None = None) -> None:
        runs = [e for e in events if isinstance(e, RunStarted)]
        super().__init__(model=model or (runs[0].model if runs else "replay"))
        self._root = next((e for e in runs if e.parent_call_id is None), None)
        # recorded child run by the recorded sub-call that started it
        self._child_of = {e.parent_call_id: e.call_id for e in runs if e.parent_call_id}
        # recorded sub-calls of each recorded node, in the order they started
        self._subs: dict[str, list[SubCallStarted]] = defaultdict(list)
        for event in events:
            if isinstance(event, SubCallStarted) and event.parent_call_id is not None:
                self._subs[event.parent_call_id].append(event)
        # recorded replies by the recorded node or sub-call that asked for them
        self._replies: dict[str, list[ModelCallFinished]] = defaultdict(list)
        for event in events:
            if isinstance(event, ModelCallFinished) and event.parent_call_id is not None:
                self._replies[event.parent_call_id].append(event)
        self._used: dict[str, int] = defaultdict(int)
        self._taken: set[str] = set()  # recorded sub-calls matched already
        self._matched: dict[str, str] = {}  # replayed call id -> recorded call id
        self._prompts: dict[str, str] = {}  # of the replayed nodes and sub-calls

    def observe(self, event: Event) -> None:
        """Follow the replayed run (an event handler)."""
        if isinstance(event, RunStarted | SubCallStarted):
            self._prompts[event.call_id] = event.prompt
        if isinstance(event, RunStarted):
            recorded: str | None = None
            if event.parent_call_id is None:
                recorded = self._root.call_id if self._root is not None else None
            elif event.parent_call_id in self._matched:
                recorded = self._child_of.get(self._matched[event.parent_call_id])
            if recorded is not None:
                self._matched[event.call_id] = recorded
        elif isinstance(event, SubCallStarted) and event.parent_call_id in self._matched:
            node = self._matched[event.parent_call_id]
            for sub in self._subs[node]:
                same = (sub.sub_kind, sub.prompt) == (event.sub_kind, event.prompt)
                if same and sub.call_id not in self._taken:
                    self._taken.add(sub.call_id)
                    self._matched[event.call_id] = sub.call_id
                    return

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        on_delta: DeltaCallback | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ModelReply:
        recorded = self._reply()
        if on_delta is not None:
            on_delta(recorded.response)
        return ModelReply(
            text=recorded.response,
            model=recorded.model,
            input_tokens=recorded.input_tokens,
            output_tokens=recorded.output_tokens,
            cache_read_tokens=recorded.cache_read_tokens,
            cache_write_tokens=recorded.cache_write_tokens,
            reasoning_tokens=recorded.reasoning_tokens,
            finish_reason="stop",
        )

    def _reply(self) -> ModelCallFinished:
        call = MODEL_CALL.get()
        if call is None or call.parent_call_id is None:
            raise ModelError(
                "ReplayClient answers the model calls of a replayed run only "
                "(made by the engine, with `observe` subscribed to its events)"
            )
        source = self._matched.get(call.parent_call_id)
        replies = self._replies.get(source, []) if source is not None else []
        used = self._used[call.parent_call_id]
        if used >= len(replies):
            asked = _short(self._prompts.get(call.parent_call_id, "?"))
            if call.purpose == "sub":
                raise ModelError(f"the recording has no reply for the sub-call {asked}")
            raise ModelError(
                f"the recording has no reply for model call {used + 1} of the run asked {asked}"
            )
        self._used[call.parent_call_id] = used + 1
        return replies[used]


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
