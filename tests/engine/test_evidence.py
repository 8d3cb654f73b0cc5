"""What the small profile counts as seen, and the lines it shows the model first."""

from __future__ import annotations

from rlmrt.engine.evidence import Evidence, peek_lines
from rlmrt.sandbox.base import ExecResult


def output(stdout: str) -> ExecResult:
    return ExecResult(stdout=stdout)


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
    shown = peek_lines("Which entry has the rare Zephyr marker?", "\n".join(lines), 3)
    assert shown[0] == "line 8: entry 7 kind: rare"
    assert shown[-1] == "line 41: entry 40 kind: rare marker Zephyr"
    assert len(shown) == 2  # "entry" is on every line: no weight, no more lines


def test_peek_cuts_a_long_line_around_its_rarest_word() -> None:
    long_line = "filler " * 200 + "the vault Orion code is 12-AB " + "filler " * 200
    shown = peek_lines("code of vault Orion?", "short line\n" + long_line, 5)
    assert len(shown) == 1 and shown[0].startswith("line 2: ...")
    assert "vault Orion code is 12-AB" in shown[0] and shown[0].endswith("...")
    assert len(shown[0]) < 300


def test_peek_with_nothing_to_match_shows_nothing() -> None:
    assert peek_lines("How many are there?", "a\nb", 5) == []
    assert peek_lines("Zephyr?", "", 5) == []
    assert peek_lines("Zephyr?", "no match here", 5) == []


def test_hints_back_written_answers_not_computed_ones() -> None:
    evidence = Evidence()
    evidence.hint("line 9: The code for vault Vega is 3591-JS. Keep it safe.")
    assert evidence.was_seen("3591-JS") and evidence.was_seen("safe.")
    assert not evidence.was_seen("safe.", hints=False)  # what split()[-1] would give
    assert evidence.whole_of("3591") == "3591-JS"
    assert evidence.whole_of("59") is None  # inside a token, not its start or end
    assert evidence.whole_of("3591-JS") is None
