"""This machine's one-node Kubernetes cluster (scripts/kube-cluster) for the suites
parametrized on the "kubernetes" kind: started by a session fixture when a test needs it,
stopped by the script at the end when the session started it. Its ports are fixed, so
there is one cluster per machine: tests that start their own (test_kube_cluster) suspend
this one first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kube-cluster"
BIN = Path(os.environ.get("RLMRT_KUBE_CACHE", "/var/cache/rlmrt/kubernetes")) / "bin"
STATE = Path(os.environ.get("RLMRT_KUBE_STATE", "/tmp/rlmrt-kube"))


def cluster_missing() -> str | None:
    """Why no cluster can run here (None: one can)."""
    if os.geteuid() != 0:
        return "the kubelet needs root"
    if not (BIN / "kubelet").exists():
        return f"no kubelet in {BIN}: run scripts/setup-kubernetes"
    return None


class KubeCluster:
    """The cluster in `STATE`: `options` starts it (or skips the test) when it is not up."""

    def __init__(self) -> None:
        self.started_here = False
        self.up = False
        self.kubeconfig = STATE / "admin.kubeconfig"

    def script(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "RLMRT_KUBE_STATE": str(STATE)}
        return subprocess.run(
            ["nice", "bash", str(SCRIPT), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def ensure(self) -> None:
        missing = cluster_missing()
        if missing is not None:
            pytest.skip(f"no Kubernetes cluster here: {missing}")
        if self.up:
            return
        if self.script("status").returncode != 0:
            started = self.script("start")
            if started.returncode != 0:
                output = (started.stdout + started.stderr)[-800:]
                pytest.skip(f"the cluster did not start: {output}")
            self.started_here = True
        self.up = True

    def options(self) -> dict[str, Any]:
        """What `Sandbox("kubernetes", ...)` needs to use this cluster."""
        self.ensure()
        return {"kubeconfig": str(self.kubeconfig)}

    def suspend(self) -> bool:
        """Stop the cluster if this session started it (a test needs the ports); whether
        the ports are free now."""
        if self.up and self.started_here:
            self.script("stop")
            self.up = self.started_here = False
        return not self.up and self.script("status").returncode != 0

    def stop_if_started_here(self) -> None:
        if self.started_here:
            self.script("stop")
            self.up = self.started_here = False
