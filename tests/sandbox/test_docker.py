"""The docker sandbox on the real Docker engine: hardening, quotas, lifecycle, errors.

The behaviour every sandbox shares (REPL, escape probes, quotas as errors) is in
test_contract.py; this file checks what only a container has. The set-up starts
dockerd and builds the image, so these tests never skip.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import docker
import pytest
from tests.sandbox.test_kernel import FakeBridge

from rlmrt.errors import SandboxError
from rlmrt.sandbox import Limits
from rlmrt.sandbox import docker as docker_module
from rlmrt.sandbox.docker import HOST_PID_LABEL, LABEL, DockerSandbox, docker_client

LIMITS = Limits(
    exec_timeout_s=3, memory_mb=128, output_bytes=20_000, processes=8, file_bytes=1 << 20
)


@pytest.fixture
async def sb() -> AsyncIterator[DockerSandbox]:
    sandbox = DockerSandbox(limits=LIMITS)
    await sandbox.start()
    yield sandbox
    await sandbox.aclose()


def inspect(container_id: str) -> dict:
    return docker_client().api.inspect_container(container_id)


def exists(container_id: str) -> bool:
    try:
        docker_client().api.inspect_container(container_id)
    except docker.errors.NotFound:
        return False
    return True


async def test_the_container_is_hardened(sb: DockerSandbox) -> None:
    assert sb.container_id is not None
    attrs = inspect(sb.container_id)
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["PidsLimit"] == 9  # processes + the kernel
    assert host["Memory"] == host["MemorySwap"] > 128 << 20
    assert host["Binds"] == [f"{sb._dir}:/rlmrt:ro"]
    assert set(host["Tmpfs"]) == {"/tmp", "/home/sandbox"}
    assert all("noexec" in opts and "nosuid" in opts for opts in host["Tmpfs"].values())
    config = attrs["Config"]
    assert config["User"] == "65534:65534"
    assert config["Labels"][LABEL] == "1" and config["Labels"][HOST_PID_LABEL] == str(os.getpid())
    assert not [e for e in config["Env"] if e.split("=")[0] not in {"HOME", "LANG", "PATH"}]


async def test_inside_the_container(sb: DockerSandbox) -> None:
    code = (
        "import os\n"
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "print(os.getuid(), os.getgid(), status['CapEff'], status['NoNewPrivs'])\n"
        "print(sorted(os.listdir('/sys/class/net')))\n"
        "for path in ('/', '/rlmrt', '/tmp', '/home/sandbox'):\n"
        "    print(path, bool(os.statvfs(path).f_flag & os.ST_RDONLY))\n"
        "open('/tmp/f', 'w').write('x'); open('/home/sandbox/f', 'w').write('x')\n"
        "done = True\n"
    )
    result = await sb.execute(code)
    assert result.ok, result.error
    lines = result.stdout.splitlines()
    assert lines[0] == "65534 65534 0000000000000000 1"
    assert lines[1] == "['lo']"  # no interface but loopback: no network
    assert lines[2:] == ["/ True", "/rlmrt True", "/tmp False", "/home/sandbox False"]


async def test_state_persists_and_the_context_is_a_file(sb: DockerSandbox) -> None:
    big = "line\n" * 200_000  # 1 MB: passed as a file, not in a frame
    await sb.load_context(big)
    assert sb._dir is not None and (sb._dir / "context.txt").stat().st_size == len(big)
    await sb.set_variable("items", [1, 2, 3])
    assert (await sb.execute("total = sum(items) + len(context)")).ok
    assert await sb.get_variable("total") == 6 + len(big)
    assert await sb.list_variables() == {"context": "str", "items": "list", "total": "int"}


async def test_a_kernel_that_ignores_the_timer_is_killed_and_replaced(sb: DockerSandbox) -> None:
    await sb.load_context("kept")
    await sb.execute("lost = 1")
    first = sb.container_id
    assert first is not None
    result = await sb.execute(
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass"
    )
    assert result.error is not None and "(timeout_s) and did not stop" in result.error
    assert "variables were lost (`context` was loaded again)" in result.error
    assert sb.container_id not in (None, first)
    assert not exists(first)  # the old container is gone, not left behind
    again = await sb.execute("print(context, 'lost' in globals())")
    assert again.stdout == "kept False\n"


async def test_a_cpu_limit_beyond_the_kernel_timer_kills_the_container() -> None:
    sandbox = DockerSandbox(limits=Limits(exec_timeout_s=20, cpu_s=1))
    try:
        # the child process burns CPU where the kernel's ITIMER_PROF cannot see it
        result = await sandbox.execute(
            "import subprocess\nsubprocess.run(['python3', '-c', 'while True: pass'])"
        )
        assert result.error is not None and "(cpu_s limit)" in result.error
        assert (await sandbox.execute("print('alive')")).stdout == "alive\n"
    finally:
        await sandbox.aclose()


async def test_closing_removes_the_container() -> None:
    sandbox = DockerSandbox(limits=LIMITS, bridge=FakeBridge())
    await sandbox.start()
    cid = sandbox.container_id
    assert cid is not None and exists(cid)
    folder = sandbox._dir
    await sandbox.aclose()
    await sandbox.aclose()  # idempotent
    assert not exists(cid)
    assert folder is not None and not folder.exists()


async def test_containers_of_dead_hosts_are_swept(monkeypatch) -> None:
    client = docker_client()
    dead_pid = 2**22 + 12345  # above pid_max: never alive
    leftover = client.containers.create(
        "rlmrt-sandbox:bookworm",
        ["sleep", "60"],
        labels={LABEL: "1", HOST_PID_LABEL: str(dead_pid)},
        network_mode="none",
    )
    mine = client.containers.create(
        "rlmrt-sandbox:bookworm",
        ["sleep", "60"],
        labels={LABEL: "1", HOST_PID_LABEL: str(os.getpid())},
        network_mode="none",
    )
    try:
        monkeypatch.setattr(docker_module, "_swept", False)
        sandbox = DockerSandbox(limits=LIMITS)
        await sandbox.start()
        await sandbox.aclose()
        assert not exists(str(leftover.id))
        assert exists(str(mine.id))  # a live host's container is left alone
    finally:
        for container in (leftover, mine):
            if exists(str(container.id)):
                container.remove(force=True)


async def test_a_missing_image_is_named_with_the_command_that_builds_it() -> None:
    sandbox = DockerSandbox(limits=LIMITS, image="rlmrt-sandbox:no-such-tag")
    with pytest.raises(SandboxError, match=r"image 'rlmrt-sandbox:no-such-tag' is missing.*"):
        await sandbox.start()
    await sandbox.aclose()


def test_an_unreachable_engine_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(docker_module, "_client", None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(
        SandboxError,
        match=r"cannot reach the Docker engine at unix://.*/no-docker.sock \(is dockerd running",
    ):
        docker_client()
    monkeypatch.delenv("DOCKER_HOST")
    client = docker_client()
    try:
        assert client.ping()
    finally:
        client.close()


async def test_sub_calls_travel_over_the_attached_stream() -> None:
    bridge = FakeBridge()
    sandbox = DockerSandbox(limits=LIMITS, bridge=bridge)
    try:
        result = await sandbox.execute("print(llm_query('hello'), llm_query_batched(['a', 'b']))")
        assert result.ok, result.error
        assert result.stdout == "llm:hello:None ['llm:a', 'llm:b']\n"
        assert bridge.calls == [
            ("llm_query", "hello", None),
            ("llm_query_batched", ["a", "b"], None),
        ]
    finally:
        await sandbox.aclose()


async def test_many_sandboxes_start_concurrently() -> None:
    sandboxes = [DockerSandbox(limits=LIMITS) for _ in range(4)]
    try:
        await asyncio.gather(*(s.start() for s in sandboxes))
        results = await asyncio.gather(*(s.execute(f"print({i})") for i, s in enumerate(sandboxes)))
        assert [r.stdout for r in results] == ["0\n", "1\n", "2\n", "3\n"]
        assert len({s.container_id for s in sandboxes}) == 4
    finally:
        await asyncio.gather(*(s.aclose() for s in sandboxes))
