"""Issue 14 at the Python API: text that is not valid Unicode, the [input] settings on
path contexts, streams that end with a result, and RLMs that close themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from scripting import repl

from rlmrt import RunResult
from rlmrt.errors import ContextError
from rlmrt.events import RunErrored
from rlmrt.observe.summary import read_summary
from rlmrt.testing import Reply, scripted


def test_a_str_context_holding_a_lone_surrogate_is_recorded(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("FINAL(context)")]))
    result = make_rlm(server).completion("q \udcff", context="a\udcffb")
    assert result.answer == "a\udcffb"
    assert result.trajectory_path is not None
    _, summary = read_summary(result.trajectory_path)
    assert (summary.status, summary.prompt, summary.answer) == ("final", "q \udcff", "a\udcffb")


def test_input_settings_reach_path_contexts(serve, make_rlm, tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_bytes("café".encode("latin-1"))
    server = serve(scripted(root=[repl("FINAL(context)")]))
    assert make_rlm(server, encoding="latin-1").completion("q", path).answer == "café"
    with pytest.raises(ContextError, match="is not UTF-8 text"):
        make_rlm(server).completion("q", path)
    with pytest.raises(ContextError, match="3-byte cap per file"):
        make_rlm(server, max_file_bytes=3, encoding="latin-1").completion("q", path)


def test_a_stream_cut_mid_reply_ends_with_a_result(serve, make_rlm) -> None:
    server = serve(scripted(root=[Reply(text="alpha beta gamma delta", fault="drop_stream")]))
    items = list(make_rlm(server).stream("q", "c"))
    result = items[-1]
    assert isinstance(result, RunResult)
    assert (result.answer, result.partial, result.stop_reason) == (None, True, "error")
    assert result.error is not None and "broke off after" in result.error
    errors = [e for e in items if isinstance(e, RunErrored)]
    assert "broke off after" in errors[0].message


async def test_async_with_closes_the_rlm(serve, tmp_path: Path) -> None:
    from rlmrt import RLM

    server = serve(scripted(root=["FINAL(1)"]))
    async with RLM(
        model="openai/m", api_base=server.url, api_key="k", trajectory_dir=tmp_path
    ) as rlm:
        assert (await rlm.acompletion("q")).answer == "1"
    # closed: its HTTP session too (pytest turns an unclosed one into an error)


UNCLOSED = """
import asyncio, sys
from rlmrt import RLM
from rlmrt.testing import ScriptedOpenAIServer

with ScriptedOpenAIServer(lambda request: "FINAL(ok)") as server:
    settings = dict(model="openai/m", api_base=server.url, api_key="k", save_trajectory=False)
    if sys.argv[1] == "sync":
        rlm = RLM(**settings)
        print(rlm.completion("q").answer)  # never closed
    elif sys.argv[1] == "collected":
        print(RLM(**settings).completion("q").answer)
        import gc; gc.collect()
    else:
        async def main() -> None:
            async with RLM(**settings) as rlm:
                print((await rlm.acompletion("q")).answer)
        asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["sync", "collected", "async_with"])
def test_an_rlm_leaks_no_session_at_exit(how: str) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", UNCLOSED, how],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
    assert "Unclosed" not in done.stderr
    assert "ResourceWarning" not in done.stderr
