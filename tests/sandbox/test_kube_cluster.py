"""scripts/kube-cluster: a real one-node Kubernetes cluster on this machine (issue 18).

The groundwork of the kubernetes sandbox: the cluster starts from the binaries that
scripts/setup-kubernetes builds, a pod of the docker sandbox image reaches Running without
any image pull and without network, start is idempotent, and stop leaves no daemon, pod
container or kubelet mount behind. Skips only where those binaries are not built (a
half-hour build) or without root; the daemons' ports are fixed, so one run at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_helpers import KubeCluster

from rlmrt.sandbox.docker import DEFAULT_IMAGE, docker_client

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kube-cluster"
BIN = Path(os.environ.get("RLMRT_KUBE_CACHE", "/var/cache/rlmrt/kubernetes")) / "bin"
DAEMONS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")

pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="the kubelet needs root"),
    pytest.mark.skipif(
        not (BIN / "kubelet").exists(), reason=f"no kubelet in {BIN}: run scripts/setup-kubernetes"
    ),
]


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie waits for init, its parent now)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


class Cluster:
    """The script and kubectl, both pointed at one state folder."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {**os.environ, "RLMRT_KUBE_STATE": str(state)}

    def script(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), command], env=self.env, capture_output=True, text=True
        )

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "kubectl"), "--kubeconfig", str(self.state / "admin.kubeconfig"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, kube_cluster: KubeCluster
) -> Iterator[Cluster]:
    if not kube_cluster.suspend():  # the ports are fixed: one cluster per machine
        pytest.skip("a cluster this session did not start already runs on this machine")
    made = Cluster(tmp_path_factory.mktemp("kube") / "state")
    started = made.script("start")
    assert started.returncode == 0, started.stdout + started.stderr
    yield made
    made.script("stop")


def test_a_pod_of_the_sandbox_image_runs_with_no_network(cluster: Cluster) -> None:
    run = cluster.kubectl(
        "run", "probe", "--image", DEFAULT_IMAGE, "--image-pull-policy", "Never",
        "--restart", "Never", "--command", "--", "sleep", "infinity",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    ready = cluster.kubectl("wait", "--for", "condition=Ready", "pod/probe", "--timeout", "90s")
    assert ready.returncode == 0, ready.stderr + cluster.kubectl("describe", "pod/probe").stdout
    ip = cluster.kubectl("get", "pod/probe", "-o", "jsonpath={.status.podIP}").stdout
    assert ip.startswith("10.89.")  # kube-cni-isolated's range: an address, no link anywhere
    probe = (
        "import socket, sys\n"
        "print(sys.stdin.read().upper())\n"
        "print(open('/proc/net/route').read().splitlines()[1:])\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 80), timeout=3)\n"
        "except OSError as e:\n"
        "    print(type(e).__name__, e.errno)\n"
    )
    inside = cluster.kubectl("exec", "-i", "probe", "--", "python3", "-c", probe, stdin="hi")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.split("\n")[:3] == ["HI", "[]", "OSError 101"]  # ENETUNREACH


def test_a_pod_hardened_as_the_docker_sandbox_runs(cluster: Cluster) -> None:
    """The docker sandbox's hardening as a pod spec; Guaranteed QoS, whose -997 OOM score
    adjustment setup-kubernetes' dockershim patch leaves out (no CAP_SYS_RESOURCE here)."""
    limits = {"memory": "128Mi", "cpu": "500m"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hardened"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsUser": 65534, "runAsGroup": 65534, "runAsNonRoot": True},
            "containers": [
                {
                    "name": "kernel",
                    "image": DEFAULT_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "infinity"],
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"limits": limits, "requests": limits},
                    "volumeMounts": [
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "code", "mountPath": "/rlmrt", "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                {"name": "code", "hostPath": {"path": str(REPO / "src" / "rlmrt" / "sandbox")}},
            ],
        },
    }
    applied = cluster.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    assert applied.returncode == 0, applied.stderr
    ready = cluster.kubectl("wait", "--for", "condition=Ready", "pod/hardened", "--timeout", "90s")
    assert ready.returncode == 0, ready.stderr + cluster.kubectl("describe", "pod/hardened").stdout
    qos = cluster.kubectl("get", "pod/hardened", "-o", "jsonpath={.status.qosClass}").stdout
    assert qos == "Guaranteed"
    probe = (
        "import os\n"
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "print(os.getuid(), status['CapEff'].strip(), status['NoNewPrivs'].strip())\n"
        "print(os.path.exists('/rlmrt/__init__.py'))\n"
        "open('/tmp/f', 'w').write('x')\n"
        "try:\n"
        "    open('/f', 'w')\n"
        "except OSError as e:\n"
        "    print(e.strerror)\n"
    )
    inside = cluster.kubectl("exec", "hardened", "--", "python3", "-c", probe)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.splitlines() == [
        "65534 0000000000000000 1",
        "True",
        "Read-only file system",
    ]


def test_start_again_changes_nothing_and_status_says_so(cluster: Cluster) -> None:
    pids = {d: (cluster.state / "pids" / f"{d}.pid").read_text() for d in DAEMONS}
    again = cluster.script("start")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already runs") == len(DAEMONS)
    assert pids == {d: (cluster.state / "pids" / f"{d}.pid").read_text() for d in DAEMONS}
    status = cluster.script("status")
    assert status.returncode == 0
    assert "node 127.0.0.1: Ready=True" in status.stdout


def test_stop_leaves_nothing_behind(cluster: Cluster) -> None:
    pids = [int((cluster.state / "pids" / f"{d}.pid").read_text()) for d in DAEMONS]
    stopped = cluster.script("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not [pid for pid in pids if alive(pid)]
    assert cluster.script("status").returncode == 1
    pods = docker_client().containers.list(all=True, filters={"label": "io.kubernetes.docker.type"})
    assert pods == []
    mounts = Path("/proc/self/mounts").read_text()
    assert str(cluster.state) not in mounts
    uids = {d.name for d in (cluster.state / "kubelet" / "pods").iterdir()}
    assert len(uids) == 2  # probe's and hardened's
    assert not [d for d in Path("/var/log/pods").iterdir() if d.name.rsplit("_", 1)[1] in uids]
    assert not [link for link in Path("/var/log/containers").iterdir() if not link.exists()]
    assert cluster.script("stop").returncode == 0  # stopping a stopped cluster is fine
