"""The kubernetes sandbox kind (issue 18) on this machine's one-node cluster.

What the contract suite does not show: the pod is hardened as the docker sandbox's
container and holds the quotas as resource limits, nothing of the node's file system is
in it (the kernel and the contexts come over the channel, processes are bounded without
this machine's cgroups), no pod outlives its sandbox, orphan pods are swept, and each
way of not getting a pod (no kubeconfig, no API server, a pod the node cannot hold, an
image the node does not have) is a `SandboxError` naming it. A whole run at depth 2
with batched sub-calls runs its sandboxes as pods.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import contract_probes as probes
import pytest
from kube_helpers import KubeCluster
from remote_helpers import DEPTH_TWO_ANSWER, depth_two_model, free_port

from rlmrt import RLM
from rlmrt.errors import SandboxError
from rlmrt.events import CodeExecuted, Event, RunStarted
from rlmrt.sandbox import Limits, Sandbox, kube
from rlmrt.sandbox import _kube_pod as pods
from rlmrt.sandbox.docker import DEFAULT_IMAGE
from rlmrt.sandbox.facade import diagnose
from rlmrt.sandbox.kube import KubeApi, KubernetesSandbox, kube_api, sweep_orphans
from rlmrt.sandbox.pool import SandboxPool
from rlmrt.testing import ScriptedOpenAIServer

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(300)]
NAMESPACE = "default"


@pytest.fixture
def kubeconfig(kube_cluster: KubeCluster) -> str:
    return str(kube_cluster.options()["kubeconfig"])


@pytest.fixture
def api(kubeconfig: str) -> KubeApi:
    return kube_api(kubeconfig)


def own_pods(api: KubeApi) -> list[Any]:
    """The sandbox pods this test process made that still exist."""
    selector = f"{pods.SELECTOR},{pods.PID_LABEL}={os.getpid()}"
    return list(api.core.list_namespaced_pod(NAMESPACE, label_selector=selector).items)


def backend_of(sandbox: Sandbox) -> KubernetesSandbox:
    backend = sandbox._backend
    assert isinstance(backend, KubernetesSandbox)
    return backend


def backend_pod_uid(api: KubeApi, name: str) -> int:
    """The uid the pod `name` runs as."""
    context = api.core.read_namespaced_pod(name, NAMESPACE).spec.security_context
    assert context.run_as_user == context.run_as_group
    return int(context.run_as_user)


def test_each_pod_runs_as_a_uid_of_its_own(api: KubeApi, kubeconfig: str) -> None:
    """RLIMIT_NPROC counts every process of a uid on the node: pods sharing one would
    count each other's processes (and a busy node's could keep a kernel from starting)."""
    with (
        Sandbox("kubernetes", kubeconfig=kubeconfig) as first,
        Sandbox("kubernetes", kubeconfig=kubeconfig) as second,
    ):
        uids = {backend_pod_uid(api, backend_of(sb).pod_name) for sb in (first, second)}
        assert len(uids) == 2
        for sb in (first, second):
            seen = sb.execute("import os; print(os.getuid())").stdout.strip()
            assert seen == str(backend_pod_uid(api, backend_of(sb).pod_name))


def test_the_pod_is_hardened_holds_the_quotas_and_is_gone_after_close(
    api: KubeApi, kubeconfig: str
) -> None:
    probe = (
        "import os, socket\n"
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "print(os.getuid(), os.getgid(), status['CapEff'].strip(), status['NoNewPrivs'].strip())\n"
        "print(os.path.exists('/var/run/secrets/kubernetes.io'))\n"
        "print(sorted(k for k in os.environ if 'KUBERNETES' in k or 'SERVICE' in k))\n"
        "for target in ('/f', '/rlmrt/f'):\n"
        "    try:\n"
        "        open(target, 'w')\n"
        "    except OSError as e:\n"
        "        print(e.strerror)\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 80), timeout=3)\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
    )
    with Sandbox("kubernetes", kubeconfig=kubeconfig, memory_mb=300, file_bytes=8 << 20) as sb:
        name = backend_of(sb).pod_name
        result = sb.execute(probe)
        assert result.ok, result.error
        lines = result.stdout.splitlines()
        uid = backend_pod_uid(api, name)
        assert uid >= pods.POD_UID_BASE  # a uid no account and no other pod uses
        assert lines == [
            f"{uid} {uid} 0000000000000000 1",
            "False",  # no service-account token mounted
            "[]",  # no service links
            "Read-only file system",
            "Read-only file system",
            "101",  # ENETUNREACH: no route out of the pod
        ]
        pod = api.core.read_namespaced_pod(name, NAMESPACE)
        spec = pod.spec
        container = spec.containers[0]
        assert spec.automount_service_account_token is False
        assert not spec.host_network and not spec.host_pid and not spec.host_ipc
        assert spec.security_context.run_as_non_root is True
        assert container.security_context.read_only_root_filesystem is True
        assert container.security_context.allow_privilege_escalation is False
        assert container.security_context.capabilities.drop == ["ALL"]
        assert container.image_pull_policy == "Never" and container.image == DEFAULT_IMAGE
        assert container.resources.limits == {"cpu": "1", "memory": "396Mi"}
        assert container.resources.requests["memory"] == "396Mi"  # a node that has it
        tmp = next(v for v in spec.volumes if v.name == "tmp").empty_dir
        assert (tmp.medium, tmp.size_limit) == ("Memory", "16Mi")
        assert pod.metadata.labels[pods.HOST_LABEL] == pods.host_label()
        policy = api.networking.read_namespaced_network_policy(pods.POLICY_NAME, NAMESPACE)
        assert policy.spec.policy_types == ["Ingress", "Egress"]
        assert not policy.spec.egress and not policy.spec.ingress
    assert own_pods(api) == []


def test_a_killed_kernel_comes_back_in_a_new_pod_with_its_context(
    api: KubeApi, kubeconfig: str
) -> None:
    with Sandbox("kubernetes", kubeconfig=kubeconfig, exec_timeout_s=2) as sb:
        sb.load_context("the context")
        first = backend_of(sb).pod_name
        ignore_alarm = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        stuck = sb.execute(ignore_alarm + "while 1: pass")
        assert "the sandbox was restarted" in str(stuck.error)
        assert sb.execute("print(context)").stdout == "the context\n"
        assert backend_of(sb).pod_name not in (None, first)
        assert [p.metadata.name for p in own_pods(api)] == [backend_of(sb).pod_name]
    assert own_pods(api) == []


def test_the_pod_has_no_volume_of_the_node_only_memory_emptydirs(
    api: KubeApi, kubeconfig: str
) -> None:
    with Sandbox("kubernetes", kubeconfig=kubeconfig) as sb:
        pod = api.core.read_namespaced_pod(backend_of(sb).pod_name, NAMESPACE)
        assert sb.execute("print(2 + 2)").stdout == "4\n"  # the kernel came over stdin
    volumes = pod.spec.volumes
    assert [v.name for v in volumes] == ["tmp", "home"]
    for volume in volumes:
        assert volume.empty_dir is not None and volume.empty_dir.medium == "Memory"
        assert volume.host_path is None
    mounts = pod.spec.containers[0].volume_mounts
    assert sorted(m.mount_path for m in mounts) == ["/home/sandbox", "/tmp"]


def test_contexts_travel_over_the_channel_and_come_back_after_a_restart(
    kubeconfig: str,
) -> None:
    large = bytes(range(256)) * (40 << 12)  # 40 MiB: over the kubelet's 32 MiB message cap
    contexts: dict[str, Any] = {
        "context": "text \udcff with an undecodable byte, as a file's surrogateescape",
        "context_1": large,
        "context_2": {"rows": [1, 2.5, None, True], "blob": b"\x00\xff", "nested": ("a",)},
    }
    check = (
        "import hashlib\n"
        "print(repr(context))\n"
        "print(len(context_1), hashlib.sha256(context_1).hexdigest())\n"
        "print(repr(context_2))\n"
    )
    expected = (
        f"{contexts['context']!r}\n"
        f"{len(large)} {hashlib.sha256(large).hexdigest()}\n"
        "{'rows': [1, 2.5, None, True], 'blob': b'\\x00\\xff', 'nested': ['a']}\n"
    )
    with Sandbox("kubernetes", kubeconfig=kubeconfig, exec_timeout_s=2) as sb:
        for name, value in contexts.items():
            sb.load_context(value, name=name)
        assert backend_of(sb).contexts_in_messages
        result = sb.execute(check)
        assert result.stdout == expected, result.error
        first = backend_of(sb).pod_name
        ignore_alarm = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        assert "the sandbox was restarted" in str(sb.execute(ignore_alarm + "while 1: pass").error)
        result = sb.execute(check)  # a new pod: every context was sent to it again
        assert result.stdout == expected, result.error
        assert backend_of(sb).pod_name not in (None, first)


def test_processes_are_bounded_without_this_machine_s_cgroup(
    kubeconfig: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a node that is not this machine: the pod's pids cgroup is not written (it
    stays "max"), and RLIMIT_NPROC in the kernel holds the limit alone."""
    find_cgroup = kube._pod_pids_cgroup
    found: list[Path] = []

    def not_here(uid: str) -> None:
        folder = find_cgroup(uid)
        if folder is not None:
            found.append(folder)

    monkeypatch.setattr(kube, "_pod_pids_cgroup", not_here)
    processes = 16
    with Sandbox("kubernetes", kubeconfig=kubeconfig, processes=processes, exec_timeout_s=5) as sb:
        result = sb.execute(probes.FORK)
        if found:  # the node is this machine: its cgroup was left unbounded
            assert (found[0] / "pids.max").read_text().strip() == "max"
        assert "refused: BlockingIOError" in result.stdout, result.stdout
        forked = int(result.stdout.rsplit("forked ", 1)[1])
        assert 0 < forked <= processes, result.stdout
        assert sb.execute("print(1)").stdout == "1\n"


def test_a_pod_the_node_cannot_hold_is_an_error_and_is_deleted(
    api: KubeApi, kubeconfig: str
) -> None:
    started = time.monotonic()
    with pytest.raises(SandboxError, match=r"cannot be scheduled: .*Insufficient memory"):
        Sandbox("kubernetes", kubeconfig=kubeconfig, memory_mb=1_000_000)
    assert time.monotonic() - started < 30
    assert own_pods(api) == []


def test_an_image_the_node_lacks_is_an_error_naming_it(api: KubeApi, kubeconfig: str) -> None:
    with pytest.raises(SandboxError, match=r"its container cannot start: Err"):
        Sandbox("kubernetes", kubeconfig=kubeconfig, image="rlmrt-no-such-image:0")
    assert own_pods(api) == []


def test_a_missing_kubeconfig_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.kubeconfig"
    with pytest.raises(SandboxError, match=f"no kubeconfig: {missing} does not exist"):
        Sandbox("kubernetes", kubeconfig=missing)


def test_an_unreachable_api_server_is_named(tmp_path: Path) -> None:
    port = free_port()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    with pytest.raises(
        SandboxError, match=f"cannot reach the Kubernetes API server https://127.0.0.1:{port}"
    ):
        Sandbox("kubernetes", kubeconfig=path)


def test_diagnose_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kubeconfig: str
) -> None:
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    found = diagnose("kubernetes")
    assert found.status == "ok", found.detail
    assert "nodes ready: 127.0.0.1" in found.detail
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    found = diagnose("kubernetes")
    assert found.status == "warn"
    assert f"no kubeconfig: {tmp_path / 'none'} does not exist" in found.detail


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_orphan_pods_are_swept_and_live_ones_kept(
    api: KubeApi, kubeconfig: str, dead_pid: int
) -> None:
    now = int(time.time())

    def bare_pod(host: str, pid: int, created: int) -> str:
        manifest: Any = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": "rlmrt-sandbox-",
                "labels": {
                    pods.LABEL: "1",
                    pods.HOST_LABEL: host,
                    pods.PID_LABEL: str(pid),
                    pods.CREATED_LABEL: str(created),
                },
            },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {"runAsUser": 65534, "runAsNonRoot": True},
                "containers": [
                    {
                        "name": "kernel",
                        "image": DEFAULT_IMAGE,
                        "imagePullPolicy": "Never",
                        "command": ["sleep", "600"],
                    }
                ],
            },
        }
        return str(api.core.create_namespaced_pod(NAMESPACE, manifest).metadata.name)

    orphan = bare_pod(pods.host_label(), dead_pid, now)  # its host process is gone
    stale = bare_pod("elsewhere", 1, now - int(pods.MAX_AGE_S) - 60)  # too old, any host
    young = bare_pod("elsewhere", 1, now)  # another host's: cannot be checked from here
    with Sandbox("kubernetes", kubeconfig=kubeconfig) as sb:
        live = backend_of(sb).pod_name
        removed = sweep_orphans(api, NAMESPACE)
        assert sb.execute("print(1)").stdout == "1\n"
    try:
        assert sorted(removed) == sorted([orphan, stale])
        names = {p.metadata.name for p in api.core.list_namespaced_pod(NAMESPACE).items}
        assert young in names and orphan not in names and live not in names
    finally:
        api.core.delete_namespaced_pod(young, NAMESPACE, grace_period_seconds=0)


API_KEY = "sk-kube-canary-5b7e1d"


def test_a_depth_two_run_with_batched_calls_runs_in_pods(
    api: KubeApi, kubeconfig: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)  # the setting names the cluster

    handler = depth_two_model(
        "import os, socket\nprint(sorted(os.environ), socket.gethostname())\n"
    )
    events: list[Event] = []
    with ScriptedOpenAIServer(handler) as server:
        rlm = RLM(
            model="openai/test-model",
            api_base=server.url,
            api_key=API_KEY,
            max_retries=0,
            max_depth=2,
            sandbox="kubernetes",
            kube_config=kubeconfig,
            sandbox_pool=1,
            trajectory_dir=tmp_path / "runs",
        )
        rlm.subscribe(events.append)
        try:
            result = rlm.completion("top", context="ctx")
            during = own_pods(api)
        finally:
            rlm.close()

    assert result.answer == DEPTH_TWO_ANSWER
    runs = [e for e in events if isinstance(e, RunStarted)]
    assert sorted(e.depth for e in runs) == [0, 1, 1, 2, 2]
    assert {e.sandbox for e in runs} == {"kubernetes"}
    assert during  # the pool's ready pod at least
    assert own_pods(api) == []  # closing the RLM deleted every pod, pooled ones too
    assert all(r.headers.get("authorization") == f"Bearer {API_KEY}" for r in server.requests)
    first = next(e for e in events if isinstance(e, CodeExecuted) and "os.environ" in e.code)
    names, host = first.stdout.split("\n")[0].rsplit(" ", 1)
    assert host == "sandbox"  # the pod's hostname
    assert not any("KEY" in name for name in ast.literal_eval(names))


async def test_the_pool_keeps_ready_pods_and_deletes_them_on_close(
    api: KubeApi, kubeconfig: str
) -> None:
    options = {"kubeconfig": kubeconfig}
    pool = SandboxPool(2)
    try:
        assert await pool.warm("kubernetes", Limits(), options) == 2
        ready = {p.metadata.name for p in own_pods(api)}
        assert len(ready) == 2
        taken = await pool.acquire("kubernetes", Limits(), None, options)
        assert taken.from_pool and isinstance(taken, KubernetesSandbox)
        assert taken.pod_name in ready
        assert (await taken.execute("print(2 + 2)")).stdout == "4\n"
        await taken.aclose()
    finally:
        await pool.aclose()
    assert own_pods(api) == []
