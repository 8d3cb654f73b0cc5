"""The marketplace: `rlm tools search` over an index (a file, or a URL on 127.0.0.1) in
the MCP registry's server.json format plus rlmrt's tool packages, and `rlm tools install`
that pip-installs a package from a local PEP 503 index into a fresh venv, or records an
MCP server's launch command commented out; neither grants anything."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlmrt.cli.main import app
from rlmrt.config import load_config
from rlmrt.testing import SimpleIndex, build_wheel

ROOT = Path(__file__).resolve().parents[2]

WEATHER = {
    "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
    "name": "io.github.acme/weather-mcp",
    "title": "Weather",
    "description": "Forecasts and alerts for any city",
    "version": "1.2.0",
    "packages": [
        {
            "registryType": "npm",
            "identifier": "@acme/weather-mcp",
            "version": "1.2.0",
            "transport": {"type": "stdio"},
            "packageArguments": [
                {"type": "named", "name": "--units", "value": "metric"},
                {"type": "positional", "value": "serve"},
            ],
            "environmentVariables": [
                {"name": "WEATHER_REGION", "default": "eu"},
                {"name": "WEATHER_API_KEY", "isSecret": True, "isRequired": True},
            ],
        }
    ],
}
INDEX = {
    "servers": [
        {"server": {**WEATHER, "version": "1.1.0"}, "_meta": {}},  # the registry API's form
        {"server": WEATHER, "_meta": {"io.modelcontextprotocol.registry/official": {}}},
        {
            "name": "com.example/ledger",
            "description": "Accounting ledger over SQL",
            "version": "0.3.0",
            "packages": [
                {
                    "registryType": "oci",
                    "identifier": "docker.io/example/ledger",
                    "version": "0.3.0",
                    "transport": {"type": "stdio"},
                    "environmentVariables": [{"name": "LEDGER_MODE", "value": "ro"}],
                }
            ],
        },
        {
            "name": "com.example/search",
            "description": "Web search, hosted",
            "version": "2.0.0",
            "remotes": [{"type": "streamable-http", "url": "https://search.example.com/mcp"}],
        },
    ],
    "tool_packages": [
        {
            "name": "rlmrt-tool-dice",
            "version": "1.0.0",
            "description": "Roll dice for games",
            "tools": ["dice"],
        },
        {
            "name": "rlmrt-tool-dice",
            "version": "1.1.0",
            "description": "Roll dice for games",
            "tools": ["dice"],
        },
        {
            "name": "rlmrt-tool-sqlite",
            "version": "1.0.0",
            "description": "Read-only SQL over a database file",
            "tools": ["sqlite"],
        },
    ],
}


@pytest.fixture
def index(tmp_path: Path) -> Path:
    path = tmp_path / "index.json"
    path.write_text(json.dumps(INDEX))
    return path


def rlm(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args))
    return done.exit_code, done.output


def test_search_finds_servers_and_packages_by_every_word(index: Path) -> None:
    code, out = rlm("tools", "search", "SQL", "--index", str(index))
    assert code == 0, out
    assert out.splitlines() == [
        "com.example/ledger 0.3.0 (MCP server): Accounting ledger over SQL",
        "rlmrt-tool-sqlite 1.0.0 (tools: sqlite): Read-only SQL over a database file",
    ]
    code, out = rlm("tools", "search", "weather forecasts", "--index", str(index), "--json")
    assert [(r["name"], r["version"], r["kind"]) for r in json.loads(out)] == [
        ("io.github.acme/weather-mcp", "1.2.0", "mcp")  # the latest of its versions
    ]
    code, out = rlm("tools", "search", "dice", "--index", str(index))
    assert out == "rlmrt-tool-dice 1.1.0 (tools: dice): Roll dice for games\n"
    assert rlm("tools", "search", "nothing-like-it", "--index", str(index))[1] == (
        "No tool index entry matches 'nothing-like-it'.\n"
    )


def test_search_reads_an_index_url(index: Path, tmp_path: Path) -> None:
    with SimpleIndex(tmp_path / "served", []) as served:
        (tmp_path / "served" / "index.json").write_text(index.read_text())
        code, out = rlm("tools", "search", "hosted", "--index", f"{served.base}/index.json")
        assert (code, out) == (0, "com.example/search 2.0.0 (MCP server): Web search, hosted\n")
        code, out = rlm("tools", "search", "x", "--index", f"{served.base}/missing.json")
        assert code == 2 and "cannot read the tool index" in out and "404" in out


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "no tool index: give --index FILE|URL or set RLMRT_TOOL_INDEX"),
        ("{not json", "is not JSON"),
        ('{"servers": {}}', "servers is not a list"),
        ('{"servers": [{"name": "a/b", "version": "1"}]}', "servers[0]: the server has neither"),
        ('{"tool_packages": [{"name": "p"}]}', "tool_packages[0]: version is missing"),
    ],
)
def test_a_bad_index_is_named_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, said: str
) -> None:
    monkeypatch.delenv("RLMRT_TOOL_INDEX", raising=False)
    args = ["tools", "search", "x"]
    if content is not None:
        (tmp_path / "bad.json").write_text(content)
        args += ["--index", str(tmp_path / "bad.json")]
    code, out = rlm(*args)
    assert code == 2 and said in out and "Traceback" not in out


def test_installing_a_server_records_it_commented_out_and_grants_nothing(
    index: Path, tmp_path: Path
) -> None:
    (tmp_path / "rlm.toml").write_text('[llm]\nmodel = "openai/x"\n')
    code, out = rlm("tools", "install", "io.github.acme/weather-mcp", "--index", str(index))
    assert code == 0, out
    assert "as [tools.mcp.weather_mcp], commented out" in out
    assert "Nothing is granted: uncomment the table" in out
    assert "It needs these environment variables set: WEATHER_API_KEY." in out
    assert load_config().tools.mcp == {}  # recorded, not granted
    for name in ("com.example/ledger==0.3.0", "com.example/search"):
        assert rlm("tools", "install", name, "--index", str(index))[0] == 0
    text = (tmp_path / "rlm.toml").read_text()
    assert text.startswith('[llm]\nmodel = "openai/x"\n')
    again = rlm("tools", "install", "io.github.acme/weather-mcp", "--index", str(index))
    assert again[0] == 2 and "already has [tools.mcp.weather_mcp]" in again[1]
    # uncommented, the tables are what rlmrt starts the servers from
    uncommented = "\n".join(
        line[2:]
        if line.startswith("# [") or line.startswith(("# command", "# args", "# env", "# url"))
        else line
        for line in text.splitlines()
    )
    (tmp_path / "rlm.toml").write_text(uncommented)
    servers = load_config().tools.mcp
    assert servers["weather_mcp"].command == "npx"
    assert servers["weather_mcp"].args == [
        "-y",
        "@acme/weather-mcp@1.2.0",
        "--units",
        "metric",
        "serve",
    ]
    assert servers["weather_mcp"].env == {"WEATHER_REGION": "eu"}
    assert servers["ledger"].command == "docker"
    assert servers["ledger"].args == [
        "run",
        "-i",
        "--rm",
        "-e",
        "LEDGER_MODE",
        "docker.io/example/ledger:0.3.0",
    ]
    assert servers["search"].url == "https://search.example.com/mcp"


def test_installing_an_unknown_name_or_version_says_what_the_index_has(index: Path) -> None:
    code, out = rlm("tools", "install", "weather", "--index", str(index))
    assert (
        code == 2 and "no entry named 'weather' (did you mean: io.github.acme/weather-mcp?)" in out
    )
    code, out = rlm("tools", "install", "rlmrt-tool-dice==9.0", "--index", str(index))
    assert code == 2 and "has rlmrt-tool-dice at 1.0.0, 1.1.0, not at 9.0" in out


DICE = '''\
from rlmrt.tools import tool


@tool(version="{version}")
def dice(sides: int = 6) -> int:
    """Roll a die (always its top face: a test needs no chance)."""
    return sides
'''


@pytest.mark.slow
def test_installing_a_package_uses_pip_from_a_local_index_and_grants_nothing(
    index: Path, tmp_path: Path
) -> None:
    wheels = [
        build_wheel(
            tmp_path / "dist",
            "rlmrt-tool-dice",
            version,
            {"rlmrt_tool_dice.py": DICE.format(version=version)},
            entry_points={"rlmrt.tools": {"dice": "rlmrt_tool_dice:dice"}},
        )
        for version in ("1.0.0", "1.1.0")
    ]
    # a venv whose pip, rlmrt and dependencies come from this test's environment (this
    # checkout's src first): the tool package is the only thing pip installs into it
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "test_env.pth").write_text(
        "\n".join([str(ROOT / "src"), *site.getsitepackages()]) + "\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PIP_NO_CACHE_DIR": "1"}
    work = tmp_path / "project"
    work.mkdir()

    def venv_rlm(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from rlmrt.cli.main import app; sys.argv[0] = 'rlm'; app()"
        return subprocess.run(
            [str(python), "-c", code, *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    with SimpleIndex(tmp_path / "pypi", wheels[:1]) as pypi:
        done = venv_rlm(
            "tools",
            "install",
            "rlmrt-tool-dice==1.0.0",
            "--index",
            str(index),
            "--pip-index-url",
            pypi.url,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Installed rlmrt-tool-dice 1.0.0; its tools: dice." in done.stdout
        assert "Nothing is granted" in done.stdout and 'dice = "==1.0.0"' in done.stdout
        listed = venv_rlm("tools", "list")
        assert "dice 1.0.0 (rlmrt-tool-dice 1.0.0): not granted" in listed.stdout
        # the index lists 1.1.0 (the default), the package index does not have it
        failed = venv_rlm(
            "tools",
            "install",
            "rlmrt-tool-dice",
            "--index",
            str(index),
            "--pip-index-url",
            pypi.url,
        )
        assert failed.returncode == 1
        assert "pip could not install rlmrt-tool-dice==1.1.0" in failed.stderr
        assert "Traceback" not in failed.stderr
    assert not (work / "rlm.toml").exists()  # nothing granted, nothing written


def _server(*packages: dict[str, object], remotes: list[dict[str, str]] | None = None) -> dict:
    return {
        "name": "io.github.x/y",
        "version": "3.0.0",
        "packages": list(packages),
        "remotes": remotes or [],
    }


def test_launch_commands_of_each_package_kind() -> None:
    from rlmrt.errors import UsageError
    from rlmrt.tools._market import launch_command, parse_index

    def launch(server: dict) -> tuple[object, ...]:
        found = launch_command(parse_index({"servers": [server]})[0])
        return found.command, found.args, found.url

    pypi = {
        "registryType": "pypi",
        "identifier": "y-mcp",
        "transport": {"type": "stdio"},
        "runtimeArguments": [{"type": "named", "name": "--python", "value": "3.12"}],
    }
    assert launch(_server(pypi)) == ("uvx", ("--python", "3.12", "y-mcp==3.0.0"), None)
    hinted = {**pypi, "runtimeHint": "pipx", "runtimeArguments": [], "version": "3.0.1"}
    assert launch(_server(hinted)) == ("pipx", ("y-mcp==3.0.1",), None)
    http_only = {**pypi, "transport": {"type": "streamable-http", "url": "http://h/mcp"}}
    remote = {"type": "streamable-http", "url": "https://y.example/mcp"}
    assert launch(_server(http_only, remotes=[remote])) == (None, (), "https://y.example/mcp")
    nuget = {"registryType": "nuget", "identifier": "Y.Mcp", "runtimeHint": "dnx"}
    assert launch(_server(nuget)) == ("dnx", ("Y.Mcp",), None)
    with pytest.raises(UsageError, match=r"no stdio package .* nor streamable-http remote"):
        launch(_server(remotes=[{"type": "sse", "url": "https://y.example/sse"}]))
