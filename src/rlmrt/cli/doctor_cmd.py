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

Level = Literal["ok", "warn", "fail"]

SANDBOX_PROBE_TIMEOUT_S = 10.0
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
        _print(checks)
    if failed:
        raise typer.Exit(EXIT_RUN_ERROR)


def run_checks(project: str | None = None) -> list[Check]:
    checks = [_python(), _rlmrt(), _import("RestrictedPython"), _import("litellm", timed=True)]
    checks.append(_sandbox())
    checks.append(_process_sandbox())
    checks.append(_wasm_sandbox())
    checks.append(_docker_sandbox())
    config, config_check = _config(project)
    checks.append(config_check)
    checks.append(_trajectories(config))
    checks.append(_model(config))
    checks.append(_local_model(config))
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


def _sandbox() -> Check:
    from rlmrt.errors import RLMError
    from rlmrt.sandbox.facade import Sandbox

    started = time.perf_counter()
    try:
        with Sandbox("local", exec_timeout_s=SANDBOX_PROBE_TIMEOUT_S) as sandbox:
            result = sandbox.execute("print(1+1)")
    except (RLMError, ImportError, OSError) as exc:
        return Check("local sandbox", "fail", f"{type(exc).__name__}: {exc}")
    took = time.perf_counter() - started
    if result.error or result.stdout.strip() != "2":
        got = result.error or repr(result.stdout)
        return Check("local sandbox", "fail", f"print(1+1) gave {got}")
    return Check("local sandbox", "ok", f"print(1+1) -> 2 in {took:.2f}s")


def _process_sandbox() -> Check:
    """Whether bubblewrap is there and which quotas the process sandbox enforces."""
    name = "process sandbox"
    try:
        process = importlib.import_module("rlmrt.sandbox.process")
    except ImportError as exc:
        return Check(name, "warn", f"not available in this rlmrt ({exc})")
    # Doctor reports and never crashes: a backend that breaks on import or while
    # inspecting the machine is a finding for the table, whatever it raised.
    except Exception as exc:  # noqa: BLE001
        return Check(name, "warn", f"cannot import rlmrt.sandbox.process: {_describe(exc)}")
    try:
        available = bool(process.bubblewrap_available())
        quotas = list(process.quota_report())
        enforced = [f"{q.name} ({q.how})" for q in quotas if q.enforced]
        missing = [f"{q.name} ({q.how})" for q in quotas if not q.enforced]
    except Exception as exc:  # noqa: BLE001 - see above
        return Check(name, "warn", f"cannot inspect the process sandbox: {_describe(exc)}")
    quota_text = (
        f"enforced: {', '.join(enforced) or 'none'}; not enforced: {', '.join(missing) or 'none'}"
    )
    if not available:
        return Check(
            name,
            "warn",
            f"bubblewrap not found: install bubblewrap (apt-get install bubblewrap); {quota_text}",
        )
    return Check(name, "ok", f"bubblewrap available; {quota_text}")


def _docker_sandbox() -> Check:
    """Whether the Docker SDK, a reachable engine and the sandbox image are there."""
    name = "docker sandbox"
    fix = "run scripts/setup-docker (as root)"
    try:
        from rlmrt.sandbox import docker as docker_sandbox
        from rlmrt.sandbox.docker_image import image_present

        client = docker_sandbox.docker_client()
        version = client.version().get("Version", "?")
        image = os.environ.get("RLMRT_DOCKER_IMAGE") or docker_sandbox.DEFAULT_IMAGE
        present = image_present(image)
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        return Check(name, "warn", f"not available: {_describe(exc)}; {fix}")
    if not present:
        return Check(name, "warn", f"engine {version} reachable, image {image} missing; {fix}")
    enforced = ", ".join(sorted(docker_sandbox.DockerSandbox.enforces))
    return Check(
        name,
        "ok",
        f"engine {version}, image {image}; no network, read-only root, uid 65534,"
        f" no capabilities; enforced: {enforced}",
    )


def _wasm_sandbox() -> Check:
    """Whether Deno and Pyodide are installed for Sandbox("wasm"), and what it enforces."""
    name = "wasm sandbox"
    try:
        wasm = importlib.import_module("rlmrt.sandbox.wasm")
        _deno, pyodide = wasm.find_runtime()
        quotas = wasm.quota_report()
    except ImportError as exc:
        return Check(name, "warn", f"not available in this rlmrt ({exc})")
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        return Check(name, "warn", f"not ready: {_describe(exc)}")
    enforced = ", ".join(q for q, ok, _ in quotas if ok)
    missing = ", ".join(f"{q} ({how})" for q, ok, how in quotas if not ok) or "none"
    return Check(
        name,
        "ok",
        f"Deno {wasm.DENO_VERSION} and Pyodide {wasm.PYODIDE_VERSION} in"
        f" {pyodide.parent.parent}; enforced: {enforced}; not enforced: {missing}",
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _config(project: str | None = None) -> tuple[RLMConfig, Check]:
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


def _local_model(config: RLMConfig) -> Check:
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


def _print(checks: list[Check]) -> None:
    from rich.text import Text

    table = Table(title="rlm doctor", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in checks:
        table.add_row(check.name, Text(check.level, style=_STYLES[check.level]), Text(check.detail))
    console = Console()
    console.print(table)
    fails = sum(c.level == "fail" for c in checks)
    warns = sum(c.level == "warn" for c in checks)
    summary = "all good" if not fails and not warns else f"{fails} failed, {warns} warnings"
    console.print(summary, markup=False, highlight=False)
