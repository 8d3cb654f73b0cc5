"""`rlm chat` in-process: prompts from stdin, one session."""

from __future__ import annotations

from rlmrt.testing import scripted


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def test_chat_answers_each_line_in_one_session(rlm_cli, use_server, tmp_path) -> None:
    context = tmp_path / "c.txt"
    context.write_text("abcdef")
    server = use_server(
        scripted(
            root=[
                repl("n = len(context)\nFINAL(n)"),
                repl("FINAL(f'{n * 2} after {history[-1][\"answer\"]}')"),
            ]
        )
    )
    result = rlm_cli(
        "chat", "--context", str(context), input="how long?\n\ndouble it\n/exit\nnever asked\n"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "6\n12 after 6\n"
    assert len(server.requests) == 2


def test_chat_ends_at_end_of_input(rlm_cli, use_server) -> None:
    use_server(scripted(root=["FINAL(hi)"]))
    result = rlm_cli("chat", input="hello")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hi\n"
    empty = rlm_cli("chat", input="")
    assert empty.exit_code == 0 and empty.stdout == ""
