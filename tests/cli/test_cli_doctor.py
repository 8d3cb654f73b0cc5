"""`rlm doctor`: a healthy default install passes; broken parts fail; secrets stay out."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rlmrt.sandbox import process as process_module
from rlmrt.sandbox.base import LIMIT_NAMES, QuotaStatus
from rlmrt.sandbox.process import ProcessSandbox


def checks(rlm_cli, expect_exit: int) -> dict[str, dict]:
    result = rlm_cli("doctor", "--json")
    assert result.exit_code == expect_exit, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is (expect_exit == 0)
    return {c["name"]: c for c in data["checks"]}


def test_healthy_default_install(rlm_cli, tmp_path: Path) -> None:
    found = checks(rlm_cli, 0)
    for name in ("python", "rlmrt", "RestrictedPython", "litellm", "local sandbox", "settings"):
        assert found[name]["level"] == "ok", found[name]
    assert "print(1+1) -> 2" in found["local sandbox"]["detail"]
    assert "imported in" in found["litellm"]["detail"]
    assert found["trajectories"]["level"] == "ok"
    assert str(tmp_path / "rlmrt-home" / "runs") in found["trajectories"]["detail"]
    assert found["model"]["level"] == "warn"  # no model yet: a warning, not a failure
    assert "api_base" not in found  # nothing configured, nothing contacted
    assert not (tmp_path / "rlmrt-home").exists()  # doctor does not create the folder


def test_table_output(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = rlm_cli("doctor")
    assert result.exit_code == 0, result.output
    model_line = next(x for x in result.stdout.splitlines() if "no model configured" in x)
    assert " warn " in model_line
    assert "0 failed" in result.stdout


def test_bad_config_fails(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("[sandbox]\nkind = 'dockr'\n")
    found = checks(rlm_cli, 1)
    assert found["settings"]["level"] == "fail"
    assert "unknown sandbox 'dockr'" in found["settings"]["detail"]


def test_key_names_never_values(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_LLM__MODEL", "anthropic/claude-x")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    result = rlm_cli("doctor", "--json")
    assert "sk-secret-value-123" not in result.output
    found = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert found["model"]["level"] == "ok"
    keys = found["API keys"]
    assert keys["level"] == "warn"
    assert "anthropic/claude-x needs ANTHROPIC_API_KEY" in keys["detail"]
    assert "OPENAI_API_KEY" in keys["detail"]


def test_config_key_is_not_shown(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_LLM__MODEL", "openai/gpt-x")
    monkeypatch.setenv("RLM_LLM__API_KEY", "sk-other-secret")
    result = rlm_cli("doctor", "--json")
    assert result.exit_code == 0
    assert "sk-other-secret" not in result.output
    found = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert found["API keys"] == {
        "name": "API keys",
        "level": "ok",
        "detail": "found: api_key (settings)",
    }


def test_api_base_reachable(rlm_cli, serve, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(lambda req: "unused")
    monkeypatch.setenv("RLM_LLM__MODEL", "openai/test-model")
    monkeypatch.setenv("RLM_LLM__API_BASE", server.url)
    found = checks(rlm_cli, 0)
    assert found["api_base"]["level"] == "ok"
    assert f"{server.url}/models answered" in found["api_base"]["detail"]
    assert found["API keys"]["level"] == "ok"  # a local server may need no key
    assert server.requests == []  # only GET /models, no completion


def test_api_base_unreachable_fails(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_LLM__API_BASE", "http://127.0.0.1:9/v1")
    found = checks(rlm_cli, 1)
    assert found["api_base"]["level"] == "fail"
    assert "127.0.0.1:9/v1/models" in found["api_base"]["detail"]


def test_trajectory_folder_not_writable(rlm_cli, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("RLM_TRAJECTORY__DIR", str(tmp_path / "file"))
    found = checks(rlm_cli, 1)
    assert found["trajectories"]["level"] == "fail"
    assert "not a folder" in found["trajectories"]["detail"]


# -- the sandbox rows ----------------------------------------------------------------------

PROCESS_MODULE = "rlmrt.sandbox.process"


def test_every_sandbox_kind_has_a_row(rlm_cli) -> None:
    from rlmrt.sandbox.facade import SANDBOXES

    found = checks(rlm_cli, 0)
    rows = [name for name in found if name.endswith(" sandbox")]
    assert rows == [f"{kind} sandbox" for kind in SANDBOXES.names()]


QUOTAS = [
    QuotaStatus("exec_timeout_s", True, "host watchdog"),
    QuotaStatus("memory_mb", True, "RLIMIT_AS"),
    QuotaStatus("cpu_s", False, "no cgroup delegation"),
]


def report(quotas: list[QuotaStatus] | Exception) -> classmethod:  # type: ignore[type-arg]
    def quota_report(cls: type) -> list[QuotaStatus]:
        if isinstance(quotas, Exception):
            raise quotas
        return quotas

    return classmethod(quota_report)


def test_process_sandbox_quotas_are_listed(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ProcessSandbox, "quota_report", report(QUOTAS))
    row = checks(rlm_cli, 0)["process sandbox"]
    assert row["level"] == "ok"
    assert row["detail"] == (
        "bubblewrap available; enforced: exec_timeout_s (host watchdog), memory_mb (RLIMIT_AS);"
        " not enforced: cpu_s (no cgroup delegation)"
    )


def test_process_sandbox_without_bubblewrap_warns(
    rlm_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(process_module, "BWRAP", str(tmp_path / "no-bwrap"))
    row = checks(rlm_cli, 0)["process sandbox"]
    assert row["level"] == "warn"
    assert row["detail"].startswith(
        "bubblewrap not found: `rlm setup process` installs it (as root: Debian's bubblewrap);"
        " enforced: "
    )
    assert "not enforced: isolation (bubblewrap not found at" in row["detail"]


def test_process_sandbox_missing_module_warns(rlm_cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, PROCESS_MODULE, None)  # import fails: ModuleNotFoundError
    row = checks(rlm_cli, 0)["process sandbox"]
    assert row["level"] == "warn"
    assert row["detail"].startswith("not available in this rlmrt")
    assert PROCESS_MODULE in row["detail"]


def test_process_sandbox_import_crash_warns(rlm_cli, monkeypatch) -> None:
    def broken_import(name: str, package: str | None = None) -> ModuleType:
        if name == PROCESS_MODULE:
            raise RuntimeError("kernel file missing")
        return real_import(name, package)

    real_import = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", broken_import)
    row = checks(rlm_cli, 0)["process sandbox"]
    assert row == {
        "name": "process sandbox",
        "level": "warn",
        "detail": "cannot load the process sandbox: RuntimeError: kernel file missing",
    }


def test_process_sandbox_report_error_warns(rlm_cli, monkeypatch) -> None:
    monkeypatch.setattr(ProcessSandbox, "quota_report", report(OSError("no /proc")))
    result = rlm_cli("doctor")  # the table, too, survives it
    assert result.exit_code == 0, result.output
    row = checks(rlm_cli, 0)["process sandbox"]
    assert row["level"] == "warn"
    assert row["detail"] == "cannot inspect the process sandbox: OSError: no /proc"


# -- the docker sandbox row ----------------------------------------------------------------


def test_docker_sandbox_ready(rlm_cli) -> None:
    row = checks(rlm_cli, 0)["docker sandbox"]
    assert row["level"] == "ok"
    assert "image rlmrt-sandbox:bookworm; no network, read-only root" in row["detail"]
    enforced, _, missing = row["detail"].partition("; not enforced: ")
    for limit in LIMIT_NAMES:
        assert f" {limit} (" in enforced
    assert missing == "none"


def test_docker_sandbox_without_engine_warns(rlm_cli, monkeypatch, tmp_path: Path) -> None:
    from rlmrt.sandbox import docker as docker_sandbox

    monkeypatch.setattr(docker_sandbox, "_client", None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    row = checks(rlm_cli, 0)["docker sandbox"]
    assert row["level"] == "warn"
    assert row["detail"].startswith("not available: SandboxError: cannot reach the Docker engine")
    assert row["detail"].endswith("run `rlm setup docker` (as root)")


def test_docker_sandbox_without_image_warns(rlm_cli, monkeypatch) -> None:
    monkeypatch.setenv("RLMRT_DOCKER_IMAGE", "rlmrt-sandbox:not-built")
    row = checks(rlm_cli, 0)["docker sandbox"]
    assert row["level"] == "warn"
    assert "image rlmrt-sandbox:not-built missing; run `rlm setup docker`" in row["detail"]


def test_the_sandbox_in_use_says_whether_its_limits_hold(rlm_cli, monkeypatch) -> None:
    row = checks(rlm_cli, 0)["sandbox in use"]
    enforced = {q.name for q in ProcessSandbox.quota_report() if q.enforced}
    if set(LIMIT_NAMES) <= enforced:  # bubblewrap and a writable pids cgroup
        assert row == {
            "name": "sandbox in use",
            "level": "ok",
            "detail": "process: every configured limit is enforced",
        }
    monkeypatch.setenv("RLM_SANDBOX__KIND", "local")
    row = checks(rlm_cli, 0)["sandbox in use"]
    assert row["level"] == "warn"
    assert row["detail"].startswith("local: not enforced here: exec_timeout_s, memory_mb, cpu_s")
    assert "best-effort" in row["detail"]
