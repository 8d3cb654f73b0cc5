"""The code that answered a run right, taken from its trajectory as it ran: a small
model copies working code far better than it follows advice written about it.

`answering_code` picks the root run's last block that ran without error and printed
the answer, or else the run's last block when its FINAL / FINAL_VAR of a computed value
ended the run; never a block that writes the answer out as a literal (``FINAL(138)``,
``print("138")`` teach nothing), nor a FINAL the run went on past (its value was not
the answer: one small model's ``re.search(r"is (\\d+)")`` gave "9079" where the
answer was "9079-HL"). The earlier blocks that define names it uses come along, so
the example runs as shown."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from rlmrt.events import CodeExecuted

MAX_EXAMPLE_CHARS = 700  # an example cut in the middle would teach broken code
MAX_SUPPORT_BLOCKS = 2  # earlier blocks brought along for the names the answer block uses
MAX_QUOTED_CHARS = 80  # longer answers are sentences, not values to look for


def quotes(text: str, value: str | None) -> bool:
    """Whether `text` holds `value` as a whole token (not inside a longer number or
    word); values of one character or over `MAX_QUOTED_CHARS` never count."""
    value = (value or "").strip()
    if len(value) < 2 or len(value) > MAX_QUOTED_CHARS:
        return False
    return re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w-]|\.\d)", text) is not None


def answering_code(
    blocks: Sequence[CodeExecuted], answer: str | None, *, ended_by_code: bool = False
) -> str | None:
    """The code that produced `answer` in `blocks` (one run's own blocks, in order), or
    None when no block did so without quoting it, or the code is too long to show.
    `ended_by_code`: the run's answer came from its last block's FINAL."""
    ok = [b for b in blocks if b.error is None and not quotes(b.code, answer)]
    found = next((b for b in reversed(ok) if quotes(b.stdout, answer)), None)
    if found is None and ended_by_code and ok and ok[-1] is blocks[-1]:
        found = ok[-1] if _gives_final(ok[-1].code) else None
    if found is None:
        return None
    chosen = [found.code.strip()]
    imports: dict[str, str] = {}  # a module an earlier block imported: its statement only
    needed = _free_names(found.code)
    for block in reversed(ok[: ok.index(found)]):
        for name, statement in _imports(block.code).items():
            if name in needed:
                imports.setdefault(name, statement)
        needed -= imports.keys()
        if not needed or len(chosen) > MAX_SUPPORT_BLOCKS:
            break
        provides = _names_set(block.code) & needed
        if provides and block.code.strip() not in chosen:
            chosen.insert(0, block.code.strip())
            needed = (needed - provides) | _free_names(block.code)
    code = "\n".join([*dict.fromkeys(imports.values()), *chosen])
    return code if len(code) <= MAX_EXAMPLE_CHARS else None


def _gives_final(code: str) -> bool:
    """Whether `code` ends the run from a computed value: FINAL of an expression or
    FINAL_VAR, not FINAL of a literal typed out (which teaches nothing)."""
    tree = _parse(code)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id.upper()
            if name == "FINAL_VAR" or (
                name == "FINAL" and node.args and not isinstance(node.args[0], ast.Constant)
            ):
                return True
    return False


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def _names_set(code: str) -> set[str]:
    """The names `code` binds (assignments, loops, functions, classes), not imports."""
    tree = _parse(code)
    if tree is None:
        return set()
    names = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del))
    }
    names.update(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    )
    return names


def _imports(code: str) -> dict[str, str]:
    """The names `code` imports, each with its import statement."""
    tree = _parse(code)
    if tree is None:
        return {}
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                found[(alias.asname or alias.name).split(".")[0]] = ast.unparse(node)
    return found


def _free_names(code: str) -> set[str]:
    """The names `code` reads but neither binds nor imports itself."""
    return _names_used(code) - _names_set(code) - _imports(code).keys()


def _names_used(code: str) -> set[str]:
    tree = _parse(code)
    if tree is None:
        return set()
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
