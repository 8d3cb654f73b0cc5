"""The pod a kubernetes sandbox runs its kernel in, and which pods are orphans.

The docker sandbox's hardening written as a pod spec (`pod_manifest`):

- a uid/gid of its own (`pod_uid`: drawn at random from a range no account uses),
  ``runAsNonRoot``, ``readOnlyRootFilesystem``, every capability
  dropped, ``allowPrivilegeEscalation: false`` (the kernel's ``no_new_privs``), not
  privileged; no service-account token, no service links in the environment, no host
  network, PID or IPC namespace;
- ``/tmp`` and the home as memory ``emptyDir`` volumes with size limits, and no other
  volume: nothing of the node's file system, so the node can be any machine of the
  cluster;
- quotas as resources: the memory limit (``memory_mb`` + headroom, requested as much, so
  a pod the node cannot hold is unschedulable instead of OOM-killed later), one core at
  most. Processes: Kubernetes 1.20 has no per-pod field (the kubelet's ``podPidsLimit``
  is one value for the node), so the kernel sets RLIMIT_NPROC (its config's
  ``rlimits``), which holds because the pod is not root. RLIMIT_NPROC counts every
  process of the uid on the node: with a uid shared by other pods or sandboxes (65534),
  their processes would count against this kernel, which then could not even start its
  own thread on a busy node. A uid of the pod's own makes the limit per pod.

Everything the kernel needs comes over its stdin, in order (`stdin_preamble`):

1. one byte that opens the gate (`GATE`): the container's stdin is attached after the
   container started, and the kernel's first message (``ready``) must not be written
   before anyone listens. The gate also drops the ``KUBERNETES_*`` variables the kubelet
   puts in every container (the API server's address is nothing code needs) by
   exec'ing the loader with only the environment the container spec sets;
2. the kernel's source, after its length (4 bytes, big-endian), which the loader
   (`LOADER`) reads exactly, compiles and runs as ``__main__`` with the config as its
   argument;
3. then the kernel protocol, contexts included (``load_context`` with the value).

``stdinOnce`` closes the kernel's stdin when the attach stream ends, so a kernel whose
host went away reads EOF and exits (as with docker).

Labels name the owner (host name, pid) and the creation time; `is_orphan` says which
pods a sweep deletes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

from rlmrt.sandbox import _proc
from rlmrt.sandbox._container import CGROUP_HEADROOM_MB

__all__ = [
    "CREATED_LABEL",
    "GATE",
    "HOST_LABEL",
    "LABEL",
    "LOADER",
    "MAX_AGE_S",
    "PID_LABEL",
    "SELECTOR",
    "deny_network_policy",
    "host_label",
    "is_orphan",
    "pod_manifest",
    "pod_uid",
    "stdin_preamble",
]

LABEL = "io.rlmrt.sandbox"
HOST_LABEL = "io.rlmrt.host"
PID_LABEL = "io.rlmrt.host-pid"
CREATED_LABEL = "io.rlmrt.created-at"
SELECTOR = f"{LABEL}=1"
#: a pod of another host older than this is swept (its owner cannot be checked from here)
MAX_AGE_S = 12 * 3600.0
#: a pod whose kernel ended (its host closed the stream, or died) is swept after this
ENDED_AGE_S = 300.0
POLICY_NAME = "rlmrt-sandbox-deny-network"
_CPU_LIMIT = "1"
_CPU_REQUEST = "50m"
#: waits for one byte on stdin (unbuffered), then becomes the loader, with only the
#: environment the container spec sets (not the kubelet's KUBERNETES_* service variables)
GATE = (
    "import os, sys; os.read(0, 1); env = {k: os.environ[k] for k in ('HOME', 'LANG', 'PATH')"
    " if k in os.environ}; os.execve(sys.executable, [sys.executable, *sys.argv[1:]], env)"
)
#: reads the kernel's source from stdin (its length, 4 bytes big-endian, then the source;
#: never a byte more: the protocol follows) and runs it as ``__main__``; sys.argv is then
#: ``["-c", CONFIG]``, what the kernel's main reads
LOADER = """\
import os
def _read_exactly(size):
    data = bytearray()
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            raise SystemExit("kernel loader: stdin ended before the kernel's source did")
        data += chunk
    return bytes(data)
_code = compile(_read_exactly(int.from_bytes(_read_exactly(4), "big")), "kernel.py", "exec")
del _read_exactly
exec(_code)
"""
_LENGTH = struct.Struct(">I")


def host_label() -> str:
    """This machine's name as a label value (63 characters of [A-Za-z0-9-_.])."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:63].strip("-_.")
    return name or "unknown"


#: the pods' uids and gids: above every account's and every user namespace's usual range
POD_UID_BASE = 1_000_000_000
POD_UID_SPAN = 1_000_000_000


def pod_uid() -> int:
    """A uid (and gid) for one pod, shared with no other process on its node."""
    return POD_UID_BASE + secrets.randbelow(POD_UID_SPAN)


def stdin_preamble(kernel_source: bytes) -> bytes:
    """What the host writes to the pod's stdin before the kernel protocol: the gate's
    byte, then the kernel's source after its length (see the module docstring)."""
    return b"g" + _LENGTH.pack(len(kernel_source)) + kernel_source


def pod_manifest(
    *,
    image: str,
    pull_policy: str,
    kernel_config: Mapping[str, Any],
    memory_mb: int | None,
    tmp_mb: int,
    uid: int,
) -> dict[str, Any]:
    """The hardened pod that runs one kernel as `uid` (its gid too; see the module
    docstring)."""
    gid = uid
    limits: dict[str, str] = {"cpu": _CPU_LIMIT}
    requests: dict[str, str] = {"cpu": _CPU_REQUEST}
    if memory_mb:
        limits["memory"] = requests["memory"] = f"{memory_mb + CGROUP_HEADROOM_MB}Mi"
    command = ["python3", "-I", "-S", "-c", GATE]
    loader = ["-I", "-S", "-c", LOADER, json.dumps(dict(kernel_config))]
    labels = {
        LABEL: "1",
        HOST_LABEL: host_label(),
        PID_LABEL: str(os.getpid()),
        CREATED_LABEL: str(int(time.time())),
    }
    memory_volume = {"medium": "Memory", "sizeLimit": f"{tmp_mb}Mi"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "rlmrt-sandbox-", "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "hostNetwork": False,
            "hostPID": False,
            "hostIPC": False,
            "hostname": "sandbox",
            "terminationGracePeriodSeconds": 0,
            "securityContext": {
                "runAsUser": uid,
                "runAsGroup": gid,
                "runAsNonRoot": True,
            },
            "containers": [
                {
                    "name": "kernel",
                    "image": image,
                    "imagePullPolicy": pull_policy,
                    "command": command,
                    "args": loader,
                    "stdin": True,
                    "stdinOnce": True,
                    "tty": False,
                    "workingDir": "/home/sandbox",
                    "env": [
                        {"name": "HOME", "value": "/home/sandbox"},
                        {"name": "LANG", "value": "C.UTF-8"},
                    ],
                    "securityContext": {
                        "privileged": False,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"limits": limits, "requests": requests},
                    "volumeMounts": [
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "home", "mountPath": "/home/sandbox"},
                    ],
                }
            ],
            "volumes": [
                {"name": "tmp", "emptyDir": memory_volume},
                {"name": "home", "emptyDir": memory_volume},
            ],
        },
    }


def deny_network_policy() -> dict[str, Any]:
    """A NetworkPolicy that allows the sandbox pods no traffic in or out (enforced only
    where the cluster's network plugin enforces policies)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {LABEL: "1"}},
        "spec": {
            "podSelector": {"matchLabels": {LABEL: "1"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [],
        },
    }


def is_orphan(labels: Mapping[str, str], phase: str | None, now: float) -> bool:
    """Whether a sandbox pod is nobody's any more: its host is this machine and its host
    process is gone (or is a later process with the same pid), its kernel ended long
    ago, or it is older than `MAX_AGE_S`."""
    try:
        created = float(labels.get(CREATED_LABEL, "0"))
        pid = int(labels.get(PID_LABEL, "0"))
    except ValueError:
        return True
    age = now - created
    if age > MAX_AGE_S or (phase in {"Succeeded", "Failed"} and age > ENDED_AGE_S):
        return True
    if labels.get(HOST_LABEL) != host_label() or pid == os.getpid():
        return False
    started = _proc.started_at(pid)
    return started is None or started > created + 1.0
