"""Projects: `rlm project ...`, `--project` on every command, and isolation between two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rlmrt.cli._errors import ErrorHandlingGroup
from rlmrt.cli.main import app as main_app
from rlmrt.config import default_home
from rlmrt.errors import ConfigError, UsageError
from rlmrt.projects import Project, ProjectRegistry, active_project, load_project_config
from rlmrt.testing import scripted


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


@pytest.fixture
def two_projects(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "alpha"
    (a / "docs").mkdir(parents=True)
    (a / "docs" / "a.md").write_text("# Alpha\nThe aardvark eats ants.\n")
    (a / "rlm.toml").write_text("[budget]\nmax_iterations = 7\n")
    b = tmp_path / "beta"
    b.mkdir()
    (b / "b.md").write_text("# Beta\nThe bison grazes.\n")
    return a, b


def test_add_list_use_rm(rlm_cli, two_projects: tuple[Path, Path]) -> None:
    a, b = two_projects
    assert "no projects yet" in rlm_cli("project", "list").stdout
    assert rlm_cli("project", "add", "alpha", str(a)).exit_code == 0
    added = rlm_cli("project", "add", "beta", str(b), "--use")
    assert added.exit_code == 0 and "(current)" in added.stdout
    data = json.loads(rlm_cli("project", "list", "--json").stdout)
    assert data["current"] == "beta"
    assert [(p["name"], p["current"]) for p in data["projects"]] == [
        ("alpha", False),
        ("beta", True),
    ]
    alpha = data["projects"][0]
    assert alpha["root"] == str(a.resolve())
    assert alpha["config_file"] == str(a.resolve() / "rlm.toml")
    assert alpha["runs_dir"] == str(default_home() / "projects" / "alpha" / "runs")
    table = rlm_cli("project", "list").stdout
    marked = [line for line in table.splitlines() if "*" in line]
    assert len(marked) == 1 and "beta" in marked[0]

    assert "current project: alpha" in rlm_cli("project", "use", "alpha").stdout
    assert ProjectRegistry().current_name() == "alpha"
    assert rlm_cli("project", "use", "--none").stdout.strip() == "no current project"
    assert ProjectRegistry().current_name() is None

    (default_home() / "projects" / "beta" / "runs").mkdir(parents=True)
    removed = rlm_cli("project", "rm", "beta", "--purge")
    assert removed.exit_code == 0 and "deleted" in removed.stdout
    assert not (default_home() / "projects" / "beta").exists()
    assert b.is_dir()  # the root folder is never touched
    assert [p.name for p in ProjectRegistry().list()] == ["alpha"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["project", "add", "x", "missing"], "does not exist"),
        (["project", "add", "bad name", "."], "bad project name 'bad name'"),
        (["project", "add", "-x", "."], None),
        (["project", "use", "ghost"], "no project named 'ghost'"),
        (["project", "use"], "give a project NAME or --none"),
        (["project", "rm", "ghost"], "no project named 'ghost'"),
        (["logs", "--project", "ghost"], "no project named 'ghost'"),
    ],
)
def test_misuse_is_one_error_line(rlm_cli, args: list[str], message: str | None) -> None:
    result = rlm_cli(*args)
    assert result.exit_code == 2
    if message is not None:
        assert result.stderr.startswith("error: ") and message in result.stderr


def test_name_taken_and_path_not_a_folder(rlm_cli, tmp_path: Path) -> None:
    rlm_cli("project", "add", "one", str(tmp_path))
    taken = rlm_cli("project", "add", "one", str(tmp_path))
    assert taken.exit_code == 2 and "already exists" in taken.stderr
    (tmp_path / "f.txt").write_text("x")
    not_dir = rlm_cli("project", "add", "two", str(tmp_path / "f.txt"))
    assert not_dir.exit_code == 2 and "is not a folder" in not_dir.stderr


def test_damaged_registry_is_a_clear_error(rlm_cli) -> None:
    default_home().mkdir(parents=True)
    (default_home() / "projects.json").write_text("{not json")
    result = rlm_cli("project", "list")
    assert result.exit_code == 2 and "cannot read the projects file" in result.stderr
    (default_home() / "projects.json").write_text('{"projects": 3}')
    with pytest.raises(ConfigError, match="damaged"):
        ProjectRegistry().list()


def test_runs_and_indexes_of_one_project_are_invisible_from_another(
    rlm_cli, use_server, two_projects: tuple[Path, Path]
) -> None:
    a, b = two_projects
    rlm_cli("project", "add", "alpha", str(a))
    rlm_cli("project", "add", "beta", str(b))
    use_server(scripted(root=[repl("FINAL('done')")]))

    ran = rlm_cli("run", "q", "--project", "alpha", "--json")
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.stdout)
    assert Path(run["trajectory_path"]).parent == default_home() / "projects" / "alpha" / "runs"

    seen_a = json.loads(rlm_cli("logs", "--project", "alpha", "--json").stdout)
    seen_b = json.loads(rlm_cli("logs", "--project", "beta", "--json").stdout)
    assert [r["run_id"] for r in seen_a] == [run["run_id"]]
    assert seen_b == []
    assert rlm_cli("logs", run["run_id"], "--project", "beta").exit_code == 2
    assert rlm_cli("replay", run["run_id"], "--project", "beta").exit_code == 2

    indexed = json.loads(rlm_cli("index", "--project", "alpha", "--json").stdout)
    assert indexed["root"] == str(a.resolve())
    assert indexed["index"] == str(default_home() / "projects" / "alpha" / "index.sqlite")
    hits_a = json.loads(rlm_cli("search", "aardvark", "--project", "alpha", "--json").stdout)
    hits_b = json.loads(rlm_cli("search", "aardvark", "--project", "beta", "--json").stdout)
    assert [h["source"] for h in hits_a["hits"]] == ["docs/a.md"]
    assert hits_b["hits"] == []

    # the current project and RLM_PROJECT choose the project when --project is not given
    rlm_cli("project", "use", "alpha")
    assert [r["run_id"] for r in json.loads(rlm_cli("logs", "--json").stdout)] == [run["run_id"]]


def test_settings_come_from_the_project(
    rlm_cli, monkeypatch: pytest.MonkeyPatch, two_projects: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_projects
    rlm_cli("project", "add", "alpha", str(a))
    rlm_cli("project", "add", "beta", str(b))
    (tmp_path / "rlm.toml").write_text("[budget]\nmax_iterations = 3\n")  # the working folder's

    shown = json.loads(rlm_cli("config", "show", "--project", "alpha", "--json").stdout)
    assert shown["project"] == "alpha"
    assert shown["config_file"] == str(a.resolve() / "rlm.toml")
    assert shown["settings"]["budget.max_iterations"] == {
        "value": 7,
        "source": "file",
        "from": str(a.resolve() / "rlm.toml"),
    }
    assert shown["settings"]["trajectory.dir"]["source"] == "project"
    beta = json.loads(rlm_cli("config", "show", "--project", "beta", "--json").stdout)
    assert beta["config_file"] is None
    assert beta["settings"]["budget.max_iterations"]["value"] == 20  # not the working folder's 3
    assert beta["settings"]["context.root"]["value"] == str(b.resolve())
    plain = json.loads(rlm_cli("config", "show", "--json").stdout)
    assert plain["project"] is None and plain["settings"]["budget.max_iterations"]["value"] == 3
    table = rlm_cli("config", "show", "--project", "beta").stdout
    assert "project (beta)" in table

    monkeypatch.setenv("RLM_PROJECT", "alpha")
    assert active_project() == Project("alpha", a.resolve())
    assert load_project_config(active_project()).budget.max_iterations == 7
    assert active_project("beta") == Project("beta", b.resolve())
    monkeypatch.setenv("RLM_BUDGET__MAX_ITERATIONS", "9")
    assert load_project_config(active_project()).budget.max_iterations == 9  # env beats the file
    # an explicit --config beats the project's rlm.toml
    other = tmp_path / "other.toml"
    other.write_text("[budget]\nmax_depth = 3\n")
    config = load_project_config(active_project(), config_file=other)
    assert config.budget.max_depth == 3 and config.trajectory.dir.parent.name == "alpha"

    doctor = json.loads(rlm_cli("doctor", "--project", "alpha", "--json").stdout)
    settings = next(c for c in doctor["checks"] if c["name"] == "settings")
    assert str(a.resolve() / "rlm.toml") in settings["detail"]
    ghost = json.loads(rlm_cli("doctor", "--project", "ghost", "--json").stdout)
    failed = next(c for c in ghost["checks"] if c["name"] == "settings")
    assert failed["level"] == "fail" and "no project named 'ghost'" in failed["detail"]


def test_bad_settings_in_a_project_name_their_source(
    rlm_cli, two_projects: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = two_projects
    ProjectRegistry().add("alpha", a)
    monkeypatch.setenv("RLM_BUDGET__MAX_DEPTH", "99")
    with pytest.raises(ConfigError, match="environment variable RLM_BUDGET__MAX_DEPTH"):
        load_project_config(active_project("alpha"))
    with pytest.raises(UsageError, match="no project named"):
        active_project("nope")


def test_chat_takes_the_project(rlm_cli, use_server, two_projects: tuple[Path, Path]) -> None:
    a, _ = two_projects
    rlm_cli("project", "add", "alpha", str(a))
    use_server(scripted(root=[repl("FINAL('hi')")]))
    runner = CliRunner()
    app = typer.Typer(cls=ErrorHandlingGroup, add_completion=False)
    app.registered_commands.extend(main_app.registered_commands)
    result = runner.invoke(app, ["chat", "--project", "alpha"], input="hello\n")
    assert result.exit_code == 0, result.output
    assert "hi" in result.stdout
    runs = list((default_home() / "projects" / "alpha" / "runs").glob("*.jsonl"))
    assert len(runs) == 1
