"""Tools installed by packages (entry-point group `rlmrt.tools`), granted and pinned in
`[tools]`, their needs granted in settings; `rlm tools list` and `rlm tools info`.

The package is a real installed distribution: a `.dist-info` folder with its
`entry_points.txt` on `sys.path`, found by `importlib.metadata` as pip's would be."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlmrt.cli.main import app
from rlmrt.config import RLMConfig
from rlmrt.errors import ConfigError, ToolError
from rlmrt.testing import scripted
from rlmrt.tools import installed_tools, open_toolbox

MODULE = '''
from rlmrt.tools import Secrets, tool


@tool(version="{version}")
def shout(text: str, times: int = 1) -> str:
    """Upper-case `text`, repeated.

    Args:
        text: what to shout
        times: how many times
    """
    return " ".join([text.upper()] * times)


@tool(version="{version}", network=True)
def fetch(url: str) -> str:
    """Pretend to fetch a URL."""
    return "fetched " + url


def plain(n: int) -> int:
    """A plain function: the entry point makes it a tool."""
    return n * 2
'''


def install(site: Path, version: str) -> None:
    """Install the package `shouty` at `version` into `site` (its files, as pip would)."""
    (site / f"shouty_{version.replace('.', '_')}.py").write_text(MODULE.format(version=version))
    info = site / f"shouty-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: shouty\nVersion: {version}\n")
    module = f"shouty_{version.replace('.', '_')}"
    (info / "entry_points.txt").write_text(
        f"[rlmrt.tools]\nshout = {module}:shout\nfetch = {module}:fetch\n"
        f"plain = {module}:plain\nbroken = {module}:missing\n"
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "site"
    folder.mkdir()
    install(folder, "1.3.0")
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    yield folder
    for name in [m for m in sys.modules if m.startswith("shouty_")]:
        del sys.modules[name]


def test_installed_tools_are_found_with_their_package(site: Path) -> None:
    found = installed_tools()
    assert found["shout"].tool is not None and found["shout"].package == "shouty 1.3.0"
    assert found["shout"].tool.version == "1.3.0" and found["shout"].tool.source == "shouty 1.3.0"
    assert found["plain"].tool is not None and found["plain"].tool.signature() == (
        "plain(n: int) -> int"
    )
    assert found["broken"].tool is None and "AttributeError" in (found["broken"].error or "")


async def test_only_granted_tools_are_offered_and_pins_are_checked(site: Path) -> None:
    assert await open_toolbox(RLMConfig().tools) is None  # nothing granted: no tools at all
    box = await open_toolbox(RLMConfig(tools={"shout": ">=1.2,<2", "fetch": "*"}).tools)
    assert box is not None
    assert list(box.tools) == ["shout"]
    with pytest.raises(
        ToolError, match=r"tools.fetch is not offered to this run: it needs network"
    ):
        box.find("fetch")
    with pytest.raises(ToolError, match="no tool named 'plain'"):
        box.find("plain")
    assert await box.invoke(box.find("shout"), ["hi"], {"times": 2}) == "HI HI"
    with pytest.raises(ConfigError) as refused:
        await open_toolbox(RLMConfig(tools={"shout": ">=2"}).tools)
    assert str(refused.value) == (
        "tool 'shout' is installed at version 1.3.0 (from shouty 1.3.0), but [tools] pins"
        ' shout = ">=2"; install a matching version or change the pin'
    )
    with pytest.raises(ConfigError, match="no installed package provides it"):
        await open_toolbox(RLMConfig(tools={"no_such_tool": "*"}).tools)
    granted = RLMConfig(tools={"fetch": {"version": "1.3.0", "network": True}})
    box = await open_toolbox(granted.tools)
    assert box is not None and list(box.tools) == ["fetch"]


def test_a_conflicting_pin_stops_the_run_before_the_model_is_asked(
    site: Path, serve, make_rlm
) -> None:
    server = serve(scripted(root=["FINAL(x)"]))
    rlm = make_rlm(server, granted_tools={"shout": "<1"})
    with pytest.raises(ConfigError, match=r"installed at version 1\.3\.0"):
        rlm.completion("q", context="c")
    assert server.requests == []


def test_a_run_calls_a_granted_installed_tool(site: Path, serve, make_rlm) -> None:
    server = serve(scripted(root=['```repl\nFINAL(tools.shout("hey", 3))\n```']))
    rlm = make_rlm(server, sandbox="process", granted_tools={"shout": "~=1.3"})
    assert rlm.completion("q", context="c").answer == "HEY HEY HEY"
    system = server.requests[0].messages[0]["content"]
    assert "tools.shout(text: str, times: int = 1) -> str: Upper-case `text`, repeated." in system


def test_rlm_tools_list_and_info(site: Path, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text(
        textwrap.dedent(
            """
            [tools]
            shout = ">=1,<2"
            """
        )
    )
    runner = CliRunner()
    listed = runner.invoke(app, ["tools", "list"])
    assert listed.exit_code == 0, listed.output
    assert "shout 1.3.0 (shouty 1.3.0): offered" in listed.output
    assert 'fetch 1.3.0 (shouty 1.3.0): not granted (add fetch = "*"' in listed.output
    assert "broken: cannot load (shouty 1.3.0: AttributeError" in listed.output
    info = runner.invoke(app, ["tools", "info", "shout", "--json"])
    assert info.exit_code == 0, info.output
    row = json.loads(info.output)
    assert row["input_schema"]["properties"]["text"] == {
        "description": "what to shout",
        "type": "string",
    }
    assert (row["version"], row["source"], row["status"]) == ("1.3.0", "shouty 1.3.0", "offered")
    text = runner.invoke(app, ["tools", "info", "fetch"])
    assert "needs: network" in text.output and "source: shouty 1.3.0" in text.output
    unknown = runner.invoke(app, ["tools", "info", "nope"])
    assert unknown.exit_code == 2
    assert "no installed tool named 'nope'" in unknown.output
    assert "Traceback" not in unknown.output


def _swap(site: Path, old: str, new: str) -> None:
    """Upgrade `shouty` in `site` from `old` to `new`, as pip would (the old files go)."""
    import shutil

    shutil.rmtree(site / f"shouty-{old}.dist-info")
    install(site, new)
    importlib.invalidate_caches()


def test_rlm_replay_warns_when_an_offered_tool_changed_since(
    site: Path, tmp_path: Path, serve, make_rlm
) -> None:
    server = serve(scripted(root=['```repl\nFINAL(tools.shout("hey", 3))\n```']))
    rlm = make_rlm(server, granted_tools={"shout": "*"})
    result = rlm.completion("q")  # no context: the replay needs none given again
    assert result.answer == "HEY HEY HEY" and result.trajectory_path is not None
    (tmp_path / "rlm.toml").write_text('[tools]\nshout = "*"\n')  # offered again on replay
    runner = CliRunner()
    replay = ["replay", result.run_id, "--dir", str(tmp_path / "runs")]

    same = runner.invoke(app, replay)
    assert same.exit_code == 0, same.output
    assert same.stdout.endswith("1 code execution(s), identical\n")
    assert same.stderr == ""

    _swap(site, "1.3.0", "1.4.0")
    newer = runner.invoke(app, replay)
    assert newer.exit_code == 0, newer.output  # the code's output did not change
    assert newer.stderr == (
        "warning: tool 'shout': the run offered version 1.3.0 (from shouty 1.3.0);"
        " version 1.4.0 (from shouty 1.4.0) is installed now\n"
    )

    _swap(site, "1.4.0", "1.3.0")
    path = result.trajectory_path
    recorded = installed_tools()["shout"].tool
    assert recorded is not None
    digest = recorded.schema_digest()
    path.write_text(path.read_text().replace(digest, "0123456789abcdef"))
    reshaped = runner.invoke(app, replay)
    assert reshaped.stderr == (
        "warning: tool 'shout': version 1.3.0 is installed as the run had it, but its"
        f" schema changed (digest 0123456789abcdef recorded, {digest} now)\n"
    )

    (site / "shouty-1.3.0.dist-info" / "entry_points.txt").write_text("[rlmrt.tools]\n")
    (tmp_path / "rlm.toml").write_text("")
    gone = runner.invoke(app, replay)
    assert "warning: tool 'shout': the run offered version 1.3.0 (from shouty 1.3.0); it is" in (
        gone.stderr
    )
    assert "not installed now" in gone.stderr
