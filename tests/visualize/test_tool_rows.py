"""Tool calls in the visualizer: a real run on the scripted server whose code calls a
tool (once well, once with a bad argument) shows both calls in the tree, its HTML and
the timeline, under the code block that made them."""

from __future__ import annotations

from pathlib import Path

from recordings import repl

from rlmrt import RLM
from rlmrt.testing import ChatRequest, ScriptedOpenAIServer
from rlmrt.tools import tool
from rlmrt.visualize import model, render
from rlmrt.visualize.runs import Follower


@tool(version="2.1.0")
def double(n: int) -> int:
    """Twice n.

    Args:
        n: the number to double
    """
    return 2 * n


CODE = (
    "try:\n    tools.double('x')\nexcept TypeError:\n    print('refused')\nFINAL(tools.double(21))"
)


def _reply(request: ChatRequest) -> str:
    return repl(CODE)


def test_tool_calls_are_rows_of_the_tree_and_bars_of_the_timeline(tmp_path: Path) -> None:
    with (
        ScriptedOpenAIServer(_reply) as server,
        RLM(
            model="openai/test-model",
            api_base=server.url,
            api_key="sk-test",
            max_retries=0,
            trajectory_dir=tmp_path,
        ) as rlm,
    ):
        result = rlm.completion("Double 21", context="21", tools=[double])
    assert result.answer == "42"
    (path,) = tmp_path.glob("*.jsonl")
    follower = Follower(path)
    follower.poll()
    rows = model.tree_rows(follower.tree)
    calls = [r for r in rows if r.title == "tools.double"]
    assert [r.status for r in calls] == ["error", "ok"]
    assert all(r.detail.startswith("2.1.0 → ") for r in calls)
    code = next(r for r in rows if r.kind == "code")
    assert all(r.level == code.level + 1 for r in calls)  # under the block that called
    assert render.tree_html(rows).count('<span class="title">tools.double</span>') == 2
    assert [b.kind for b in model.timeline(follower.tree)].count("tools.double") == 2
