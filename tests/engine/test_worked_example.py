"""Which of a run's blocks is the code that answered it, as a worked example."""

from __future__ import annotations

from rlmrt.engine.worked_example import MAX_EXAMPLE_CHARS, answering_code, quotes
from rlmrt.events import CodeExecuted


def block(code: str, stdout: str = "", error: str | None = None) -> CodeExecuted:
    return CodeExecuted(
        run_id="run",
        call_id="run",
        parent_call_id=None,
        depth=0,
        iteration=1,
        code=code,
        stdout=stdout,
        stderr="",
        error=error,
        duration_s=0.0,
    )


def test_the_block_that_printed_the_answer_and_the_blocks_it_needs() -> None:
    blocks = [
        block("print(context[:200])", "INV-1 | Acme | 10.0 | OVERDUE"),
        block("lines = context.splitlines()\nprint(len(lines))", "4000"),
        block("rows = [l.split(' | ') for l in lines]", ""),
        block("print(sum(r[3] == 'OVERDUE' for r in rows))", "138"),
        block("FINAL(138)"),
    ]
    assert answering_code(blocks, "138") == (
        "lines = context.splitlines()\nprint(len(lines))\n"
        "rows = [l.split(' | ') for l in lines]\n"
        "print(sum(r[3] == 'OVERDUE' for r in rows))"
    )


def test_an_earlier_import_comes_as_its_statement_and_a_repeated_block_once() -> None:
    search = "m = re.search(r'code (\\d+)', context)\nprint(m.group(1))"
    blocks = [
        block("import re\nprint(context[:100])", "The code 4411 ..."),
        block(search, "4411"),
        block(search, "4411"),
    ]
    assert answering_code(blocks, "4411") == f"import re\n{search}"


def test_a_computed_final_that_ended_the_run_is_the_answer_when_nothing_printed_it() -> None:
    blocks = [block("n = len(context.splitlines())"), block("FINAL(n)")]
    assert answering_code(blocks, "7", ended_by_code=True) == (
        "n = len(context.splitlines())\nFINAL(n)"
    )
    final_var = [block("x = 'a'\nFINAL_VAR('x')")]
    assert answering_code(final_var, "a", ended_by_code=True) == "x = 'a'\nFINAL_VAR('x')"
    # the run's answer came from elsewhere (a reply's text, the best effort): its value is
    # not known to be this FINAL's
    assert answering_code(blocks, "7") is None


def test_a_final_the_run_went_on_past_is_no_example() -> None:
    """Its value was turned down (a model's `(\\d+)` cut "9079-HL" to "9079"), so the run
    went on; the answer came later, from other blocks."""
    cut = block("FINAL(re.search(r'is (\\d+)', context).group(1))")
    later = block("print('looking again')", "looking again")
    assert answering_code([cut, later], "9079-HL", ended_by_code=True) is None
    assert answering_code([cut, block("FINAL(code)")], "9079-HL", ended_by_code=True) == (
        "FINAL(code)"
    )


def test_literal_answers_failed_blocks_and_long_code_are_no_example() -> None:
    assert answering_code([block("FINAL('x')")], "x") is None  # a typed-out answer
    assert answering_code([block("print('138')", "138"), block("FINAL('138')")], "138") is None
    assert answering_code([block("FINAL(len(context))", error="NameError: context")], "5") is None
    assert answering_code([block("n = 1 ; FINAL(n)"), block("print(2)", "2")], "99") is None
    long = "n = 1\n" + "# step\n" * MAX_EXAMPLE_CHARS + "FINAL(n)"
    assert answering_code([block(long)], "1", ended_by_code=True) is None
    assert answering_code([block("this is not python (", "42")], "42") == ("this is not python (")


def test_quotes_takes_whole_tokens_only() -> None:
    assert quotes("the answer was 138.", "138")
    assert not quotes("INV-1380 | 1138", "138")
    assert not quotes("1.38 and 138.5", "138")
    assert not quotes("7 lines", "7")  # one character: too common to tell
