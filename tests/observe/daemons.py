"""Daemons the observe tests start on 127.0.0.1 and stop by PID: any server process
(`running`), Debian's Prometheus with its own config and data folder in a temp dir
(`prometheus`), and PromQL through its HTTP API."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager")
PROMTOOL = shutil.which("promtool")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n{log.read_text()}")
        time.sleep(0.2)


@contextmanager
def running(
    args: list[str],
    ready_url: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    ready_within_s: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """`args` started with output to `log`, once `ready_url` answers 200; stopped after."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_ready(ready_url, process, log, ready_within_s)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def prometheus(
    folder: Path, targets: list[str], *, rules: Path | None = None, alertmanager: str | None = None
) -> Iterator[str]:
    """A Prometheus scraping `targets` (host:port) every second; yields its URL."""
    port = free_port()
    lines = [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: rlmrt",
        "    static_configs:",
        f"      - targets: [{', '.join(repr(t) for t in targets)}]",
    ]
    if rules is not None:
        lines += ["rule_files:", f"  - {rules}"]
    if alertmanager is not None:
        lines += [
            "alerting:",
            "  alertmanagers:",
            "    - static_configs:",
            f"        - targets: ['{alertmanager}']",
        ]
    config = folder / "prometheus.yml"
    config.write_text("\n".join(lines) + "\n")
    assert PROMETHEUS is not None
    args = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(args, f"{url}/-/ready", folder / "prometheus.log"):
        yield url


def query(url: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    data = response.json()
    assert data["status"] == "success", data
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def wait_for(url: str, promql: str, expected: float, seconds: float = 30) -> float:
    """The query's single value once it equals `expected` (or the last one seen)."""
    deadline = time.monotonic() + seconds
    value = float("nan")
    while time.monotonic() < deadline:
        result = query(url, promql)
        if result:
            value = float(result[0]["value"][1])
            if value == expected:
                return value
        time.sleep(0.5)
    return value
