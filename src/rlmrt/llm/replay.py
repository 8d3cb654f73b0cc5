"""`ReplayClient`: a model client that answers with the replies of a recorded run.

Root, compaction and best-effort calls of a run node are answered in the order they
were recorded. The node is recognised by its conversation's first user message (the
metadata of its context and its question, rebuilt from the node's `RunStarted`), so a
child run started by `rlm_query` gets the replies of the recorded child with the same
prompt and context. Sub-calls (`llm_query`) are answered by their prompt, matched on
the first 2,000 characters recorded in `SubCallStarted`; equal prompts take their
replies in recorded order. The first message of a session's run also lists the
session's contexts, rebuilt from `RunStarted.session`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from rlmrt.engine.prompts import first_messages, session_note
from rlmrt.errors import ModelError
from rlmrt.events import Event, ModelCallFinished, RunStarted, SubCallStarted
from rlmrt.llm.base import DeltaCallback, Message, ModelClient, ModelReply

PROMPT_KEY_CHARS = 2_000  # what SubCallStarted.prompt keeps of a sub-call's prompt


@dataclass
class _Node:
    replies: list[ModelCallFinished] = field(default_factory=list)
    used: int = 0
    assigned: bool = False

    @property
    def active(self) -> bool:
        return self.assigned and self.used < len(self.replies)


class ReplayClient(ModelClient):
    """Answers every model call with the recorded reply (see the module docs).

    A call the recording has no reply for raises `ModelError`."""

    def __init__(self, events: Sequence[Event], *, model: str | None = None) -> None:
        roots = [e for e in events if isinstance(e, RunStarted)]
        super().__init__(model=model or (roots[0].model if roots else "replay"))
        self._nodes: dict[str, list[_Node]] = defaultdict(list)
        by_call: dict[str, _Node] = {}
        for started in roots:
            node = _Node()
            by_call[started.call_id] = node
            self._nodes[_first_user_message(started)].append(node)
        sub_prompts: dict[str, str] = {
            e.call_id: e.prompt for e in events if isinstance(e, SubCallStarted)
        }
        self._subs: dict[str, deque[ModelCallFinished]] = defaultdict(deque)
        # a sub-call's reply is its only model call, whose parent is the sub-call
        for event in events:
            if not isinstance(event, ModelCallFinished) or event.parent_call_id is None:
                continue
            if event.purpose == "sub" and event.parent_call_id in sub_prompts:
                self._subs[sub_prompts[event.parent_call_id]].append(event)
            elif event.purpose != "sub" and event.parent_call_id in by_call:
                by_call[event.parent_call_id].replies.append(event)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        on_delta: DeltaCallback | None = None,
        temperature: float | None = None,
    ) -> ModelReply:
        recorded = self._root_reply(messages) if _is_root(messages) else self._sub_reply(messages)
        if on_delta is not None:
            on_delta(recorded.response)
        return ModelReply(
            text=recorded.response,
            model=recorded.model,
            input_tokens=recorded.input_tokens,
            output_tokens=recorded.output_tokens,
            finish_reason="stop",
        )

    def _sub_reply(self, messages: Sequence[Message]) -> ModelCallFinished:
        prompt = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        queue = self._subs.get(prompt[:PROMPT_KEY_CHARS])
        if not queue:
            raise ModelError(f"the recording has no reply for the sub-call {_short(prompt)}")
        return queue.popleft()

    def _root_reply(self, messages: Sequence[Message]) -> ModelCallFinished:
        key = messages[1]["content"]
        nodes = self._nodes.get(key, [])
        active = [] if len(messages) == 2 else [n for n in nodes if n.active]
        if len(active) > 1:  # equal siblings: the one whose last reply this follows
            last = next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), "")
            active = [n for n in active if n.replies[n.used - 1].response == last] or active
        if not active:
            fresh = [n for n in nodes if not n.assigned]
            if fresh:
                fresh[0].assigned = True
                active = fresh[:1]
        if not active or not active[0].active:
            question = key.rpartition("Question: ")[2].split("\n\n")[0]
            raise ModelError(
                f"the recording has no reply for call {len(messages)} messages long of the "
                f"run asked {_short(question)}"
            )
        node = active[0]
        node.used += 1
        return node.replies[node.used - 1]


def _first_user_message(started: RunStarted) -> str:
    # max_output_chars only shapes the system prompt, not this message
    place = started.session
    note = session_note(place["contexts"], int(place["index"])) if place else None
    messages = first_messages(
        started.prompt,
        started.context_metadata,
        max_output_chars=200,
        depth=started.depth,
        session_note=note,
    )
    return messages[1]["content"]


def _is_root(messages: Sequence[Message]) -> bool:
    return (
        len(messages) >= 2
        and messages[0]["role"] == "system"
        and "FINAL_VAR(" in messages[0]["content"]
        and messages[1]["role"] == "user"
    )


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
