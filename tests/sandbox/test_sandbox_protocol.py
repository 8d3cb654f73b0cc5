"""The sandbox protocol itself: limits, the registry, the facade's lifecycle."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rlmrt import Limits, Sandbox
from rlmrt.errors import ConfigError, SandboxClosedError
from rlmrt.sandbox import SANDBOXES, create_backend
from rlmrt.sandbox.base import LIMIT_NAMES, Diagnosis, QuotaStatus
from rlmrt.sandbox.facade import diagnose


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exec_timeout_s": 0}, "exec_timeout_s\n  Input should be greater than 0"),
        ({"memory_mb": -1}, "memory_mb\n  Input should be greater than 0"),
        ({"output_bytes": 0}, "output_bytes\n  Input should be greater than 0"),
    ],
)
def test_limits_reject_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Limits(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=f"invalid sandbox limits: {message.split()[0]}: Input"):
        Sandbox("local", **kwargs)


def test_registry_suggests_a_close_name() -> None:
    assert SANDBOXES.names() == ["docker", "kubernetes", "local", "process", "remote", "wasm"]
    with pytest.raises(ConfigError, match=r"unknown sandbox 'locl'.*Did you mean 'local'"):
        create_backend("locl")
    with pytest.raises(
        ConfigError,
        match=r"unknown sandbox 'qqq'; choose one of: docker, kubernetes, local, process,"
        r" remote, wasm\.$",
    ):
        create_backend("qqq")


def test_facade_merges_limits_and_refuses_use_after_close() -> None:
    sandbox = Sandbox("local", limits=Limits(exec_timeout_s=9, memory_mb=100), memory_mb=200)
    assert (sandbox.limits.exec_timeout_s, sandbox.limits.memory_mb) == (9, 200)
    sandbox.set_variable("n", 41)
    assert sandbox.execute("n + 1").display == "42"
    assert sandbox.get_variable("n") == 41
    assert sandbox.list_variables() == {"n": "int"}
    sandbox.close()
    sandbox.close()
    with pytest.raises(SandboxClosedError, match="the local sandbox is closed"):
        sandbox.execute("1")


def test_limits_a_backend_cannot_enforce_are_reported() -> None:
    from rlmrt.sandbox.local import LocalSandbox

    backend = LocalSandbox(limits=Limits(cpu_s=2, processes=4, file_bytes=10))
    # local's time and memory checks are best-effort: reported, never claimed
    assert backend.unenforced_limits() == ["exec_timeout_s", "memory_mb", "cpu_s"]
    unset = Limits(exec_timeout_s=None, memory_mb=None, cpu_s=None, processes=None)
    assert unset.set_names() == ["output_bytes", "file_bytes"]
    with pytest.raises(ValidationError, match="processes\n  Input should be greater than 0"):
        Limits(processes=0)


@pytest.mark.parametrize("kind", SANDBOXES.names())
def test_every_kind_reports_every_limit_in_one_shape(kind: str) -> None:
    backend = SANDBOXES.load(kind)
    report = backend.quota_report()
    assert all(isinstance(q, QuotaStatus) and q.how for q in report)
    limits = [q.name for q in report if q.name in LIMIT_NAMES]
    assert sorted(limits) == sorted(LIMIT_NAMES)  # each limit once, enforced or not
    found = diagnose(kind)
    assert isinstance(found, Diagnosis) and found.status in ("ok", "warn", "fail")
    if found.quotas:
        assert list(found.quotas) == report
        assert found.describe().startswith(f"{found.detail}; enforced: ")


def test_a_backend_enforces_what_its_report_says() -> None:
    from rlmrt.sandbox.local import LocalSandbox

    report = {q.name: q.enforced for q in LocalSandbox.quota_report()}
    assert LocalSandbox().enforces == {name for name, enforced in report.items() if enforced}
