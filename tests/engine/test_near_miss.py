"""near_misses: which substring tests of a block also match longer values of the text."""

from __future__ import annotations

from rlmrt.engine.near_miss import (
    NearMiss,
    longer_value,
    near_misses,
    substring_literals,
    whole_value_variant,
)

LOG = "\n".join(
    [
        "ts=1 level=WARN msg=a",
        "ts=2 level=WARNING msg=b",
        "ts=3 level=WARN msg=c WARN",
        "ts=4 level=WARNING msg=d",
        "ts=5 level=WARNINGS msg=e",
        "ts=6 level=ERROR msg=f",
    ]
)


def test_the_literals_a_block_tests_as_parts_of_text() -> None:
    code = (
        "a = [l for l in lines if 'x1' in l and 'y2' not in l]\n"
        "b = text.count('z3') + text.find('w4')\n"
        "c = 'k' in s  # too short\n"
        "d = l.split(',')[1] == 'eq'  # a whole-value test\n"
    )
    assert substring_literals(code) == ["x1", "y2", "z3"]  # at most three
    assert substring_literals("this is not python(") == []


def test_a_literal_found_alone_and_inside_longer_values() -> None:
    found = near_misses("print(sum('WARN' in l for l in context.splitlines()))", LOG)
    assert found == [
        NearMiss(literal="WARN", exact_lines=2, others=(("WARNING", 2), ("WARNINGS", 1)))
    ]


def test_case_is_ignored_when_the_code_folds_it() -> None:
    code = "print(sum('warn' in l.lower() for l in context.splitlines()))"
    [miss] = near_misses(code, LOG)
    assert miss.literal == "warn" and miss.exact_lines == 2 and miss.ignore_case
    assert dict(miss.others) == {"WARNING": 2, "WARNINGS": 1}
    assert near_misses("print(sum('warn' in l for l in context.splitlines()))", LOG) == []


def test_nothing_to_say() -> None:
    # only alone (ERROR), only inside longer values (a date prefix), or absent
    assert near_misses("print(context.count('ERROR'))", LOG) == []
    assert near_misses("print(context.count('2026-03'))", "on 2026-03-05 and 2026-03-09") == []
    assert near_misses("print(context.count('INFO'))", LOG) == []


def test_edges_that_are_not_word_characters_glue_nothing() -> None:
    text = "x [WARN] a\ny [WARNING] b\nz[WARN] c"
    [miss] = near_misses("print(context.count('[WARN'))", text)
    assert miss.exact_lines == 2 and miss.others == (("[WARNING", 1),)
    assert near_misses("print(context.count('[WARN]'))", text) == []


def test_the_whole_value_test_matches_the_value_alone_whatever_separates_it() -> None:
    import re

    [miss] = near_misses("print(context.count('WARN'))", LOG)
    test = miss.whole_value_test()
    assert test == 're.search(r"(?<![\\w-])WARN(?![\\w-])", line)'
    kept = [line for line in LOG.splitlines() if eval(test, {"re": re, "line": line})]
    assert kept == ["ts=1 level=WARN msg=a", "ts=3 level=WARN msg=c WARN"]
    [folded] = near_misses("print(context.lower().count('warn'))", LOG)
    assert folded.whole_value_test().endswith(", line, re.IGNORECASE)")
    text = 'a "x b\na "xy b'
    [quoted] = near_misses("print(context.count('\"x'))", text)
    test = quoted.whole_value_test()
    assert [line for line in text.splitlines() if eval(test, {"re": re, "line": line})] == [
        'a "x b'
    ]


def test_the_variant_runs_the_same_code_with_whole_value_tests() -> None:
    code = (
        "warn = [l for l in context.splitlines() if 'WARN' in l]\n"
        "other = [l for l in context.splitlines() if 'WARN' not in l]\n"
        "len(warn), len(other), context.count('WARN')"
    )
    variant = whole_value_variant(code, near_misses(code, LOG))
    assert variant is not None
    namespace = {"context": LOG, "print": lambda *a: printed.append(a)}
    printed: list[tuple[object, ...]] = []
    exec(variant, namespace)
    assert printed == [((2, 4, 3),)]  # the last expression, as the REPL showed it
    assert "warn" not in namespace and "rlm_whole_value_check" not in namespace


def test_no_variant_for_code_a_second_run_must_not_repeat() -> None:
    for call in ("llm_query('x')", "FINAL(n)", "rlm_query_batched(['x'])"):
        code = f"n = context.count('WARN')\n{call}"
        assert whole_value_variant(code, near_misses(code, LOG)) is None
    assert whole_value_variant("print(context.count('ERROR'))", []) is None


def test_the_longer_value_a_cut_answer_belongs_to() -> None:
    text = "wifi: meadow-9328 (Ghent)\nguest: meadowlark"
    assert longer_value("meadow", text) == "meadow-9328"
    assert longer_value("9328", text) is None  # a number: a count need not be in the text
    assert longer_value("Ghent", text) is None  # it stands alone
    assert longer_value("canyon", text) is None  # absent
