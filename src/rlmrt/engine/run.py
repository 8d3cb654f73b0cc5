"""One run of the recursion: the loop of model reply -> code -> output -> reply.

A `Run` is a node of the run tree (the root, or a child started by `rlm_query`). It
owns its conversation and, unless it is a session's turn (`SessionTurn`), its sandbox;
everything it spends goes through its `RunTree`. A child run holds one of the tree's
run slots while its sandbox lives (engine/slots.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from rlmrt.context.search import ContextSearch
from rlmrt.engine.answers import non_answer
from rlmrt.engine.bridge import RunBridge
from rlmrt.engine.context_input import LoadedContext, first_line, load_context
from rlmrt.engine.evidence import (
    ContextLines,
    Evidence,
    empty_result,
    lines_holding,
    peek_lines,
)
from rlmrt.engine.near_miss import longer_value, near_misses, whole_value_variant
from rlmrt.engine.output_type import OutputInvalid, OutputType
from rlmrt.engine.parsing import (
    FinalMarker,
    final_call_value,
    find_code_blocks,
    find_final,
    first_block_reply,
    is_final_call,
    literal_value,
    strip_code,
)
from rlmrt.engine.prompts import (
    BEST_EFFORT_PROMPT,
    COMPACT_PROMPT,
    DEFERRED_FINAL_NOTE,
    DOUBTED_FINAL_NOTE,
    ECHOED_SUMMARY_NOTE,
    EMPTY_OUTPUT_NOTE,
    EMPTY_RESULT_NOTE,
    NEAR_MISS_NOTE,
    NO_CODE_FEEDBACK,
    NOT_AN_ANSWER_NOTE,
    OUTPUT_INVALID_NOTE,
    PARTIAL_FINAL_NOTE,
    QUESTION_REMINDER,
    REPEATED_CODE_NOTE,
    REPEATED_CODE_SUMMARY,
    REPEATED_FAILURE_NOTE,
    UNSEEN_FINAL_LINES_NOTE,
    UNSEEN_FINAL_NOTE,
    WHOLE_VALUE_RESULT_NOTE,
    compacted_messages,
    first_messages,
    misnamed_helper_note,
)
from rlmrt.engine.recall import recall_for_prompt
from rlmrt.engine.shared import SharedSandbox
from rlmrt.engine.slots import RunSlot
from rlmrt.engine.tree import RunTree
from rlmrt.errors import BudgetExceededError, ModelError
from rlmrt.events import (
    Answer,
    CodeExecuted,
    CodeStarted,
    Compacted,
    LimitNotEnforced,
    MemoryRecalled,
    OutputRejected,
    RunErrored,
    RunFinished,
    RunStarted,
    RunWaited,
    SandboxStarted,
    SubCallFinished,
    SubCallKind,
    SubCallStarted,
)
from rlmrt.llm.base import ChatMessage, Message
from rlmrt.llm.media import media_refusal, user_message
from rlmrt.llm.structured import json_schema_format
from rlmrt.observe.usage import Usage
from rlmrt.prompt_profiles import profile_for
from rlmrt.sandbox.base import ExecResult, SandboxBackend

PROMPT_PREVIEW_CHARS = 2_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    answer: str | None
    partial: bool
    stop_reason: str
    iterations: int
    usage: Usage
    output: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionTurn:
    """What a run made in a session takes from it: the session's sandbox (started and
    loaded by the session), the note telling the model about its REPL, and the run's
    place in the session (recorded in `RunStarted.session` for replays)."""

    sandbox: SharedSandbox
    note: str
    place: dict[str, Any]


class Run:
    def __init__(
        self,
        tree: RunTree,
        *,
        prompt: str,
        context: LoadedContext,
        depth: int,
        call_id: str,
        parent_call_id: str | None,
        turn: SessionTurn | None = None,
        output_type: OutputType | None = None,
        output_retries: int = 2,
    ) -> None:
        self.tree = tree
        self.output_type = output_type
        self.output: Any = None  # the typed answer, when an output type was asked
        self._output_retries = output_retries
        self._output_rejections = 0
        self.prompt = prompt
        self.context = context
        self.depth = depth
        self.call_id = call_id
        self.parent_call_id = parent_call_id
        self.config = tree.config
        self.iterations = 0
        self._turn = turn
        self._slot = RunSlot(tree.run_slots, self._emit_wait)
        self._bridge = RunBridge(self)
        self._last_input_tokens = 0
        self._profile = profile_for(tree.client.model, tree.config.prompt.profile)
        self._ran: dict[str, tuple[int, str | None]] = {}  # code -> (iteration, error)
        self._repeats: dict[str, int] = {}  # code -> times run again
        self._evidence = Evidence()  # read only with the profile's checked_final
        self._peek: list[str] = []  # the lines the first prompt showed
        self._about: list[str] | None = None  # lines about the question, found once
        self._near_missed: set[str] = set()  # substring tests already noted
        # after a repeated block, the next call samples warmer: at temperature 0 a model
        # that repeated itself once repeats itself forever
        self._unstick: float | None = None
        self._echoes = 0  # replies that only copied the runtime's summary of a repeat
        self._unstick_seed: int | None = None  # set with _unstick: a new sample each repeat

    @property
    def searcher(self) -> ContextSearch | None:
        """The tree's `context_search()` provider; None: no provider."""
        return self.tree.searcher

    # -- events -----------------------------------------------------------------
    def _ids(self) -> dict[str, Any]:
        return {
            "run_id": self.tree.run_id,
            "call_id": self.call_id,
            "parent_call_id": self.parent_call_id,
            "depth": self.depth,
        }

    def _offered_tools(self) -> dict[str, dict[str, str | None]] | None:
        """The tree's tools, recorded once: on the root's `RunStarted`."""
        if self.depth != 0 or self.tree.tools is None:
            return None
        return self.tree.tools.record()

    # -- the loop -----------------------------------------------------------------
    async def execute(self) -> RunOutcome:
        self.tree.emit(
            RunStarted(
                **self._ids(),
                prompt=self.prompt,
                model=self.tree.client.model,
                sandbox=self.config.sandbox.kind,
                context_metadata=self.context.metadata,
                max_depth=self.config.budget.max_depth,
                session=self._turn.place if self._turn is not None else None,
                output_schema=self.output_type.schema if self.output_type else None,
                tools=self._offered_tools(),
            )
        )
        try:
            answer, partial, reason = await self._loop()
        except BaseException as exc:
            self.tree.emit(
                RunErrored(
                    **self._ids(),
                    error_type=type(exc).__name__,
                    message=str(exc) or type(exc).__name__,
                )
            )
            self._finish(None, partial=True, reason="error")
            raise
        return self._finish(answer, partial=partial, reason=reason)

    def _finish(self, answer: str | None, *, partial: bool, reason: str) -> RunOutcome:
        usage = self.tree.ledger.usage(self.call_id)
        usage.wall_time_s = time.time() - self._started
        self.tree.emit(
            RunFinished(
                **self._ids(),
                answer=answer,
                partial=partial,
                stop_reason=reason,
                iterations=self.iterations,
                usage=usage.to_dict(),
            )
        )
        return RunOutcome(
            answer=answer,
            partial=partial,
            stop_reason=reason,
            iterations=self.iterations,
            usage=self.tree.ledger.usage(self.call_id),
            output=self.output,
        )

    async def _loop(self) -> tuple[str | None, bool, str]:
        self._started = time.time()
        if self._turn is not None:
            # The session started it and loaded the contexts; this run only borrows it.
            shared = self._turn.sandbox
            shared.host.bind(self)
            self._report_unenforced(shared.backend)
            try:
                return await self._work(shared.backend)
            finally:
                shared.host.bind(None)
        if self.depth > 0:
            await self._slot.take()
        try:
            asked = time.perf_counter()
            sandbox = await self.tree.sandboxes.acquire(
                self.config.sandbox.kind,
                self.config.limits,
                self._bridge,
                self.config.sandbox.backend_options(),
            )
            self.tree.emit(
                SandboxStarted(
                    **self._ids(),
                    sandbox=sandbox.kind,
                    pooled=sandbox.from_pool,
                    start_s=time.perf_counter() - asked,
                )
            )
            try:
                self._report_unenforced(sandbox)
                await sandbox.load_context(self.context.value)
                return await self._work(sandbox)
            finally:
                await sandbox.aclose()
        finally:
            self._slot.release()

    @cached_property
    def _lines(self) -> ContextLines | None:
        """The context's lines when it is a text or a list of texts: read only by the
        small profile's checks, so made on first use (a list's items are all checked)."""
        return ContextLines.of(self.context.value)

    def _emit_wait(self, seconds: float) -> None:
        self.tree.emit(RunWaited(**self._ids(), waited_s=seconds, limit=self.tree.run_slots.limit))

    async def _work(self, sandbox: SandboxBackend) -> tuple[str | None, bool, str]:
        peek: list[str] = []
        lines = self._lines
        if self._profile.peek_lines and lines is not None:
            peek = await asyncio.to_thread(peek_lines, self.prompt, lines, self._profile.peek_lines)
            self._evidence.hint("\n".join(peek))
            self._peek = peek
        messages = first_messages(
            self.prompt,
            self.context.metadata,
            max_output_chars=self.config.prompt.max_output_chars,
            depth=self.depth,
            session_note=self._turn.note if self._turn is not None else None,
            context_search=self.searcher is not None and self.searcher.enabled,
            extra_rules=self._profile.extra_rules,
            peek=peek,
            answer_type=self.output_type.instructions() if self.output_type else None,
            memory_note=await self._recall() if self.depth == 0 else "",
            tools=self.tree.tools.prompt_lines() if self.tree.tools is not None else (),
            memory=self.config.memory.repl and self._profile.lists_memory,
        )
        while True:
            stop_reason = await self._iterate(sandbox, messages)
            if not isinstance(stop_reason, _Done):
                break
            errors = self._typed(stop_reason)
            if not errors:
                self._emit_answer(stop_reason.answer, stop_reason.source)
                return stop_reason.answer, False, "final"
            if self._output_rejections > self._output_retries:
                # out of retries: the last value, marked partial, with its errors recorded
                self._emit_answer(stop_reason.answer, stop_reason.source, partial=True)
                return stop_reason.answer, True, "invalid_output"
            note = OUTPUT_INVALID_NOTE.format(errors="\n".join(f"- {e}" for e in errors))
            messages.append({"role": "user", "content": note})
        done = await self._best_effort(sandbox, messages, stop_reason)
        if done is None:
            return None, True, stop_reason
        self._typed(done)
        self._emit_answer(done.answer, done.source, partial=True)
        return done.answer, True, stop_reason

    async def _recall(self) -> str:
        """The project's memory for the first prompt, each part recorded as an event."""
        recalled = await recall_for_prompt(
            self.config.memory,
            self.tree.memory,
            self.prompt,
            data_line=first_line(self.context.metadata),
        )
        for purpose, items in (("pinned", recalled.pinned), ("lessons", recalled.lessons)):
            if items:
                self.tree.emit(
                    MemoryRecalled(
                        **self._ids(),
                        purpose=purpose,  # type: ignore[arg-type]
                        items=[{"id": i.id, "kind": i.kind, "text": i.text} for i in items],
                    )
                )
        return recalled.note

    def _typed(self, done: _Done) -> list[str]:
        """Check an answer against the output type (none asked: nothing to check); the
        typed value is kept in `output`, a misfit is recorded and its errors returned."""
        if self.output_type is None:
            return []
        try:
            self.output = self.output_type.validate(done.answer)
        except OutputInvalid as exc:
            self._output_rejections += 1
            self.tree.emit(
                OutputRejected(
                    **self._ids(),
                    answer=done.answer,
                    errors=exc.errors,
                    attempt=self._output_rejections,
                    retries=self._output_retries,
                )
            )
            return exc.errors
        return []

    async def _iterate(self, sandbox: SandboxBackend, messages: list[Message]) -> _Done | str:
        """Returns the answer, or the name of the limit that stopped the run."""
        checked = self._profile.checked_final
        while True:
            if self.iterations >= self.config.budget.max_iterations:
                return "max_iterations"
            exceeded = self.tree.budget.exceeded()
            if exceeded is not None:
                return exceeded.limit
            try:
                await self._compact_if_needed(sandbox, messages)
            except BudgetExceededError as exc:
                return exc.limit
            self.iterations += 1
            try:
                reply = await self.tree.model_call(
                    messages,
                    parent_call_id=self.call_id,
                    depth=self.depth,
                    purpose="root",
                    temperature=self._unstick,
                    seed=self._unstick_seed,
                )
            except BudgetExceededError as exc:
                return exc.limit
            self._last_input_tokens = reply.input_tokens
            text = reply.text
            messages.append({"role": "assistant", "content": text})
            blocks = find_code_blocks(text)
            if self._profile.first_block_only and len(blocks) > 1:
                blocks, text = blocks[:1], first_block_reply(text)
                messages[-1]["content"] = text
            answer = self._evidence.literal_answer(blocks) if checked else None
            if answer is not None:
                return _Done(answer, "text")
            if not blocks:
                marker = find_final(text)
                note = self._refused_text_final(marker, checked=checked)
                if note is not None:
                    messages.append({"role": "user", "content": note})
                    continue
                done = await self._final_from_text(sandbox, marker)
                if done is not None:
                    return done
                if self._profile.first_block_only and _echoes_summary(text):
                    self._echoes += 1
                    self._sample_warmer()
                    _forget_echo(messages, ECHOED_SUMMARY_NOTE.format(times=self._echoes))
                    continue
                messages.append({"role": "user", "content": self._no_final_feedback(text)})
                continue
            outputs: list[str] = []
            repeats: list[str] = []
            self._unstick = self._unstick_seed = None
            for index, code in enumerate(blocks, start=1):
                exec_id = self.tree.new_call_id()
                self.tree.emit(
                    CodeStarted(
                        run_id=self.tree.run_id,
                        call_id=exec_id,
                        parent_call_id=self.call_id,
                        depth=self.depth,
                        iteration=self.iterations,
                    )
                )
                result = await sandbox.execute(code)
                self._emit_exec(code, result, call_id=exec_id)
                outputs.append(self._format_output(index, len(blocks), result))
                if result.final_set:
                    answer = result.final_answer or ""
                    if checked and not self._evidence.was_seen(answer, hints=False):
                        outputs.append(self._refused_final_note(answer))
                        # a refused FINAL repeated as it was is a loop like any other
                        repeats = self._repeat_note(code, result)
                        outputs.extend(repeats)
                        break
                    return _Done(answer, "code")
                if checked:
                    self._evidence.record(code, result)
                    outputs.extend(await self._empty_result_note(code, result))
                    outputs.extend(await self._near_miss_note(sandbox, code, result))
                repeats = self._repeat_note(code, result)
                outputs.extend(repeats)
                pointed = (
                    self._evidence.pointed_answer(code, result, len(blocks)) if checked else None
                )
                if pointed is not None and non_answer(pointed, self.prompt) is None:
                    return _Done(pointed, "text")
            if repeats and self._profile.first_block_only:
                _forget_repeat(messages, repeats[0], blocks[0], result.stdout)
                continue
            if find_final(text) is not None:
                outputs.append(DEFERRED_FINAL_NOTE)
            if self._profile.remind_question:
                outputs.append(QUESTION_REMINDER.format(prompt=self.prompt))
            messages.append({"role": "user", "content": "\n\n".join(outputs)})

    def _refused_text_final(self, marker: FinalMarker | None, *, checked: bool) -> str | None:
        """Why a FINAL(...) written as text is refused (None: it is not): it is not an
        answer (code, the question, a refusal, an error), or, with `checked`, an empty
        result no second block confirmed."""
        if marker is None or marker.kind != "FINAL":
            return None
        answer = marker.argument
        reason = non_answer(answer, self.prompt)
        if reason is not None:
            return NOT_AN_ANSWER_NOTE.format(answer=_brief(answer), reason=reason)
        if checked and self._evidence.doubted(answer):
            return DOUBTED_FINAL_NOTE.format(answer=_brief(answer))
        return None

    async def _empty_result_note(self, code: str, result: ExecResult) -> list[str]:
        """A note when a block found nothing ("0", "[]") although `context` holds lines
        about the question: small models guess a filter from the question's words
        ("status: OVERDUE") rather than the data's format, and then answer 0. The note
        shows real lines, and the empty value is not taken as seen until another block
        confirms it."""
        empty = empty_result(result)
        lines = self._lines
        if empty is None or lines is None:
            return []
        if self._about is None:
            limit = max(self._profile.peek_lines, 3) + 3
            found = await asyncio.to_thread(peek_lines, self.prompt, lines, limit)
            fresh = [line for line in found if line not in self._peek]
            self._about = (fresh or found)[:3]
        if not self._about:
            return []
        self._evidence.doubt(empty, code)
        return [EMPTY_RESULT_NOTE.format(output=empty, lines="\n".join(self._about))]

    async def _near_miss_note(
        self, sandbox: SandboxBackend, code: str, result: ExecResult
    ) -> list[str]:
        """A note when the block's substring test (`"OPEN" in line`) also matches longer
        values of `context` ("REOPENED"): its result ran clean and looks right, and no
        other check sees that it counted the wrong lines. The runtime runs the same code
        with whole-value tests and shows what it prints, and the block's own output is
        no answer until other code prints it. Once per tested value a run."""
        lines = self._lines
        if result.error is not None or not result.stdout.strip() or lines is None:
            return []
        found = await asyncio.to_thread(near_misses, code, lines.text)
        fresh = [miss for miss in found if miss.literal not in self._near_missed]
        if not fresh:
            return []
        self._near_missed.update(miss.literal for miss in fresh)
        notes = [
            NEAR_MISS_NOTE.format(
                literal=_brief(miss.literal, 60),
                others=", ".join(
                    f"{_brief(other, 60)} ({lines:,} line{'s' if lines != 1 else ''})"
                    for other, lines in miss.others
                ),
                exact=miss.exact_lines,
                test=miss.whole_value_test(),
            )
            for miss in fresh
        ]
        output = result.stdout.strip()
        if "\n" not in output:
            self._evidence.doubt(output, code)  # not an answer until other code prints it
        variant = whole_value_variant(code, fresh)
        if variant is not None:
            checked = await sandbox.execute(variant)
            self._emit_exec(variant, checked)
            if checked.error is None and checked.stdout.strip():
                self._evidence.record(variant, checked)
                notes.append(
                    WHOLE_VALUE_RESULT_NOTE.format(output=_truncate(checked.stdout.strip(), 500))
                )
        return notes

    def _refused_final_note(self, answer: str) -> str:
        """Why FINAL(answer) from code was refused. The model is shown the value (and the
        lines of `context` holding it, to check it against): repeating it is accepted."""
        whole = self._evidence.whole_of(answer)
        if whole is not None:
            return PARTIAL_FINAL_NOTE.format(answer=_brief(answer), whole=_brief(whole))
        lines = self._lines
        longer = longer_value(answer, lines.text) if lines is not None and answer else None
        if longer is not None:  # the code cut a value ("meadow" of "meadow-9328")
            self._evidence.show(longer)
            return PARTIAL_FINAL_NOTE.format(answer=_brief(answer), whole=_brief(longer))
        self._evidence.show(answer)
        holding = lines_holding(answer, lines, 3) if lines is not None else []
        if holding:
            return UNSEEN_FINAL_LINES_NOTE.format(answer=_brief(answer), lines="\n".join(holding))
        return UNSEEN_FINAL_NOTE.format(answer=_brief(answer))

    def _sample_warmer(self) -> None:
        """The next root call samples warmer, with a seed of its own: the model loops."""
        configured = self.config.llm.temperature or 0.0
        self._unstick = max(configured, UNSTICK_TEMPERATURE)
        # a seeded model samples a prompt the same way at any temperature (the ledger
        # showcase sent one wrong block 19 times at 0.7 with seed 0): a new seed each
        # repeat. Unseeded models vary already, and some providers refuse the argument.
        seed = self.config.llm.seed
        self._unstick_seed = None if seed is None else seed + self.iterations

    def _repeat_note(self, code: str, result: ExecResult) -> list[str]:
        """A note when the model runs a block it ran before: it is looping."""
        key = code.strip()
        before = self._ran.get(key)
        if before is None:  # the first run is the one notes name
            self._ran[key] = (self.iterations, result.error)
            return []
        iteration, error = before
        repeats = self._repeats[key] = self._repeats.get(key, 0) + 1
        # the count changes the note each time: with the repeat dropped from the
        # conversation (first_block_only), the same note would give the same prompt, and
        # a seeded server the same reply, until max_iterations
        again = f", and {repeats - 1} time{'s' if repeats > 2 else ''} since" if repeats > 1 else ""
        self._sample_warmer()
        if result.error is not None and result.error == error:
            return [REPEATED_FAILURE_NOTE.format(iteration=iteration, again=again)]
        return [REPEATED_CODE_NOTE.format(iteration=iteration, again=again)]

    async def _compact_if_needed(self, sandbox: SandboxBackend, messages: list[Message]) -> None:
        """Restart the conversation from a summary when the last root call's input
        neared the window. The earlier messages go to `conversation_log` in the REPL."""
        window = self.tree.context_window()
        tokens = self._last_input_tokens
        if window is None or tokens < self.config.prompt.compact_at * window or len(messages) <= 2:
            return
        request: list[Message] = [*messages, {"role": "user", "content": COMPACT_PROMPT}]
        reply = await self.tree.model_call(
            request, parent_call_id=self.call_id, depth=self.depth, purpose="compact"
        )
        summary = strip_code(reply.text).strip() or reply.text
        log = await _get_log(sandbox)
        log.extend({"role": m["role"], "content": m["content"]} for m in messages)
        await sandbox.set_variable("conversation_log", log)
        before = len(messages)
        messages[:] = compacted_messages(messages, summary)
        self._last_input_tokens = 0
        self.tree.emit(
            Compacted(
                **self._ids(),
                tokens_before=tokens,
                window_tokens=window,
                messages_before=before,
                summary_chars=len(summary),
            )
        )

    def _no_final_feedback(self, text: str) -> str:
        marker = find_final(text)
        if marker is not None and marker.kind == "FINAL_VAR":
            return (
                f"FINAL_VAR({marker.argument!r}) names no variable of the REPL. "
                "Define it in a ```repl block first, or use FINAL(answer)."
            )
        return NO_CODE_FEEDBACK

    async def _final_from_text(
        self, sandbox: SandboxBackend, marker: FinalMarker | None
    ) -> _Done | None:
        if marker is None:
            return None
        if marker.kind == "FINAL":
            return _Done(marker.argument, "text")
        name = marker.argument.strip().strip("\"'")
        result = await sandbox.execute(f"FINAL_VAR({name!r})")
        self._emit_exec(f"FINAL_VAR({name!r})", result)
        if not result.final_set:
            return None
        return _Done(result.final_answer or "", "text")

    def _emit_exec(self, code: str, result: ExecResult, *, call_id: str | None = None) -> None:
        self.tree.emit(
            code_executed(
                code,
                result,
                run_id=self.tree.run_id,
                call_id=call_id or self.tree.new_call_id(),
                parent_call_id=self.call_id,
                depth=self.depth,
                iteration=self.iterations,
            )
        )

    def _emit_answer(self, answer: str, source: str, *, partial: bool = False) -> None:
        self.tree.emit(
            Answer(**self._ids(), answer=answer, partial=partial, source=source)  # type: ignore[arg-type]
        )

    def _format_output(self, index: int, count: int, result: ExecResult) -> str:
        head = "Output:" if count == 1 else f"Output of block {index} of {count}:"
        parts = []
        if result.stdout:
            parts.append(_truncate(result.stdout, self.config.prompt.max_output_chars))
        if result.error:
            parts.append(_truncate(result.error, self.config.prompt.max_output_chars // 2))
            note = misnamed_helper_note(result.error)
            if note is not None:
                parts.append(note)
        elif result.stderr:
            parts.append(
                "stderr:\n" + _truncate(result.stderr, self.config.prompt.max_output_chars // 2)
            )
        if not parts:
            parts.append(EMPTY_OUTPUT_NOTE)
        return head + "\n" + "\n".join(parts)

    async def _best_effort(
        self, sandbox: SandboxBackend, messages: list[Message], reason: str
    ) -> _Done | None:
        """One last call for the best answer from what is known; the work is kept.

        Skipped when a token or cost budget is spent (any reply would overspend it) or
        the closing slice past the wall-time budget is over (`Budget.closing_call_refusal`)."""
        refusal = self.tree.budget.closing_call_refusal()
        if refusal is not None:
            self._report(
                f"the best-effort answer call was skipped: {refusal}", "BudgetExceededError"
            )
            return None
        request: list[Message] = [
            *messages,
            {"role": "user", "content": BEST_EFFORT_PROMPT.format(reason=reason)},
        ]
        try:
            reply = await self.tree.model_call(
                request,
                parent_call_id=self.call_id,
                depth=self.depth,
                purpose="final",
                closing=True,
            )
        except (ModelError, BudgetExceededError) as exc:
            self._report(f"the best-effort answer call failed: {exc}", type(exc).__name__)
            return None
        marker = find_final(reply.text)
        if marker is not None and marker.kind == "FINAL_VAR":
            return await self._final_from_text(sandbox, marker)
        # Without FINAL, the reply's prose is the answer: code it wrote cannot run now,
        # but a block that is only a value ("```repl\n475562") is that value.
        answer = marker.argument if marker is not None else strip_code(reply.text).strip()
        blocks = find_code_blocks(reply.text)
        if not answer and len(blocks) == 1:
            answer = literal_value(blocks[0]) or final_call_value(blocks[0]) or ""
            if not answer and is_final_call(blocks[0]):
                # `FINAL(count)`: one call naming a value the REPL holds, safe to run
                result = await sandbox.execute(blocks[0])
                self._emit_exec(blocks[0], result)
                answer = (result.final_answer or "") if result.final_set else ""
        if not answer:
            self._report("the best-effort reply held no answer", "NoAnswer")
            return None
        why = non_answer(answer, self.prompt)
        if why is not None:
            self._report(f"the best-effort reply was {why}, not an answer", "NoAnswer")
            return None
        return _Done(answer, "best_effort")

    def _report_unenforced(self, sandbox: SandboxBackend) -> None:
        missing = sandbox.unenforced_limits()
        if missing:
            # the kind says how far each limit holds ("best-effort: ..." or why not at all)
            how = {quota.name: quota.how for quota in type(sandbox).quota_report()}
            held = "; ".join(f"{name}: {how.get(name, 'not enforced')}" for name in missing)
            self.tree.emit(
                LimitNotEnforced(
                    **self._ids(),
                    sandbox=sandbox.kind,
                    limits=missing,
                    message=f"the {sandbox.kind} sandbox does not guarantee every limit ({held})",
                )
            )

    def _report(self, message: str, error_type: str) -> None:
        self.tree.emit(RunErrored(**self._ids(), error_type=error_type, message=message))

    # -- sub-calls (called by the bridge) ----------------------------------------
    async def sub_llm(
        self,
        prompt: str,
        model: str | None,
        media: Sequence[dict[str, Any]] = (),
        output: OutputType | None = None,
    ) -> Any:
        """`media`: content parts (`rlmrt.llm.media`) sent after the prompt; a model
        that does not take them is refused here, before any call. With `output`, the
        model is asked for JSON of its schema and the reply's typed value (as JSON
        data) is the result; a reply that does not fit is a ValueError naming the
        fields."""
        if media:
            name = model or self.config.llm.sub_model or self.tree.client.model
            refusal = media_refusal(name, media, self.config.llm.media_input)
            if refusal is not None:
                raise ValueError(refusal)
        return await self._sub_call(
            "llm", prompt, model, lambda cid: self._llm(prompt, model, cid, media, output)
        )

    async def _llm(
        self,
        prompt: str,
        model: str | None,
        call_id: str,
        media: Sequence[dict[str, Any]] = (),
        output: OutputType | None = None,
    ) -> Any:
        messages: list[ChatMessage] = []
        if self.config.llm.sub_system_prompt:
            messages.append({"role": "system", "content": self.config.llm.sub_system_prompt})
        messages.append(user_message(prompt, media))
        reply = await self.tree.model_call(
            messages,
            parent_call_id=call_id,
            depth=self.depth + 1,
            purpose="sub",
            model=model,
            response_format=json_schema_format(output.schema, output.name) if output else None,
        )
        if output is None:
            return reply.text
        return output.data_of(reply.text, source="llm_query() reply")

    async def sub_rlm(self, prompt: str, context: Any, output: OutputType | None = None) -> Any:
        """With `output`, the child run is asked for a typed answer (with its retries)
        and its typed value, as JSON data, is the result."""
        if self.depth + 1 > self.config.budget.max_depth:
            text = prompt if context is None else f"{prompt}\n\n{_as_text(context)}"
            return await self._sub_call(
                "llm", text, None, lambda cid: self._llm(text, None, cid, (), output)
            )
        return await self._sub_call(
            "rlm", prompt, None, lambda cid: self._child(prompt, context, cid, output)
        )

    async def _child(
        self, prompt: str, context: Any, call_id: str, output: OutputType | None = None
    ) -> Any:
        loaded = load_context(prompt if context is None else context, self.config.input)
        child = Run(
            self.tree,
            prompt=prompt,
            context=loaded,
            depth=self.depth + 1,
            call_id=self.tree.new_call_id(),
            parent_call_id=call_id,
            output_type=output,  # with the default retries
        )
        async with self._slot.lent():
            outcome = await child.execute()
        if outcome.answer is None:
            raise BudgetExceededError(
                outcome.stop_reason,
                f"the sub-run stopped ({outcome.stop_reason}) without an answer",
            )
        if output is None:
            return outcome.answer
        # the child's own checks ran (and its retries); a partial answer may still misfit
        return output.data_of(outcome.answer, source="rlm_query() answer")

    async def _sub_call(
        self,
        kind: SubCallKind,
        prompt: str,
        model: str | None,
        work: Callable[[str], Awaitable[Any]],
    ) -> Any:
        """Wrap a sub-call in its events; `work(call_id)` does it (a typed result is
        recorded as its JSON)."""
        call_id = self.tree.new_call_id()
        self.tree.emit(
            SubCallStarted(
                run_id=self.tree.run_id,
                call_id=call_id,
                parent_call_id=self.call_id,
                depth=self.depth,
                sub_kind=kind,
                prompt=prompt[:PROMPT_PREVIEW_CHARS],
                model=model,
            )
        )
        started = time.perf_counter()
        result: Any = None
        error: str | None = None
        try:
            self.tree.budget.check()
            result = await work(call_id)
            return result
        except BaseException as exc:  # recorded, then raised on
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise
        finally:
            self.tree.emit(
                SubCallFinished(
                    run_id=self.tree.run_id,
                    call_id=call_id,
                    parent_call_id=self.call_id,
                    depth=self.depth,
                    sub_kind=kind,
                    ok=error is None,
                    response=result
                    if isinstance(result, str) or result is None
                    else json.dumps(result, ensure_ascii=False),
                    error=error,
                    duration_s=time.perf_counter() - started,
                )
            )


def code_executed(
    code: str,
    result: ExecResult,
    *,
    run_id: str,
    call_id: str,
    parent_call_id: str | None,
    depth: int,
    iteration: int,
) -> CodeExecuted:
    """The event of one execution of `code` that gave `result`."""
    return CodeExecuted(
        run_id=run_id,
        call_id=call_id,
        parent_call_id=parent_call_id,
        depth=depth,
        iteration=iteration,
        code=code,
        stdout=result.stdout,
        stderr=result.stderr,
        error=result.error,
        duration_s=result.duration_s,
    )


@dataclass(frozen=True, slots=True)
class _Done:
    answer: str
    source: Literal["code", "text", "best_effort"]


UNSTICK_TEMPERATURE = 0.7


def _forget_repeat(messages: list[Message], note: str, code: str, output: str) -> None:
    """Drop a reply that repeated an earlier block; its note goes on the last output, in
    place of the note of an earlier repeat. A small model copies its own earlier replies:
    each repeat kept in the conversation makes the next one likelier, even when sampled
    warmer with a new seed. So when the block it repeats is the reply just before, that
    reply's code goes too: the conversation keeps only what it printed."""
    _drop_reply(messages, note, _REPEAT_MARK)
    if len(messages) >= 2 and messages[-2]["role"] == "assistant":
        earlier = messages[-2]
        if code.strip() and code.strip() in earlier["content"]:
            earlier["content"] = REPEATED_CODE_SUMMARY.format(output=_brief(output.strip(), 200))


_REPEAT_MARK = "Note: you ran exactly this code before"
_SUMMARY_START = REPEATED_CODE_SUMMARY.split("{", 1)[0].strip("( ")  # "I ran a code block here"


def _echoes_summary(text: str) -> bool:
    """Whether a reply is the runtime's own summary of a repeated block, copied: a small
    model reads that summary as one of its replies and writes it again, with no code."""
    return text.strip().lstrip("(").startswith(_SUMMARY_START)


def _forget_echo(messages: list[Message], note: str) -> None:
    """Drop a reply that only copied the runtime's summary (each copy kept makes the next
    likelier); `note` goes on the last output, in place of the note of an earlier copy."""
    _drop_reply(messages, note, ECHOED_SUMMARY_NOTE.split("{", 1)[0])


def _drop_reply(messages: list[Message], note: str, mark: str) -> None:
    """Drop the last reply and put `note` on the output before it, in place of an earlier
    note starting with `mark`."""
    messages.pop()
    last = messages[-1]
    kept = [part for part in last["content"].split("\n\n") if not part.startswith(mark)]
    last["content"] = "\n\n".join([*kept, note])


def _brief(value: str, limit: int = 200) -> str:
    """`value` as the model would write it in FINAL(...), cut to `limit` characters."""
    text = value if len(value) <= limit else value[:limit] + "..."
    return text if text.replace(".", "", 1).replace("-", "", 1).isdigit() else repr(text)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [output truncated: {len(text) - limit:,} more characters]"


def _as_text(value: Any) -> str:
    loaded = load_context(value).value
    return loaded if isinstance(loaded, str) else repr(loaded)


async def _get_log(sandbox: SandboxBackend) -> list[dict[str, str]]:
    """The REPL's `conversation_log` so far (a session's earlier runs may have one)."""
    if "conversation_log" not in await sandbox.list_variables():
        return []
    value = await sandbox.get_variable("conversation_log")
    return list(value) if isinstance(value, list) else []
