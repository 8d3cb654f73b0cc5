"""Learning from feedback: judged runs become lessons through a model call that sees
the run's question, code, answer and verdict (a good run's answering code is kept as a
worked example); the lessons then reach later prompts."""

from __future__ import annotations

from pathlib import Path

from scripting import repl

from rlmrt.memory import MemoryStore, give_feedback
from rlmrt.testing import ChatRequest, Reply, scripted

LESSON = "Split each ledger line on '|' and compare the sixth field exactly to the status."
SENTENCE = "To count records by their status, test each line for the status word."


def test_judged_runs_become_lessons_once(serve, make_rlm, tmp_path: Path) -> None:
    """A good run whose code found its answer becomes a worked example (the model's
    sentence, the question, the data's first line, that code as it ran); a bad run
    gets a lesson the model writes from its code, answer and the right answer."""
    counting = "n = sum('OVERDUE' in line for line in context.splitlines())\nprint(n)"
    server = serve(
        scripted(
            root=[
                repl("print(context[:20])"),
                repl(counting),
                repl("FINAL(str(n))"),
                repl("FINAL('2')"),
            ],
            sub=[SENTENCE, LESSON],
        )
    )
    rlm = make_rlm(server, memory_path=tmp_path / "memory.sqlite")
    first = rlm.completion("How many invoices are OVERDUE?", context="a|OVERDUE\nb|PAID")
    second = rlm.completion("How many invoices are PAID?", context="a|OVERDUE\nb|PAID")
    give_feedback(rlm.config, first.run_id, "good")
    give_feedback(rlm.config, second.run_id, "bad", expected="1", note="counted the wrong rows")
    store = MemoryStore(tmp_path / "memory.sqlite")

    made = rlm.learn()

    assert made.skipped == {}
    example = (
        f"{SENTENCE}\n"
        'Worked example: asked "How many invoices are OVERDUE?" of data with lines like '
        "`a|OVERDUE`, this code found the right answer:\n"
        f"```repl\n{counting}\nFINAL(str(n))\n```"
    )
    assert sorted((i.text, tuple(i.tags), tuple(i.source_runs)) for i in made.lessons) == sorted(
        [(example, ("good",), (first.run_id,)), (LESSON, ("bad",), (second.run_id,))]
    )
    asks = [r.last_user_text for r in server.requests if not r.is_rlm_root]
    good = next(a for a in asks if "This code found the right answer" in a)
    assert "Question: How many invoices are OVERDUE?" in good
    assert f"```python\n{counting}\nFINAL(str(n))\n```" in good
    assert "print(context[:20])" not in good  # the exploring block is no part of it
    assert "It starts:\na|OVERDUE\nb|PAID" in good
    bad = next(a for a in asks if "judged bad" in a)
    assert "FINAL('2')" in bad and "-> " in bad  # the bad run's blocks and their outputs
    assert "The right answer: 1" in bad and "counted the wrong rows" in bad
    assert "what went wrong and what to do instead" in bad
    assert "Start with the data's shape" in bad
    assert store.feedback(distilled=False) == []
    again = rlm.learn()
    assert again.lessons == [] and again.skipped == {}
    assert len(store.items(kind="lesson")) == 2
    store.close()


def test_a_failed_or_useless_reply_leaves_the_run_for_next_time(
    serve, make_rlm, tmp_path: Path
) -> None:
    replies = iter(
        [Reply(status=500, error_body={"error": {"message": "down"}}), "I'm sorry, I cannot."]
    )

    def model(request: ChatRequest) -> Reply | str:
        return repl("FINAL('x')") if request.is_rlm_root else next(replies)

    server = serve(model)
    rlm = make_rlm(server, memory_path=tmp_path / "memory.sqlite")
    runs = [rlm.completion(f"question {n}?", context="c").run_id for n in range(2)]
    for run_id in runs:
        give_feedback(rlm.config, run_id, "good")
    store = MemoryStore(tmp_path / "memory.sqlite")
    made = rlm.learn()
    assert made.lessons == []
    reasons = sorted(made.skipped.values())  # which run met which reply depends on timing
    assert reasons[0].startswith("the model call failed: ")
    assert reasons[1] == "the model's reply was a refusal"
    assert sorted(f.run_id for f in store.feedback(distilled=False)) == sorted(runs)
    store.close()


def test_a_lesson_quoting_the_runs_answer_is_rewritten_once(
    serve, make_rlm, tmp_path: Path
) -> None:
    """A lesson that carries one run's value misleads runs on other data: the model is
    asked once to rewrite it; a rewrite that still quotes it is no lesson."""
    replies = iter(
        [
            "Count lines holding OVERDUE: the answer was 138.",
            LESSON,
            "There were 4411 PAID rows.",
            "Still 4411 rows.",
        ]
    )
    answers = iter([repl("FINAL('138')"), repl("FINAL('4411')")])
    asks: list[ChatRequest] = []

    def model(request: ChatRequest) -> Reply | str:
        if request.is_rlm_root:
            return next(answers)
        asks.append(request)
        return next(replies)

    server = serve(model)
    rlm = make_rlm(server, memory_path=tmp_path / "memory.sqlite")
    first = rlm.completion("How many invoices are OVERDUE?", context="a|OVERDUE")
    give_feedback(rlm.config, first.run_id, "good")
    made = rlm.learn()
    assert [item.text for item in made.lessons] == [LESSON]
    assert "quotes this run's own answer (138)" in asks[1].last_user_text
    assert len(asks[1].messages) == 3  # the prompt, the quoting lesson, the ask to rewrite
    second = rlm.completion("How many invoices are PAID?", context="a|PAID")
    give_feedback(rlm.config, second.run_id, "good")
    store = MemoryStore(tmp_path / "memory.sqlite")
    again = rlm.learn()
    assert again.lessons == []
    assert again.skipped == {second.run_id: "the lesson quoted the run's own answer '4411'"}
    assert [f.run_id for f in store.feedback(distilled=False)] == [second.run_id]
    store.close()
