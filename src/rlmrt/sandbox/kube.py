"""`KubernetesSandbox`: the kernel in a pod that lives as long as the sandbox.

```python
Sandbox("kubernetes", namespace="default", kubeconfig="/tmp/rlmrt-kube/admin.kubeconfig")
```

One pod per kernel, made through the official `kubernetes` client (extra
``rlmrt[kubernetes]``), hardened as the docker sandbox's container (`_kube_pod`): a
non-root uid of the pod's own, read-only root, no capabilities, no privilege
escalation, no service-account token, the quotas as resource limits, a NetworkPolicy
that denies all traffic to the sandbox pods (created once per namespace; enforced only
by network plugins that enforce policies: this machine's cluster gives pods no route at
all instead).

Nothing depends on the node being this machine: the pod runs the image (`kube_image`,
which the nodes must be able to get), the kernel's source and the contexts travel over
the channel, and processes are bounded by RLIMIT_NPROC in the kernel. Where the pod's
pids cgroup happens to be on this machine (the node is this machine), its ``pids.max``
is written too (RLIMIT_NPROC is per uid and node; each pod has a uid of its own).

The kernel channel is the pod's **attach** stream over the API server's WebSocket
(``v4.channel.k8s.io``: one channel byte, then data; stdin is channel 0, stdout 1,
stderr 2), carried by `websockets` on this process's event loop; the kernel protocol's
frames travel on it unchanged. Attach rather than exec (measured in docs/kubernetes.md):
the kernel is the container's main process, so the pod's status says how it ended
(exit code, ``OOMKilled``), and the pod ends with it; a kernel whose host goes away reads
EOF (``stdinOnce``) and exits. Neither stream can half-close stdin on 1.20; the protocol
frames its own messages, so it needs no half-close.

Killing a kernel (a limit, or close) deletes its pod with no grace period; the next
kernel is a new pod. Pods are labelled with their host and host pid and their creation
time, and the first sandbox of a process deletes the orphans of its namespace
(`_kube_pod.is_orphan`). A pod that cannot be scheduled, or whose container cannot start
(a missing image), is an error naming why within `START_TIMEOUT_S`, and is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from rlmrt.errors import MissingDependencyError, SandboxError
from rlmrt.sandbox import _kube_pod
from rlmrt.sandbox._channel import KernelChannel
from rlmrt.sandbox._container import ContainerKernelBackend, tmpfs_mb
from rlmrt.sandbox._kernel_backend import kernel_source
from rlmrt.sandbox._remote_wire import MAX_MESSAGE, WebSocketWriter
from rlmrt.sandbox.base import Diagnosis, HostBridge, Limits, QuotaStatus
from rlmrt.sandbox.docker import DEFAULT_IMAGE
from rlmrt.sandbox.kernel import exception_line

if TYPE_CHECKING:
    from kubernetes.client import Configuration, CoreV1Api, NetworkingV1Api
    from websockets.asyncio.client import ClientConnection

__all__ = ["DEFAULT_NAMESPACE", "KubeApi", "KubernetesSandbox", "kube_api"]

log = logging.getLogger("rlmrt")

DEFAULT_NAMESPACE = "default"
#: how long a pod may take from creation to a running kernel container
START_TIMEOUT_S = 60.0
#: the largest WebSocket message sent to the API server: the kubelet's WebSocket reader
#: refuses messages over 32 MiB (golang.org/x/net/websocket's default), so a large
#: context goes in pieces (the kernel reads a byte stream; the pieces need not be frames)
_MAX_STDIN_MESSAGE = 1 << 20
#: the kernel's own tasks of the pod's uid under RLIMIT_NPROC: its main thread, the thread
#: watching for its host, and the pod's pause process (the pod's uid too)
_KERNEL_TASKS = 3
_POLL_S = 0.05
_API_TIMEOUT_S = 10.0
_STDIN, _STDOUT, _STDERR, _ERROR = 0, 1, 2, 3
#: container states that will not become Running by waiting
_FATAL_WAITING = {
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


@dataclass(frozen=True)
class KubeApi:
    """The clients of one kubeconfig context."""

    configuration: Configuration
    core: CoreV1Api
    networking: NetworkingV1Api
    source: str  # the kubeconfig it came from, for messages

    @property
    def server(self) -> str:
        return str(self.configuration.host)


_apis: dict[tuple[str, str | None], KubeApi] = {}
_prepared: set[tuple[str, str]] = set()  # (server, namespace) swept and given the policy


def kubeconfig_path(kubeconfig: str | Path | None) -> Path:
    """The kubeconfig to use: the one given, else the first of $KUBECONFIG, else
    ~/.kube/config."""
    if kubeconfig:
        return Path(kubeconfig).expanduser()
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(listed[0]).expanduser() if listed else Path.home() / ".kube" / "config"


def kube_api(kubeconfig: str | Path | None = None, context: str | None = None) -> KubeApi:
    """The clients for `kubeconfig`'s `context` (its current one when None), made once."""
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise MissingDependencyError("kubernetes", "kubernetes") from exc
    path = kubeconfig_path(kubeconfig)
    key = (str(path), context)
    if key in _apis:
        return _apis[key]
    if not path.is_file():
        raise SandboxError(
            f"the kubernetes sandbox has no kubeconfig: {path} does not exist (set"
            " sandbox.kube_config or $KUBECONFIG to your cluster's kubeconfig file)"
        )
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, client_configuration=configuration
        )
    except Exception as exc:  # the loader raises several kinds; each says why
        raise SandboxError(f"the kubeconfig {path} cannot be used: {exception_line(exc)}") from exc
    api_client = client.ApiClient(configuration)
    api = KubeApi(
        configuration, client.CoreV1Api(api_client), client.NetworkingV1Api(api_client), str(path)
    )
    _apis[key] = api
    return api


class KubernetesSandbox(ContainerKernelBackend):
    """Runs code in a kernel inside a hardened pod (see the module docstring)."""

    kind = "kubernetes"
    slow_start = True
    restart_in_background = True  # a pod takes seconds to start
    contexts_in_messages = True  # the node may be another machine

    @classmethod
    def quota_report(cls) -> list[QuotaStatus]:
        return [
            QuotaStatus("exec_timeout_s", True, "SIGALRM in the kernel; the pod deleted 1 s later"),
            QuotaStatus(
                "cpu_s",
                True,
                "ITIMER_PROF and RLIMIT_CPU in the kernel (the host cannot see the pod's"
                " processes; the pod's CPU limit is one core)",
            ),
            QuotaStatus("memory_mb", True, "RLIMIT_AS + the pod's memory limit"),
            QuotaStatus(
                "processes",
                True,
                "RLIMIT_NPROC in the kernel (the pod's own uid); the pod's pids cgroup too"
                " when the node is this machine (1.20 has no per-pod field)",
            ),
            QuotaStatus("file_bytes", True, "RLIMIT_FSIZE, emptyDir size limits"),
            QuotaStatus("output_bytes", True, "cut in the kernel; frames capped on the host"),
        ]

    @classmethod
    def diagnose(cls) -> Diagnosis:
        """Whether the client, a kubeconfig, a reachable API server and a node are there."""
        fix = "pip install 'rlmrt[kubernetes]' and point $KUBECONFIG at a cluster"
        try:
            import websockets  # noqa: F401

            api = kube_api()
            nodes = api.core.list_node(_request_timeout=_API_TIMEOUT_S).items
        except MissingDependencyError as exc:
            return Diagnosis(status="warn", detail=f"not available: {exc}")
        except ImportError as exc:
            return Diagnosis(status="warn", detail=f"not available: {exc}; {fix}")
        except Exception as exc:  # noqa: BLE001 - what is missing is the diagnosis
            return Diagnosis(status="warn", detail=f"not available: {exception_line(exc)}")
        ready = [str(_name(n)) for n in nodes if _node_ready(n)]
        if not ready:
            detail = f"API server {api.server} reachable, but no node is Ready"
            return Diagnosis(status="warn", detail=detail)
        detail = (
            f"API server {api.server} ({api.source}), nodes ready: {', '.join(ready)};"
            " each pod a uid of its own, read-only root, no capabilities, no service-account"
            " token"
        )
        return Diagnosis(status="ok", detail=detail, quotas=(*cls.quota_report(),))

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        bridge: HostBridge | None = None,
        namespace: str | None = None,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        image: str | None = None,
    ) -> None:
        super().__init__(limits=limits, bridge=bridge)
        self.namespace = namespace or DEFAULT_NAMESPACE
        self.kubeconfig = kubeconfig
        self.context = context
        self.image = image or DEFAULT_IMAGE
        #: our local image is only in the node's engine: never pull it
        self.pull_policy = "Never" if self.image == DEFAULT_IMAGE else "IfNotPresent"
        self.pod_name: str | None = None
        self._pod_uid: str | None = None
        self._api: KubeApi | None = None
        self._connection: ClientConnection | None = None
        self._demux_task: asyncio.Task[None] | None = None
        self._stderr = bytearray()
        self._oom = False

    # -- the pod --------------------------------------------------------------------------

    def _get_api(self) -> KubeApi:
        if self._api is None:
            self._api = kube_api(self.kubeconfig, self.context)
        return self._api

    def _kernel_config(self) -> dict[str, Any]:
        config = super()._kernel_config()
        if self.limits.processes:
            # per uid per node; the pod has a uid of its own: a per-pod bound on any node
            config["rlimits"]["RLIMIT_NPROC"] = self.limits.processes + _KERNEL_TASKS
        return config

    def _manifest(self) -> dict[str, Any]:
        return _kube_pod.pod_manifest(
            image=self.image,
            pull_policy=self.pull_policy,
            kernel_config=self._kernel_config(),
            memory_mb=self.limits.memory_mb,
            tmp_mb=tmpfs_mb(self.limits),
            uid=_kube_pod.pod_uid(),
        )

    def _create_pod(self) -> str:
        """Create the pod (blocking: run in a thread); its name."""
        api = self._get_api()
        _prepare_namespace(api, self.namespace)
        manifest: Any = self._manifest()  # the client takes the dict as is
        try:
            pod = api.core.create_namespaced_pod(
                self.namespace, manifest, _request_timeout=_API_TIMEOUT_S
            )
        except Exception as exc:  # reworded: what failed, on which server
            raise SandboxError(
                f"could not create the sandbox pod: {_api_problem(exc, api)}"
            ) from exc
        return _name(pod)

    async def _launch(self, folder: Path) -> KernelChannel:
        self._stderr.clear()
        self._oom = False
        creating = asyncio.ensure_future(asyncio.to_thread(self._create_pod))
        try:
            self.pod_name = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # the thread goes on: the pod it makes must not be left running
            with contextlib.suppress(Exception):
                self.pod_name = await creating
                await self._delete_pod()
            raise
        await self._wait_running()
        if self.limits.processes:
            self._cap_pod_pids(self.limits.processes)
        connection = await self._attach()
        self._connection = connection
        stdout = asyncio.StreamReader(limit=1 << 20)
        self._demux_task = asyncio.create_task(self._demux(connection, stdout))
        writer = WebSocketWriter(connection, prefix=bytes([_STDIN]), max_message=_MAX_STDIN_MESSAGE)
        # opens the gate, then the loader reads the kernel's source: the kernel starts
        writer.write(_kube_pod.stdin_preamble(kernel_source()))
        await writer.drain()
        return KernelChannel(stdout, writer, self.bridge, exit_status=self._exit_status)

    async def _wait_running(self) -> None:
        """Until the kernel's container runs; a `SandboxError` saying why when it cannot
        (unschedulable, a missing image) or does not within `START_TIMEOUT_S`."""
        api, name = self._get_api(), str(self.pod_name)
        deadline = time.monotonic() + START_TIMEOUT_S
        problem = "it did not start"
        while time.monotonic() < deadline:
            try:
                pod = await asyncio.to_thread(
                    api.core.read_namespaced_pod, name, self.namespace, _request_timeout=5
                )
            except Exception as exc:  # noqa: BLE001 - reworded below
                problem = f"reading it failed: {_api_problem(exc, api)}"
                break
            state = _pod_state(pod)
            if state == "running":
                self._pod_uid = _uid(pod)
                return
            if state is not None:
                problem = state
                break
            await asyncio.sleep(_POLL_S)
        else:
            problem = f"it was not running after {START_TIMEOUT_S:.0f} s"
        await self._delete_pod()
        raise SandboxError(f"the sandbox pod {name} in namespace {self.namespace}: {problem}")

    def _cap_pod_pids(self, processes: int) -> None:
        """Also hold `processes` with the pod's pids cgroup when it is on this machine
        (the node is this one), before the kernel starts: an exact bound for this pod,
        where RLIMIT_NPROC (set in the kernel, the bound on any node) counts every
        process of the uid on the node. Kubernetes 1.20 has no per-pod field (the
        kubelet's podPidsLimit is one value for every pod of a node). Elsewhere, or
        when the write fails, RLIMIT_NPROC alone holds the limit."""
        folder = _pod_pids_cgroup(str(self._pod_uid))
        if folder is None:
            return
        try:
            # the pod's tasks: the pause container's process, the kernel and its threads
            (folder / "pids.max").write_text(str(processes + _KERNEL_TASKS))
        except OSError as exc:
            log.debug("could not write %s/pids.max: %s", folder, exc)

    async def _attach(self) -> ClientConnection:
        from websockets.asyncio.client import connect

        api, name = self._get_api(), self.pod_name
        query = urlencode(
            {"container": "kernel", "stdin": "true", "stdout": "true", "stderr": "true"}
        )
        url = f"{api.server}/api/v1/namespaces/{self.namespace}/pods/{name}/attach?{query}"
        url = "ws" + url.removeprefix("http")
        try:
            return await connect(
                url,
                subprotocols=["v4.channel.k8s.io"],  # type: ignore[list-item]
                additional_headers=_auth_headers(api.configuration),
                ssl=_tls_context(api.configuration) if url.startswith("wss:") else None,
                max_size=MAX_MESSAGE,
                compression=None,
                open_timeout=_API_TIMEOUT_S,
                proxy=None,
            )
        except Exception as exc:
            await self._delete_pod()
            raise SandboxError(
                f"could not attach to the sandbox pod {name}: {exception_line(exc)}"
            ) from exc

    async def _demux(self, connection: ClientConnection, stdout: asyncio.StreamReader) -> None:
        """Stdout messages feed `stdout`; stderr and the error channel are kept for the
        exit status."""
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in connection:
                data = message if isinstance(message, bytes) else message.encode()
                if not data:
                    continue
                if data[0] == _STDOUT:
                    stdout.feed_data(data[1:])
                elif data[0] in (_STDERR, _ERROR):
                    self._stderr.extend(data[1:][-4000:])
                    del self._stderr[:-4000]
        except ConnectionClosed:
            pass
        finally:
            stdout.feed_eof()

    async def _exit_status(self) -> str:
        api, name = self._get_api(), self.pod_name
        if name is None:
            return "the pod is gone"
        try:
            pod = await asyncio.wait_for(
                asyncio.to_thread(api.core.read_namespaced_pod, name, self.namespace), 5
            )
        except Exception as exc:  # noqa: BLE001 - the status only words an error
            return f"the pod's state is unknown ({exception_line(exc)})"
        terminated = _kernel_terminated(pod)
        if terminated is None:
            status = "the kernel's pod is still running"
        else:
            self._oom = terminated.reason == "OOMKilled"
            status = f"the kernel's container exited with code {terminated.exit_code}"
            if self._oom:
                status += " (killed for memory)"
        tail = bytes(self._stderr[-500:]).decode("utf-8", "replace").strip()
        return f"{status} ({tail})" if tail else status

    async def _delete_pod(self) -> None:
        name, self.pod_name = self.pod_name, None
        if name is None or self._api is None:
            return
        api = self._api
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                api.core.delete_namespaced_pod,
                name,
                self.namespace,
                grace_period_seconds=0,
                _request_timeout=_API_TIMEOUT_S,
            )

    async def _terminate(self) -> None:
        task, self._demux_task = self._demux_task, None
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)
            connection.transport.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self.pod_name is not None and not self._oom:
            # the pod's status says whether memory ended it (read before it goes)
            with contextlib.suppress(Exception):
                pod = await asyncio.to_thread(
                    self._get_api().core.read_namespaced_pod, self.pod_name, self.namespace
                )
                terminated = _kernel_terminated(pod)
                self._oom = terminated is not None and terminated.reason == "OOMKilled"
        await self._delete_pod()

    def _oom_killed(self) -> bool:
        return self._oom


def _prepare_namespace(api: KubeApi, namespace: str) -> None:
    """Once per process and namespace: delete orphan sandbox pods, and create the
    NetworkPolicy denying the sandbox pods all traffic (where policies are allowed)."""
    key = (api.server, namespace)
    if key in _prepared:
        return
    _prepared.add(key)
    sweep_orphans(api, namespace)
    policy: Any = _kube_pod.deny_network_policy()
    try:
        api.networking.create_namespaced_network_policy(
            namespace, policy, _request_timeout=_API_TIMEOUT_S
        )
    except Exception as exc:  # noqa: BLE001 - best effort; the pod spec is the hardening
        if getattr(exc, "status", None) != 409:  # 409: it exists
            log.warning(
                "could not create the NetworkPolicy %s in namespace %s: %s",
                _kube_pod.POLICY_NAME,
                namespace,
                _api_problem(exc, api),
            )


def sweep_orphans(api: KubeApi, namespace: str) -> list[str]:
    """Delete the sandbox pods of `namespace` that are nobody's (`_kube_pod.is_orphan`);
    their names."""
    removed: list[str] = []
    with contextlib.suppress(Exception):
        pods = api.core.list_namespaced_pod(
            namespace, label_selector=_kube_pod.SELECTOR, _request_timeout=_API_TIMEOUT_S
        ).items
        now = time.time()
        for pod in pods:
            labels = dict((pod.metadata.labels if pod.metadata else None) or {})
            if _kube_pod.is_orphan(labels, pod.status.phase if pod.status else None, now):
                with contextlib.suppress(Exception):
                    api.core.delete_namespaced_pod(_name(pod), namespace, grace_period_seconds=0)
                    removed.append(_name(pod))
    return removed


def _pod_state(pod: Any) -> str | None:
    """ "running" when the kernel's container runs, a problem when it never will, None
    while it may still start."""
    status = pod.status
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
            return f"it cannot be scheduled: {condition.message}"
    if status.phase in {"Succeeded", "Failed"}:
        terminated = _kernel_terminated(pod)
        code = terminated.exit_code if terminated is not None else "?"
        return f"its kernel ended before it was attached (exit code {code})"
    for container in status.container_statuses or []:
        state = container.state
        if state.running is not None:
            return "running"
        waiting = state.waiting
        if waiting is not None and waiting.reason in _FATAL_WAITING:
            return f"its container cannot start: {waiting.reason}: {waiting.message}"
    return None


_PIDS_ROOTS = (Path("/sys/fs/cgroup/pids/kubepods"), Path("/sys/fs/cgroup/kubepods"))


def _pod_pids_cgroup(uid: str) -> Path | None:
    """The pod's pids cgroup folder on this machine (cgroupfs driver: kubepods/[QoS/]pod<uid>;
    cgroup v1 or v2), None when it is not here."""
    for root in _PIDS_ROOTS:
        for folder in (
            root / f"pod{uid}",
            *(root / q / f"pod{uid}" for q in ("burstable", "besteffort")),
        ):
            if (folder / "pids.max").exists():
                return folder
    return None


def _uid(thing: Any) -> str:
    return str(thing.metadata.uid)


def _name(thing: Any) -> str:
    """The name of an API object (a pod, a node)."""
    return str(thing.metadata.name)


def _kernel_terminated(pod: Any) -> Any:
    for container in pod.status.container_statuses or []:
        if container.state.terminated is not None:
            return container.state.terminated
    return None


def _node_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def _auth_headers(configuration: Configuration) -> dict[str, str]:
    token = configuration.get_api_key_with_prefix("authorization")
    return {"Authorization": token} if token else {}


def _tls_context(configuration: Configuration) -> ssl.SSLContext:
    """The TLS the `kubernetes` client would use for this server (its CA, client
    certificate, server name)."""
    if not configuration.verify_ssl:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.assert_hostname is False:
            context.check_hostname = False
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


def _api_problem(exc: BaseException, api: KubeApi) -> str:
    """What an API call's failure means, in one line."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        reason = getattr(exc, "reason", "")
        body = str(getattr(exc, "body", "") or "")
        message = body
        with contextlib.suppress(Exception):
            message = str(json.loads(body).get("message") or body)
        return f"the API server answered {status} {reason}: {message[:300]}"
    text = exception_line(exc)
    if "Connection refused" in text or "Max retries" in text or isinstance(exc, OSError):
        return f"cannot reach the Kubernetes API server {api.server} ({text[:300]})"
    return text
