"""Records run as Ray tasks: a local Ray runtime, or the cluster at `address`.

Each context is put in Ray's object store once and every task over it takes the
reference. Tasks are retried by Ray when their worker or node dies; the driver writes
each record's result once, whatever ran it. Model servers stay where the settings point:
each node runs at most as many records at once as it has CPUs (`ray start --num-cpus`)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from rlmrt.batch.dataset import BatchRecord
from rlmrt.batch.local import failed_record, run_record_sync
from rlmrt.batch.results import RecordResult
from rlmrt.config import RLMConfig
from rlmrt.errors import ConfigError

TASK_RETRIES = 3  # a task whose worker process or node died runs again elsewhere

# one RLM per worker process and settings, kept between tasks
_WORKER_RLMS: dict[str, Any] = {}


def _run_on_worker(record: BatchRecord, context: Any, config: RLMConfig) -> RecordResult:
    import ray

    from rlmrt.engine.rlm import RLM

    key = config.model_dump_json()
    rlm = _WORKER_RLMS.get(key)
    if rlm is None:
        rlm = _WORKER_RLMS[key] = RLM(config=config)
    node = ray.get_runtime_context().get_node_id()
    return run_record_sync(rlm, record, context, node)


class RayExecutor:
    """Submits one Ray task per record, spread over the cluster's nodes."""

    def __init__(self, config: RLMConfig, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("batch runs on Ray need ray: pip install 'rlmrt[batch]'") from exc
        self._ray = ray
        self._owns_runtime = not ray.is_initialized()
        if self._owns_runtime:
            # the workers import rlmrt as this process does
            path = os.environ.get("PYTHONPATH")
            runtime_env = {"env_vars": {"PYTHONPATH": path}} if path else None
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    runtime_env=runtime_env,
                )
            except ConnectionError as exc:
                raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
        self._config = ray.put(config)
        self._task = ray.remote(max_retries=TASK_RETRIES, num_cpus=1)(_run_on_worker)

    def share(self, value: Any) -> Any:
        return self._ray.put(value)

    async def run(self, record: BatchRecord, context: Any) -> RecordResult:
        started = time.perf_counter()
        ref = self._task.options(scheduling_strategy="SPREAD").remote(record, context, self._config)
        try:
            result: RecordResult = await ref
        except asyncio.CancelledError:
            self._ray.cancel(ref, force=True)
            raise
        except self._ray.exceptions.RayError as exc:
            return failed_record(record, exc, started)
        return result

    async def aclose(self) -> None:
        if self._owns_runtime:
            self._ray.shutdown()
