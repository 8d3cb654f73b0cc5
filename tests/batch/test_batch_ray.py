"""Batch runs on a real two-node Ray cluster on this machine (`ray start` head and
worker, each its own process group), against the scripted model on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rlmrt import RLMConfig
from rlmrt.batch import BatchLimits, BatchSummary, RecordResult, batch
from rlmrt.testing import ChatRequest, Reply

ray = pytest.importorskip("ray", reason="the batch extra (ray) is not installed")

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

RECORDS = 200
REPLY_DELAY_S = 0.25
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
START_TIMEOUT_S = 90
# node death noticed within seconds, not the default half minute
# a loopback-only test cluster: no token (a token file a local `ray.init` left in
# ~/.ray would otherwise turn authentication on, and the nodes would refuse the test)
NO_AUTH = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
FAST_HEALTH_CHECKS = {
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


@dataclass
class Cluster:
    address: str
    head: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_start(ip: str, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    ray_cli = Path(sys.executable).parent / "ray"
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(ray_cli), "start", "--block", f"--node-ip-address={ip}", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stopped whole by its PID
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # what the group left behind goes too
        os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # the orphans are reaped by init once they are gone
    assert not _group_members(process.pid), "Ray processes outlived their group's kill"


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    probe = (
        f"import ray; ray.init(address={address!r}, logging_level='error', log_to_driver=False);"
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Ray's socket paths must stay short: a temp dir of its own under /tmp
    temp = Path(tempfile.mkdtemp(prefix="rlmray-", dir="/tmp"))
    env = {**os.environ, **FAST_HEALTH_CHECKS, **NO_AUTH}
    # Ray maps 127.0.0.1 to the machine's network address; other loopback addresses
    # it keeps, so the two nodes talk over loopback only
    port = _free_port()
    address = f"{HEAD_IP}:{port}"
    head = _ray_start(
        HEAD_IP,
        "--head",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
        env=env,
        log=temp / "head.log",
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while _alive_nodes(address, env) < 1:
            assert head.poll() is None, (temp / "head.log").read_text()
            assert time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(1)
        worker = _ray_start(
            WORKER_IP, f"--address={address}", "--num-cpus=2", env=env, log=temp / "worker.log"
        )
        while _alive_nodes(address, env) < 2:
            assert worker.poll() is None, (temp / "worker.log").read_text()
            assert time.monotonic() < deadline, "the Ray worker node did not join"
            time.sleep(1)
        yield Cluster(address, head, worker)
    finally:
        if worker is not None:
            _stop(worker)
        _stop(head)
        shutil.rmtree(temp, ignore_errors=True)


def model(request: ChatRequest) -> Reply | str:
    # a reply takes a while, as a model's does: the batch outlasts a node's cold start
    return Reply(text="```repl\nFINAL(str(len(context)))\n```", delay_s=REPLY_DELAY_S)


def test_a_batch_spreads_over_two_nodes_and_survives_losing_one(
    cluster: Cluster, serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in NO_AUTH.items():  # the driver, as the nodes
        monkeypatch.setenv(name, value)
    server = serve(model)
    shared = tmp_path / "shared.txt"
    shared.write_text("y" * 500)
    dataset = tmp_path / "tasks.jsonl"
    with dataset.open("w") as handle:
        for n in range(RECORDS):
            record: dict[str, object] = {"id": f"r{n}", "prompt": "how long?", "expected": n + 1}
            if n % 4 == 0:
                record |= {"context_path": "shared.txt", "expected": 500}
            else:
                record["context"] = "x" * (n + 1)
            handle.write(json.dumps(record) + "\n")
    config = RLMConfig(
        model="openai/test-model",
        api_base=server.url,
        api_key="sk-test",
        max_retries=0,
        sandbox="local",
        trajectory_dir=tmp_path / "runs",
    )
    out = tmp_path / "results.jsonl"
    killed_after: list[int] = []
    nodes: set[str | None] = set()

    def kill_a_node_midway(result: RecordResult, summary: BatchSummary) -> None:
        """Kill the worker node once both nodes have finished records."""
        nodes.add(result.node)
        if len(nodes) == 2 and summary.ran >= RECORDS // 4 and not killed_after:
            killed_after.append(summary.ran)
            os.killpg(cluster.worker.pid, signal.SIGKILL)

    summary = batch(
        dataset,
        out,
        config=config,
        executor="ray",
        ray_address=cluster.address,
        limits=BatchLimits(concurrency=8),
        on_result=kill_a_node_midway,
    )
    assert len(killed_after) == 1 and killed_after[0] < RECORDS * 3 // 4
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [line["id"] for line in lines]
    assert sorted(ids) == sorted(f"r{n}" for n in range(RECORDS))  # each record once
    assert all((line["answer"] is None) != (line["error"] is None) for line in lines)
    # Ray ran again on the head what the lost node had in hand: nothing was lost
    assert summary.errors == 0, [line["error"] for line in lines if line["error"]][:3]
    assert (summary.correct, summary.scored) == (RECORDS, RECORDS)
    assert len({line["node"] for line in lines}) == 2  # both nodes took records

    rerun = batch(dataset, out, config=config, executor="ray", ray_address=cluster.address)
    assert (rerun.already_done, rerun.ran) == (RECORDS, 0)
