"""The "small" prompt profile: what the engine does for 1-3B models that drift, loop or
answer before they look. Driven by a scripted model whose replies are the failure modes
seen on Qwen2.5-Coder-1.5B."""

from __future__ import annotations

import pytest
from scripting import repl, turn

from rlmrt.errors import ConfigError
from rlmrt.prompt_profiles import PROFILES, profile_for


def small(make_rlm, server, **settings):
    return make_rlm(server, prompt_profile="small", **settings)


def test_profiles_are_picked_by_model_size_or_named() -> None:
    assert profile_for("openai/qwen2.5-coder-1.5b").name == "small"
    assert profile_for("ollama/llama3.2:3b").name == "small"
    assert profile_for("openai/gpt-4o-mini").name == "default"
    assert profile_for("qwen2.5-72b-instruct").name == "default"
    assert profile_for("openai/gpt-4o-mini", "small") is PROFILES["small"]
    with pytest.raises(ConfigError, match="unknown prompt_profile 'tiny'; choose one of: auto"):
        profile_for(None, "tiny")


def test_a_bare_value_the_model_saw_printed_is_its_answer(serve, make_rlm) -> None:
    replies = [repl("print(len(context.splitlines()))"), "```repl\n3"]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion("How many lines?", context="a\nb\nc")
    assert result.answer == "3" and not result.partial
    rules = server.requests[0].system_text
    assert "Only FINAL a value you saw printed" in rules
    assert server.requests[1].last_user_text.endswith("(The question: How many lines?)")


def test_a_bare_value_never_printed_is_run_as_code(serve, make_rlm) -> None:
    replies = [repl("x = 1"), "```\n42\n```", "FINAL(x is 1)"]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion("q", context="c")
    assert result.answer == "x is 1"  # 42 ran as code (a display value), not an answer
    assert "42" in server.requests[2].last_user_text


def test_final_from_code_waits_until_the_value_was_seen(serve, make_rlm) -> None:
    replies = [
        repl("code = context.split()[-1]\nFINAL(code)"),  # answers before looking
        repl("print(code)"),
        repl("FINAL(code)"),
    ]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion("The code?", context="the code is 7391-KQ")
    assert result.answer == "7391-KQ"
    note = server.requests[1].last_user_text
    assert "Your code called FINAL('7391-KQ') before you saw that value" in note
    assert len(server.requests) == 3


def test_the_default_profile_takes_final_from_code_at_once(serve, make_rlm) -> None:
    server = serve(lambda r: repl("FINAL(context.split()[-1])"))
    result = make_rlm(server).completion("The code?", context="the code is 7391-KQ")
    assert result.answer == "7391-KQ" and len(server.requests) == 1
    assert "Rules (follow them exactly)" not in server.requests[0].system_text


def test_a_repeated_failing_block_is_named_and_the_next_call_samples_warmer(
    serve, make_rlm
) -> None:
    failing = repl("rlm_query_batched('one prompt', 'one context')")
    replies = iter([failing, failing, "FINAL(fixed)"])
    server = serve(lambda r: next(replies))
    result = small(make_rlm, server, temperature=0).completion("q", context="c")
    assert result.answer == "fixed"
    temperatures = [r.body.get("temperature") for r in server.requests]
    assert temperatures == [0, 0, 0.7]  # warmer only after the repeat
    # the repeat is dropped from the conversation (a small model copies its own
    # replies); its note goes on the output the model saw the first time
    assert [m["role"] for m in server.requests[2].messages] == [
        "system", "user", "assistant", "user"
    ]  # fmt: skip
    second = server.requests[2].last_user_text
    assert "The question: q" in second
    assert "you ran exactly this code before (iteration 1) and it failed the same way" in second
    assert "rlm_query_batched([p1, p2], [c1, c2])" not in second  # prompts fail first
    assert "one call for many prompts: rlm_query_batched(['first', 'second'])" in second


def test_each_further_repeat_changes_the_prompt(serve, make_rlm) -> None:
    """With the repeat dropped from the conversation, an unchanged note would give the
    same prompt every time, and a seeded server the same reply until max_iterations: the
    note counts the repeats instead, and it replaces the earlier one."""
    failing = repl("print(undefined_name)")
    replies = iter([failing, failing, failing, failing, "FINAL(fixed)"])
    server = serve(lambda r: next(replies))
    result = small(make_rlm, server, seed=0).completion("q", context="c")
    assert result.answer == "fixed"
    # and each repeat is sampled with a seed of its own (the same seed gives a seeded
    # server's same reply at any temperature); the first calls keep the user's
    assert [r.body.get("seed") for r in server.requests] == [0, 0, 2, 3, 4]
    prompts = [r.last_user_text for r in server.requests[2:5]]
    assert len(set(prompts)) == 3
    assert "(iteration 1) and it failed" in prompts[0]
    assert "(iteration 1, and 1 time since) and it failed" in prompts[1]
    assert "(iteration 1, and 2 times since) and it failed" in prompts[2]
    assert prompts[2].count("Note: you ran exactly this code before") == 1
    # the repeated block's first run leaves only what it printed: nothing left to copy
    earlier = server.requests[2].messages[-2]
    assert earlier["role"] == "assistant" and "undefined_name" not in earlier["content"]
    assert earlier["content"].startswith("(I ran a code block here; it printed ")


def test_a_repeated_working_block_gets_a_progress_note(serve, make_rlm) -> None:
    again = repl("print(len(context))")
    replies = [again, again, repl("FINAL('done')")]
    server = serve(lambda r: replies[turn(r)])
    result = make_rlm(server).completion("q", context="abc")
    assert result.answer == "done"
    assert "Note: you ran exactly this code before (iteration 1). Use its output" in (
        server.requests[2].last_user_text
    )


def test_a_block_run_three_times_with_one_line_of_output_points_at_the_answer(
    serve, make_rlm
) -> None:
    server = serve(lambda r: repl("len(context)"))
    result = small(make_rlm, server).completion("How long is it?", context="x" * 1234)
    assert result.answer == "1234" and len(server.requests) == 3
    assert not result.partial


def test_repeats_with_changing_or_long_output_are_not_answers(serve, make_rlm) -> None:
    server = serve(lambda r: repl("import time\nprint(time.monotonic_ns())"))
    result = small(make_rlm, server, max_iterations=4).completion("q", context="c")
    assert result.partial and result.stop_reason == "max_iterations"


def test_only_the_first_block_of_a_reply_runs_and_the_rest_is_dropped(serve, make_rlm) -> None:
    """Small models go on to write the output they expect, then code built on it."""
    invented = "```repl\nprint(len(context))\n```\nOutput:\n99\n```repl\nFINAL(99)\n```"
    replies = [invented, "```repl\n5"]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion("How long?", context="abcde")
    assert result.answer == "5"
    kept = server.requests[1].messages[2]["content"]
    assert kept == "```repl\nprint(len(context))\n```"


def test_an_empty_fence_before_the_first_block_is_kept_with_it(serve, make_rlm) -> None:
    replies = [
        "```\n\n```\n```repl\nprint(len(context))\n```\n```repl\nFINAL(9)\n```",
        "```repl\n5",
    ]
    server = serve(lambda r: replies[turn(r)])
    assert small(make_rlm, server).completion("How long?", context="abcde").answer == "5"
    kept = server.requests[1].messages[2]["content"]
    assert kept == "```\n\n```\n```repl\nprint(len(context))\n```"
    assert "Output:\n5" in server.requests[1].last_user_text


def test_a_value_printed_from_a_literal_of_the_same_code_is_not_seen(serve, make_rlm) -> None:
    replies = [
        repl("print('the length is 42')"),  # the model prints the answer it expects
        "```repl\n42",  # not seen: runs as code, and its display is its own literal
        repl("print(len(context))"),
        "```repl\n42",
    ]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion("How long?", context="x" * 42)
    assert result.answer == "42" and len(server.requests) == 4


def test_a_refused_final_shows_the_lines_holding_it_and_may_be_repeated(serve, make_rlm) -> None:
    replies = [repl("FINAL(context.split()[-1])"), "FINAL(3591-JS)"]
    server = serve(lambda r: replies[turn(r)])
    context = "filler\nThe code for vault Vega is 3591-JS. Keep it safe."
    result = small(make_rlm, server).completion("The code of vault Vega?", context=context)
    assert result.answer == "3591-JS"
    note = server.requests[1].last_user_text
    assert "called FINAL('safe.') before you saw that value" in note
    assert "line 2: The code for vault Vega is 3591-JS. Keep it safe." in note


def test_the_first_prompt_shows_lines_that_share_rare_words_with_the_question(
    serve, make_rlm
) -> None:
    filler = [f"INV-{n:04d} | customer: Globex | amount: {n} USD" for n in range(200)]
    filler.insert(120, "INV-0120 | customer: Initech | amount: 777 USD")
    server = serve(lambda r: "```repl\n777")
    result = small(make_rlm, server).completion(
        "What is the amount of the Initech invoice?", context="\n".join(filler)
    )
    first = server.requests[0].messages[1]["content"]
    assert "line 121: INV-0120 | customer: Initech | amount: 777 USD" in first
    assert "line 1:" not in first  # every line has "amount": no weight
    assert result.answer == "777" and len(server.requests) == 1  # seen in the peek


def test_a_final_that_is_part_of_a_seen_token_is_named_as_partial(serve, make_rlm) -> None:
    replies = [
        repl("import re\nFINAL(re.search(r'is (\\d+)', context).group(1))"),
        repl("FINAL(re.search(r'is (\\S+)\\.', context).group(1))"),
        "FINAL(3591-JS)",  # computed by code: confirmed once shown
    ]
    server = serve(lambda r: replies[turn(r)])
    context = "filler\nThe access code for vault Vega is 3591-JS. Keep it safe.\nfiller"
    result = small(make_rlm, server).completion("Access code of vault Vega?", context=context)
    assert result.answer == "3591-JS"
    note = server.requests[1].last_user_text
    assert "called FINAL(3591), but 3591 appears only as part of '3591-JS'" in note
    assert "line 2: The access code" in server.requests[2].last_user_text


def test_a_final_cut_from_a_longer_value_of_the_context_is_named_as_partial(
    serve, make_rlm
) -> None:
    """`(\\w+)` takes "meadow" of "meadow-9328": never shown, never alone in `context`.
    The note names the whole value, which the model can then answer."""
    replies = [
        repl("import re\nFINAL(re.search(r'Ghent office is (\\w+)', context).group(1))"),
        "FINAL(meadow-9328)",
    ]
    server = serve(lambda r: replies[turn(r)])
    context = "filler\nThe Wi-Fi password for the Ghent office is meadow-9328.\nfiller"
    result = small(make_rlm, server).completion("Wi-Fi password in Ghent?", context=context)
    assert (result.answer, result.partial) == ("meadow-9328", False)
    note = server.requests[1].last_user_text
    assert "called FINAL('meadow'), but 'meadow' appears only as part of 'meadow-9328'" in note


def test_a_refused_final_repeated_as_it_was_is_a_loop_too(serve, make_rlm) -> None:
    """A block whose FINAL stays refused (a part of '7043-HU'), sent again unchanged, gets
    the repeat note and a warmer sample, as any repeated block does: a seeded server
    otherwise answers the same prompt the same way until the wall-time budget."""
    block = repl("import re\nFINAL(re.search(r'Lyra is (\\d+)-HU', context).group(1))")
    replies = iter([block, block, "FINAL(7043-HU)"])
    server = serve(lambda r: next(replies))
    context = "filler\nThe access code for vault Lyra is 7043-HU.\nfiller"
    result = small(make_rlm, server, temperature=0).completion("Code of Lyra?", context=context)
    assert result.answer == "7043-HU"
    assert [r.body.get("seed") for r in server.requests] == [None, None, None]  # unseeded
    assert [r.body.get("temperature") for r in server.requests] == [0, 0, 0.7]
    second = server.requests[2].last_user_text
    assert "appears only as part of '7043-HU'" in second
    assert "Note: you ran exactly this code before (iteration 1)" in second


LEDGER = "\n".join(
    [
        f"INV-{i:05d} | Acme | {100 + i}.00 | {'OVERDUE' if i % 3 == 0 else 'PAID'}"
        for i in range(30)
    ]
)


def test_an_empty_result_over_a_context_about_the_question_gets_real_lines(serve, make_rlm) -> None:
    """The set-up's showcase failure: a filter guessed from the question's words finds
    nothing, prints 0, and a bare 0 was taken as the answer."""
    replies = [
        repl("print(sum(1 for line in context.splitlines() if 'status: OVERDUE' in line))"),
        "```repl\n0",  # the bare value: refused, the 0 came from a filter that found nothing
        "FINAL(0)",  # as text: refused too
        repl("print(sum(1 for line in context.splitlines() if line.endswith('| OVERDUE')))"),
        "```repl\n10",
    ]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion(
        "How many invoices have status OVERDUE?", context=LEDGER
    )
    assert (result.answer, result.partial) == ("10", False)
    note = server.requests[1].last_user_text
    assert "Your code printed 0: it found nothing." in note
    assert "| OVERDUE" in note.split("for example:")[1]  # real lines of the context
    assert "FINAL(0) is not accepted yet" in server.requests[3].last_user_text


def test_a_search_that_prints_it_found_nothing_gets_real_lines_too(serve, make_rlm) -> None:
    """A filter with the wrong case prints "Pattern not found" rather than 0: that is an
    empty result as well, shown real lines (the model then fixes its filter)."""
    replies = [
        repl(
            "import re\nm = re.findall(r'\\| Overdue$', context, re.M)\n"
            "print(len(m) if m else 'Pattern not found')"
        ),
        repl("print(sum(1 for line in context.splitlines() if line.endswith('| OVERDUE')))"),
        "```repl\n10",
    ]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion(
        "How many invoices have status OVERDUE?", context=LEDGER
    )
    assert (result.answer, result.partial) == ("10", False)
    note = server.requests[1].last_user_text
    assert "Your code printed Pattern not found: it found nothing." in note
    assert "| OVERDUE" in note.split("for example:")[1]


def test_an_empty_result_confirmed_by_another_block_is_an_answer(serve, make_rlm) -> None:
    """A true 0 stays answerable: a second, different block that finds nothing too
    confirms it."""
    context = LEDGER + "\nINV-00100 | Globex | 80.00 | PAID"
    replies = [
        repl("print(sum(1 for l in context.splitlines() if 'Globex' in l and 'OVERDUE' in l))"),
        repl(
            "rows = [l.split(' | ') for l in context.splitlines()]\n"
            "print(len([r for r in rows if r[1] == 'Globex' and r[3] == 'OVERDUE']))"
        ),
        "```repl\n0",
    ]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion(
        "How many invoices of Globex are OVERDUE?", context=context
    )
    assert (result.answer, result.partial) == ("0", False)
    assert "Your code printed 0: it found nothing." in server.requests[1].last_user_text
    assert len(server.requests) == 3


TICKETS = "\n".join(
    f"T-{n:03d},{status},team{n % 3}"
    for n, status in enumerate(["OPEN", "REOPENED", "CLOSED", "OPEN", "REOPENED", "REOPENED"])
)


def test_a_substring_test_that_also_counts_longer_values_gets_a_note(serve, make_rlm) -> None:
    """`'OPEN' in line` also counts the REOPENED lines: the count runs clean and looks
    right, so the model is shown the longer values and how many lines hold them."""
    replies = [
        repl("print(sum(1 for line in context.splitlines() if 'OPEN' in line))"),
        repl("print(sum(1 for line in context.splitlines() if line.split(',')[1] == 'OPEN'))"),
        "```repl\n2",
    ]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion(
        "How many tickets have status OPEN?", context=TICKETS
    )
    assert (result.answer, result.partial) == ("2", False)
    note = server.requests[1].last_user_text
    assert "'OPEN' is also a part of other values: 'REOPENED' (3 lines)" in note
    assert "lines with 'OPEN' on its own: 2" in note
    assert "The runtime ran your code again with whole-value tests; it printed:\n2" in note
    assert "Check this result" not in server.requests[2].last_user_text  # == tests no part


def test_a_substring_test_is_noted_once_and_its_count_needs_other_code(serve, make_rlm) -> None:
    """No note for a value that is never part of a longer one (CLOSED); one note per
    tested value; the noted count is no answer until other code prints it, and the
    note's own whole-value test gives the right count."""
    replies = [
        repl("print(context.count('CLOSED'))"),
        repl("print(context.count('OPEN'))"),
        repl("print(context.count('OPEN'), 'again')"),
        "```repl\n5",  # the noted count: not accepted
        repl(
            "import re\n"
            "print(sum(1 for line in context.splitlines()"
            " if re.search(r'(?<![\\w-])OPEN(?![\\w-])', line)))"
        ),
        "```repl\n2",
    ]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server).completion("How many tickets say OPEN?", context=TICKETS)
    assert (result.answer, result.partial) == ("2", False)
    notes = [request.last_user_text for request in server.requests[1:]]
    assert ["Check this result" in note for note in notes] == [False, True, False, False, False]
    assert 'for example `re.search(r"(?<![\\w-])OPEN(?![\\w-])", line)`' in notes[1]
    assert "it printed:\n2\n" in notes[1]


def test_the_runtimes_line_numbers_back_no_answer(serve, make_rlm) -> None:
    """Over an expense ledger a model answered 10 after seeing 'line 10: ...' in the
    lines the runtime showed it; 10 is not in any line's text."""
    context = "\n".join(["filler"] * 9 + ["category=travel amount=77"] + ["filler"] * 5)
    replies = ["```repl\n10", repl("print(77)")]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server, max_iterations=2).completion(
        "What is the travel amount?", context=context
    )
    assert "line 10: category=travel amount=77" in server.requests[0].messages[-1]["content"]
    assert result.answer != "10"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ('FINAL(repl\nllm_query("What is the total?"))', "code"),
        ("FINAL(I'm sorry, but I don't have enough information)", "a refusal"),
        ("FINAL(How many invoices have status OVERDUE)", "the question"),
        ("FINAL(ValueError: could not convert string to float)", "an error message"),
        ("FINAL(Pattern not found)", "a message that nothing was found"),
    ],
)
@pytest.mark.parametrize("profile", ["small", "default"])
def test_text_that_is_not_an_answer_is_refused(serve, make_rlm, reply, reason, profile) -> None:
    replies = [reply, "FINAL(10)"]
    server = serve(lambda r: replies[turn(r)])
    result = make_rlm(server, prompt_profile=profile).completion(
        "How many invoices have status OVERDUE?", context=LEDGER
    )
    assert result.answer == "10"
    assert f"is {reason}, not an answer to the question" in server.requests[1].last_user_text


def test_a_best_effort_reply_that_is_not_an_answer_leaves_the_run_without_one(
    serve, make_rlm
) -> None:
    replies = [repl("print(1)"), "I'm sorry, but I cannot determine that."]
    server = serve(lambda r: replies[turn(r)])
    result = make_rlm(server, max_iterations=1).completion("q?", context="c")
    assert (result.answer, result.partial, result.stop_reason) == (None, True, "max_iterations")


def test_a_best_effort_final_of_a_variable_is_run_for_its_value(serve, make_rlm) -> None:
    replies = [repl("count = 41 + 1\nprint('working')"), repl("FINAL(count)")]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server, max_iterations=1).completion("q?", context="c")
    assert (result.answer, result.partial) == ("42", True)


def test_an_empty_result_is_not_pointed_at_by_repeating_its_block(serve, make_rlm) -> None:
    """A block run three times with the same one-line output is taken as the answer,
    but not when that output is an empty result over a context about the question
    (the showcase once ended on "0" that way)."""
    block = repl("print(sum(1 for line in context.splitlines() if 'status: OVERDUE' in line))")
    replies = [block, block, block, "FINAL(10)"]
    server = serve(lambda r: replies[turn(r)])
    result = small(make_rlm, server, max_iterations=3).completion(
        "How many invoices have status OVERDUE?", context=LEDGER
    )
    assert result.answer != "0"
    assert result.partial


def test_a_failed_search_is_not_pointed_at_by_repeating_its_block(serve, make_rlm) -> None:
    """A block whose search failed prints "Pattern not found"; run three times, that is
    still no answer (a run over a PDF once returned it as one)."""
    block = repl(
        "import re\nm = re.search('Permit is (\\S+)', context)\n"
        "print(m.group(1) if m else 'Pattern not found')"
    )
    server = serve(lambda r: block)
    result = small(make_rlm, server, max_iterations=4).completion(
        "What is the permit number?", context="the permit is PX-1"
    )
    assert result.answer is None
    assert (result.partial, result.stop_reason) == (True, "max_iterations")
