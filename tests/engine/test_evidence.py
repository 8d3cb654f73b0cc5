"""What the small profile counts as seen, and the lines it shows the model first."""

from __future__ import annotations

from rlmrt.engine.evidence import ContextLines, Evidence, lines_holding, peek_lines
from rlmrt.sandbox.base import ExecResult


def output(stdout: str) -> ExecResult:
    return ExecResult(stdout=stdout)


def text(value: str) -> ContextLines:
    lines = ContextLines.of(value)
    assert lines is not None
    return lines


def test_a_value_is_seen_whole_and_not_from_its_own_literal() -> None:
    evidence = Evidence()
    evidence.record("print(line)", output("The code for vault Vega is 3591-JS. Keep it safe.\n"))
    assert evidence.was_seen("3591-JS")
    assert not evidence.was_seen("3591")  # only a part of the token shown
    assert evidence.whole_of("3591") == "3591-JS"
    assert evidence.whole_of("3591-JS") is None
    evidence.record("print('it is 42')", output("it is 42\n"))
    assert not evidence.was_seen("42")  # the code printed its own literal
    evidence.show("runtime hint: 42 lines")
    assert evidence.was_seen("42")
    assert not evidence.was_seen("  ")


def test_peek_weights_words_by_rarity_and_keeps_text_order() -> None:
    lines = [f"entry {n} kind: common note" for n in range(50)]
    lines[40] = "entry 40 kind: rare marker Zephyr"
    lines[7] = "entry 7 kind: rare"
    shown = peek_lines("Which entry has the rare Zephyr marker?", text("\n".join(lines)), 3)
    assert shown[0] == "line 8: entry 7 kind: rare"
    assert shown[-1] == "line 41: entry 40 kind: rare marker Zephyr"
    assert len(shown) == 2  # "entry" is on every line: no weight, no more lines


def test_peek_cuts_a_long_line_around_its_rarest_word() -> None:
    long_line = "filler " * 200 + "the vault Orion code is 12-AB " + "filler " * 200
    shown = peek_lines("code of vault Orion?", text("short line\n" + long_line), 5)
    assert len(shown) == 1 and shown[0].startswith("line 2: ...")
    assert "vault Orion code is 12-AB" in shown[0] and shown[0].endswith("...")
    assert len(shown[0]) < 300


def test_peek_with_nothing_to_match_shows_nothing() -> None:
    assert peek_lines("How many are there?", text("a\nb"), 5) == []
    assert peek_lines("Zephyr?", text(""), 5) == []
    assert peek_lines("Zephyr?", text("no match here"), 5) == []


def test_hints_back_written_answers_not_computed_ones() -> None:
    evidence = Evidence()
    evidence.hint("line 9: The code for vault Vega is 3591-JS. Keep it safe.")
    assert evidence.was_seen("3591-JS") and evidence.was_seen("safe.")
    assert not evidence.was_seen("safe.", hints=False)  # what split()[-1] would give
    assert evidence.whole_of("3591") == "3591-JS"
    assert evidence.whole_of("59") is None  # inside a token, not its start or end
    assert evidence.whole_of("3591-JS") is None


def test_a_list_of_texts_is_peeked_with_the_item_of_each_line() -> None:
    """A PDF's pages or a document's sections: the shown lines say which item they are in,
    so the model sees both the format and that `context` is a list."""
    pages = [f"Report page {n}\nResult: PASS\nRoutine checks." for n in range(1, 41)]
    pages[17] = "Report page 18\nResult: FAIL\nRoutine checks."
    lines = ContextLines.of(pages)
    assert lines is not None
    shown = peek_lines("How many pages have the result FAIL?", lines, 3)
    # the rarest word's line first in weight, then two "Result:" lines, in context order
    assert shown == [
        "context[0] line 2: Result: PASS",
        "context[1] line 2: Result: PASS",
        "context[17] line 2: Result: FAIL",
    ]
    assert lines_holding("FAIL", lines, 3) == ["context[17] line 2: Result: FAIL"]
    assert lines.text.splitlines()[3] == "Report page 2"
    assert ContextLines.of([]) is None and ContextLines.of(["a", 1]) is None
    assert ContextLines.of({"a": "b"}) is None


def test_an_item_index_in_a_hint_backs_nothing() -> None:
    evidence = Evidence()
    evidence.hint("context[17] line 2: Result: FAIL")
    assert evidence.was_seen("FAIL")
    assert not evidence.was_seen("17") and not evidence.was_seen("2")
