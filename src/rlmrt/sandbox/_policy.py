"""The in-process sandbox's compile hook: RestrictedPython's policy plus our additions.

`restrict` is what `rlmrt.sandbox.kernel.Repl.compile` runs on a parsed cell before it
adds the notebook-style display of a last bare expression and compiles. On top of
`RestrictingNodeTransformer` this policy

- inserts `_tick_()` at the start of every loop body and function body and as the
  first condition of every comprehension, so the deadline and the memory budget are
  checked while Python code runs;
- routes `+`, `*`, `**`, `<<` and `%` through size-estimating guards, f-string format
  specs through `_fmt_`, and starred expressions through `_unpack_`;
- allows annotated assignments and `x[k] += v` / `x.a += v` (RestrictedPython refuses
  them) by rewriting them to guarded calls.
"""

from __future__ import annotations

import ast
from typing import Any, cast

from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer

__all__ = ["restrict"]

_BINOP_GUARDS: dict[type[ast.operator], str] = {
    ast.Add: "_add_",
    ast.Mult: "_mul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}


def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    return ast.copy_location(node, like)


def _tick(like: ast.AST) -> ast.Expr:
    return ast.copy_location(ast.Expr(_call("_tick_", [], like)), like)


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


class SandboxPolicy(RestrictingNodeTransformer):
    def visit_For(self, node: ast.For) -> Any:
        node = cast(ast.For, super().visit_For(node))
        node.body.insert(0, _tick(node))
        return node

    def visit_While(self, node: ast.While) -> Any:
        node = cast(ast.While, super().visit_While(node))
        node.body.insert(0, _tick(node))
        return node

    def visit_comprehension(self, node: ast.comprehension) -> Any:
        node = cast(ast.comprehension, super().visit_comprehension(node))
        node.ifs.insert(0, _call("_tick_", [], node.iter))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        node = cast(ast.FunctionDef, super().visit_FunctionDef(node))
        node.body.insert(1 if node.body and _is_docstring(node.body[0]) else 0, _tick(node))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = cast(ast.BinOp, super().visit_BinOp(node))
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        return _call(guard, [node.left, node.right], node)

    def visit_Starred(self, node: ast.Starred) -> Any:
        node = cast(ast.Starred, super().visit_Starred(node))
        if isinstance(node.ctx, ast.Load):
            node.value = _call("_unpack_", [node.value], node.value)
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        node = cast(ast.FormattedValue, super().visit_FormattedValue(node))
        if node.format_spec is None:
            return node
        value = _call(
            "_fmt_",
            [node.value, ast.Constant(node.conversion), node.format_spec],
            node.value,
        )
        return ast.copy_location(
            ast.FormattedValue(value=value, conversion=-1, format_spec=None), node
        )

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        return self.node_contents_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target = node.target
        op = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        if isinstance(target, ast.Subscript):
            key: ast.expr = target.slice
            if isinstance(key, ast.Slice):
                key = _call(
                    "slice",
                    [part or ast.Constant(None) for part in (key.lower, key.upper, key.step)],
                    target,
                )
            args = [self.visit(target.value), self.visit(key), op, self.visit(node.value)]
            return ast.copy_location(ast.Expr(_call("_augitem_", args, node)), node)
        if isinstance(target, ast.Attribute):
            if target.attr.startswith("_"):
                self.error(node, f'"{target.attr}" is an invalid attribute name.')
                return node
            args = [
                self.visit(target.value),
                ast.Constant(target.attr),
                op,
                self.visit(node.value),
            ]
            return ast.copy_location(ast.Expr(_call("_augattr_", args, node)), node)
        return super().visit_AugAssign(node)


def restrict(tree: ast.Module) -> ast.Module:
    """`tree` rewritten by the policy; SyntaxError when it uses something the sandbox
    does not allow (the cell parses, but may not run here)."""
    errors: list[str] = []
    SandboxPolicy(errors, [], {}).visit(tree)
    if errors:
        raise SyntaxError("code not allowed in the sandbox:\n" + "\n".join(errors))
    return ast.fix_missing_locations(tree)
