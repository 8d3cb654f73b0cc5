"""What the remote sandbox promises beyond the contract every kind keeps (test_contract.py
runs the contract and escape probes on "remote" against the `remote_host` fixture):
the host's token and TLS, its own maxima, model credentials that stay with the client,
and connections that drop, come back, or find a restarted host.

Every host here is `rlm sandbox serve` in its own process on 127.0.0.1, stopped by PID.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime
import ipaddress
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from remote_helpers import (
    DEPTH_TWO_ANSWER,
    TOKEN,
    CuttableProxy,
    HostProcess,
    depth_two_model,
    free_port,
    start_host,
    wait_for,
)

from rlmrt import RLM
from rlmrt.config import RLMConfig
from rlmrt.errors import ConfigError, SandboxError
from rlmrt.events import CodeExecuted, Event, RunStarted
from rlmrt.sandbox import Limits, Sandbox, create_backend
from rlmrt.sandbox.remote import RemoteSandbox
from rlmrt.testing import ScriptedOpenAIServer

LIMITS = Limits(exec_timeout_s=10, memory_mb=512, output_bytes=100_000)
RLM_CLI = (sys.executable, "-m", "rlmrt.cli.main")


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Callable[..., HostProcess]]:
    """Start hosts of the test's own (`start_host` arguments); each is stopped at the end."""
    started: list[HostProcess] = []

    def start(name: str, *args: str, **kwargs: Any) -> HostProcess:
        host = start_host(tmp_path / name, *args, **kwargs)
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


async def open_remote(url: str, token: str = TOKEN, **options: Any) -> RemoteSandbox:
    backend = create_backend(
        "remote",
        limits=options.pop("limits", LIMITS),
        options={"url": url, "token": token, **options},
    )
    assert isinstance(backend, RemoteSandbox)
    await backend.start()
    return backend


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# -- the token ------------------------------------------------------------------------------


def test_a_wrong_token_is_refused_and_not_logged(remote_host: HostProcess) -> None:
    with pytest.raises(SandboxError, match="refused us: the token was refused"):
        Sandbox("remote", url=remote_host.url, token="wrong-token-3f9a")
    wait_for(lambda: "bad token" in remote_host.log.read_text())
    assert "wrong-token-3f9a" not in remote_host.log.read_text()


def test_the_remote_kind_says_what_it_lacks() -> None:
    with pytest.raises(ConfigError, match="needs url="):
        Sandbox("remote", token="t")
    with pytest.raises(ConfigError, match="needs token="):
        Sandbox("remote", url="ws://127.0.0.1:1")
    with pytest.raises(ConfigError, match="takes no option colour"):
        Sandbox("remote", url="ws://127.0.0.1:1", token="t", colour="red")
    with pytest.raises(SandboxError, match=r"cannot reach the sandbox host at ws://127\.0\.0\.1:1"):
        Sandbox("remote", url="ws://127.0.0.1:1", token="t")


def test_the_remote_settings_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLM_SANDBOX_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"needs sandbox\.url \(--sandbox-url\)"):
        RLMConfig(sandbox="remote").sandbox.backend_options()
    settings = RLMConfig(sandbox="remote", sandbox_url="ws://h:1", sandbox_token_env="MY_TOKEN")
    with pytest.raises(ConfigError, match=r"needs its host's token in \$MY_TOKEN"):
        settings.sandbox.backend_options()
    monkeypatch.setenv("MY_TOKEN", "t0k")
    options = settings.sandbox.backend_options()
    assert options == {"url": "ws://h:1", "token": "t0k", "ca_file": None}
    assert "t0k" not in settings.model_dump_json()  # the token is never a setting
    with pytest.raises(ValidationError, match=r"sandbox\.url\n.*should match pattern '\^wss\?://'"):
        RLMConfig(sandbox_url="http://h:1")
    assert RLMConfig().sandbox.backend_options() == {}


def test_a_token_file_holds_only_its_hash(
    hosts: Callable[..., HostProcess], tmp_path: Path
) -> None:
    file = tmp_path / "host.token"
    made = subprocess.run(
        [*RLM_CLI, "sandbox", "token", str(file)], capture_output=True, text=True, check=True
    )
    token = made.stdout.strip()
    stored = file.read_text()
    assert len(token) >= 40 and token not in stored
    assert stored.startswith("sha256:") and len(stored.strip()) == len("sha256:") + 64
    assert file.stat().st_mode & 0o777 == 0o600

    host = hosts("filed", "--token-file", str(file), env={"RLM_SANDBOX_HOST_TOKEN": ""})
    with Sandbox("remote", url=host.url, token=token) as sandbox:
        assert sandbox.execute("print(6 * 7)").stdout == "42\n"
    with pytest.raises(SandboxError, match="the token was refused"):
        Sandbox("remote", url=host.url, token=TOKEN)


def test_the_host_command_says_what_is_wrong(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RLM_SANDBOX_HOST_TOKEN"}
    cases = [
        ([], "no token: give --token-file FILE or set $RLM_SANDBOX_HOST_TOKEN"),
        (["--token-file", str(tmp_path / "none")], "cannot read the token file"),
        (["--listen", "nowhere"], "--listen takes HOST:PORT"),
        (["--kind", "local", "--token-file", str(tmp_path / "t")], "not 'local'"),
    ]
    (tmp_path / "t").write_text("sha256:" + "0" * 64 + "\n")
    for args, message in cases:
        done = subprocess.run(
            [*RLM_CLI, "sandbox", "serve", *args], capture_output=True, text=True, env=env
        )
        assert done.returncode != 0
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


# -- TLS ------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "host.pem", folder / "host.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls_with_the_hosts_own_certificate(
    hosts: Callable[..., HostProcess], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    host = hosts("tls", "--tls-cert", str(cert), "--tls-key", str(key))
    assert host.url.startswith("wss://127.0.0.1:")
    with Sandbox("remote", url=host.url, token=TOKEN, ca_file=cert) as sandbox:
        assert sandbox.execute("print('over tls')").stdout == "over tls\n"
    with pytest.raises(SandboxError, match="CERTIFICATE_VERIFY_FAILED"):
        Sandbox("remote", url=host.url, token=TOKEN)  # the system's trust store
    with pytest.raises(SandboxError, match="cannot reach"):
        Sandbox("remote", url=host.url.replace("wss:", "ws:"), token=TOKEN)


# -- the host's maxima ------------------------------------------------------------------------


async def test_the_host_caps_what_the_client_asks(hosts: Callable[..., HostProcess]) -> None:
    host = hosts("capped", "--exec-timeout", "2", "--memory-mb", "300")
    greedy = Limits(exec_timeout_s=60, memory_mb=4096, output_bytes=100_000)
    backend = await open_remote(host.url, limits=greedy)
    try:
        assert backend.host_limits.exec_timeout_s == 2
        assert backend.host_limits.memory_mb == 300
        slow = await backend.execute("import time\ntime.sleep(6)")
        assert slow.error is not None and "Timeout" in slow.error
        assert slow.duration_s < 5
        big = await backend.execute("block = bytearray(700 * 1024 * 1024)")
        assert big.error is not None and "MemoryError" in big.error
    finally:
        await backend.aclose()


async def test_a_full_host_says_so(hosts: Callable[..., HostProcess]) -> None:
    host = hosts("full", "--max-sandboxes", "1")
    first = await open_remote(host.url)
    try:
        with pytest.raises(SandboxError, match="this sandbox host is full: it serves at most 1"):
            await open_remote(host.url)
    finally:
        await first.aclose()
    # a closed sandbox frees its place (once the host has read the client's shutdown)
    for _ in range(50):
        try:
            second = await open_remote(host.url)
        except SandboxError:
            await asyncio.sleep(0.1)
        else:
            await second.aclose()
            return
    raise AssertionError("the closed sandbox's place was never freed")


# -- credentials stay with the client ---------------------------------------------------------

API_KEY = "sk-remote-canary-91f3c2"


def environ_of(pid: int) -> str | None:
    """The environment `pid` started with; None once it has exited."""
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except (ProcessLookupError, FileNotFoundError):
        return None


def descendants(pid: int) -> list[int]:
    """The processes below `pid` now (one that exits while it is read is left out)."""
    found = []
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = child.read_text().split()
        except (FileNotFoundError, ProcessLookupError):  # that thread or process ended
            continue
        for text in children:
            found += [int(text), *descendants(int(text))]
    return found


def test_a_depth_two_run_with_batched_calls_keeps_the_key_on_the_client(
    remote_host: HostProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RLM_SANDBOX_TOKEN", remote_host.token)

    handler = depth_two_model("import os\nprint(sorted(os.environ))\n")
    events: list[Event] = []
    with ScriptedOpenAIServer(handler) as server:
        rlm = RLM(
            model="openai/test-model",
            api_base=server.url,
            api_key=API_KEY,
            max_retries=0,
            max_depth=2,
            sandbox="remote",
            sandbox_url=remote_host.url,
            trajectory_dir=tmp_path / "runs",
        )
        rlm.subscribe(events.append)
        try:
            result = rlm.completion("top", context="ctx")
            kernels = descendants(remote_host.process.pid)
            host_seen = environ_of(remote_host.process.pid)
            # the kernels still there (the host's pool keeps one started)
            kernel_seen = [text for pid in kernels if (text := environ_of(pid)) is not None]
        finally:
            rlm.close()

    assert result.answer == DEPTH_TWO_ANSWER
    runs = [e for e in events if isinstance(e, RunStarted)]
    assert sorted(e.depth for e in runs) == [0, 1, 1, 2, 2]
    assert {e.sandbox for e in runs} == {"remote"}
    first = next(e for e in events if isinstance(e, CodeExecuted) and "os.environ" in e.code)
    assert not any("KEY" in name for name in ast.literal_eval(first.stdout.split("\n")[0]))
    # the model server got the key, from the client; the host never had it
    assert all(r.headers.get("authorization") == f"Bearer {API_KEY}" for r in server.requests)
    assert host_seen is not None and API_KEY not in host_seen
    assert kernel_seen and all(API_KEY not in text for text in kernel_seen)
    assert all(remote_host.token not in text for text in kernel_seen)  # nor the host's token
    assert API_KEY not in remote_host.log.read_text()


# -- connections ------------------------------------------------------------------------------


@pytest.fixture
async def proxy(remote_host: HostProcess) -> AsyncIterator[CuttableProxy]:
    relay = CuttableProxy(port_of(remote_host.url))
    await relay.start()
    yield relay
    await relay.aclose()


async def test_a_dropped_connection_ends_the_execute_and_the_sandbox_is_found_again(
    proxy: CuttableProxy,
) -> None:
    backend = await open_remote(proxy.url)
    try:
        await backend.execute("kept = 41")
        session = backend.session
        running = asyncio.create_task(
            backend.execute("import time\ntime.sleep(1.5)\nkept += 1\nprint('done')")
        )
        await asyncio.sleep(0.5)
        proxy.cut()
        lost = await running
        assert lost.error is not None
        assert "the connection to the sandbox host" in lost.error and "was lost" in lost.error
        # the next call reconnects to the same sandbox, which finished that execute
        after = await backend.execute("print(kept)")
        assert after.error is None and after.stdout == "42\n"
        assert "restarted" not in after.stderr
        assert backend.session == session
    finally:
        await backend.aclose()


async def test_a_sandbox_not_reclaimed_in_its_grace_period_is_restarted(
    hosts: Callable[..., HostProcess],
) -> None:
    host = hosts("short-grace", "--grace", "0.3")
    relay = CuttableProxy(port_of(host.url))
    await relay.start()
    backend = await open_remote(relay.url)
    try:
        await backend.load_context("abc")
        await backend.execute("x = 1")
        relay.cut()
        await asyncio.sleep(1.0)
        after = await backend.execute("print(context, 'x' in globals())")
        assert after.stdout == "abc False\n"
        assert "the sandbox was restarted and its variables were lost" in after.stderr
        assert "`context` was loaded again" in after.stderr
    finally:
        await backend.aclose()
        await relay.aclose()


async def test_a_restarted_host_is_reported_as_a_restarted_sandbox(
    hosts: Callable[..., HostProcess],
) -> None:
    port = free_port()
    first = hosts("first", port=port)
    backend = await open_remote(first.url)
    try:
        await backend.load_context("abc")
        await backend.execute("x = 1")
        # in threads: the client's loop runs on meanwhile, as it does while a host restarts
        await asyncio.to_thread(first.stop)
        await asyncio.to_thread(hosts, "second", port=port)
        after = await backend.execute("print(context, 'x' in globals())")
        assert after.stdout == "abc False\n"
        assert "no longer had this sandbox" in after.stderr
        again = await backend.execute("print('quiet')")
        assert again.stderr == ""
    finally:
        await backend.aclose()


def test_sigterm_closes_the_host_and_its_kernels(hosts: Callable[..., HostProcess]) -> None:
    host = hosts("stopped")
    with Sandbox("remote", url=host.url, token=TOKEN) as sandbox:
        sandbox.execute("x = 1")
        kernels = descendants(host.process.pid)
        assert kernels
        os.kill(host.process.pid, signal.SIGTERM)
        assert host.process.wait(15) == 0
    assert "error" not in host.log.read_text().lower()
    assert "Traceback" not in host.log.read_text()
    for pid in kernels:
        wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists() or zombie(pid))


def zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    return True


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["docker", "wasm"])
async def test_a_host_serves_its_other_kinds(hosts: Callable[..., HostProcess], kind: str) -> None:
    from rlmrt.sandbox.wasm import runtime_dir

    # the host's HOME is its own folder: it is told where Deno and Pyodide are
    host = hosts(kind, "--kind", kind, env={"RLMRT_WASM_DIR": str(runtime_dir())})
    try:
        backend = await open_remote(host.url)
    except SandboxError as exc:
        if "docker engine" in str(exc).lower() or "not installed" in str(exc):
            pytest.skip(f"the host cannot run {kind} sandboxes here: {exc}")
        raise
    try:
        result = await backend.execute("import sys\nprint(sys.platform)")
        assert result.error is None
        assert result.stdout == ("emscripten\n" if kind == "wasm" else "linux\n")
        assert "memory_mb" in backend.enforces  # what the host's kind holds, as it says
    finally:
        await backend.aclose()
