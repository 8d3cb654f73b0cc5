from __future__ import annotations

import pytest

from rlmrt.engine.parsing import FinalMarker, find_code_blocks, find_final


@pytest.mark.parametrize(
    ("text", "blocks"),
    [
        ("```repl\nx = 1\n```", ["x = 1"]),
        ("```python\nprint(2)\n```", ["print(2)"]),
        ("```py\na\n```\nand\n```repl\nb\n```", ["a", "b"]),
        ("```repl\nunclosed = True\n", ["unclosed = True"]),
        ("```json\n{}\n```", []),
        ("```\nplain fence\n```", ["plain fence"]),  # small models fence FINAL(...) so
        ("```text\nother language\n```", []),
        ("```repl\n\n```", []),
        ("no code at all", []),
    ],
)
def test_find_code_blocks(text: str, blocks: list[str]) -> None:
    assert find_code_blocks(text) == blocks


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("FINAL(42)", FinalMarker("FINAL", "42")),
        ("So:\nFINAL('quoted answer')", FinalMarker("FINAL", "quoted answer")),
        ('FINAL("a (nested) answer")', FinalMarker("FINAL", "a (nested) answer")),
        ("FINAL(f(x) + g(y))", FinalMarker("FINAL", "f(x) + g(y)")),
        ("**FINAL(bold)**", FinalMarker("FINAL", "bold")),
        ("FINAL_VAR(result)", FinalMarker("FINAL_VAR", "result")),
        ("FINAL_VAR('result')", FinalMarker("FINAL_VAR", "result")),
        ("FINAL(unbalanced ( paren)", FinalMarker("FINAL", "unbalanced ( paren")),
        ("FINAL(no close", FinalMarker("FINAL", "no close")),
        ("FINAL('it\\'s')", FinalMarker("FINAL", "it's")),
        ("FINAL('broken literal\\')", FinalMarker("FINAL", "broken literal\\")),
        ("Final(0)", FinalMarker("FINAL", "0")),
        ("final_var(total)", FinalMarker("FINAL_VAR", "total")),
        ("the word FINAL(x) inside a sentence", None),
        ("the final(ly) word", None),
        ("```repl\nFINAL(in code)\n```", None),
        ("nothing", None),
    ],
)
def test_find_final(text: str, marker: FinalMarker | None) -> None:
    assert find_final(text) == marker
