"""`rlm setup observe`: the telemetry backends that rlmrt's traces, metrics and alert
rules are tested against, on 127.0.0.1:

- Arize Phoenix (an OTLP trace backend) from PyPI, in its OWN virtual environment
  (``$RLMRT_PHOENIX_VENV``, default ``~/.cache/rlmrt/phoenix``), so its many
  dependencies never touch rlmrt's environment;
- Debian's prometheus and prometheus-alertmanager (with promtool). Their services are
  not used (the tests start their own), so they are stopped when apt started them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rlmrt.setup._host import (
    Host,
    Outcome,
    Reporter,
    apt_install,
    run_quiet,
    stop_services,
    system_binary,
)

STEP = "observe"
PROMETHEUS_PACKAGES = ("prometheus", "prometheus-alertmanager")


def phoenix_venv() -> Path:
    """Where Phoenix's own virtual environment lives."""
    configured = os.environ.get("RLMRT_PHOENIX_VENV")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rlmrt" / "phoenix"


def setup_observe(host: Host, report: Reporter) -> Outcome:
    """Install Phoenix and Prometheus unless they are there."""
    done = False
    venv = phoenix_venv()
    python = venv / "bin" / "python"
    if not (venv / "bin" / "phoenix").is_file():
        with report.working(f"installing arize-phoenix into {venv} (pip, a few minutes)"):
            venv.parent.mkdir(parents=True, exist_ok=True)
            run_quiet([sys.executable, "-m", "venv", str(venv)])
            run_quiet([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
            run_quiet([str(python), "-m", "pip", "install", "--quiet", "arize-phoenix"])
        done = True
    phoenix = run_quiet([str(python), "-c", "import phoenix; print(phoenix.__version__)"])
    if not all(system_binary(name) for name in PROMETHEUS_PACKAGES):
        needs = apt_install(host, report, STEP, PROMETHEUS_PACKAGES)
        if needs is not None:
            return needs
        stop_services(PROMETHEUS_PACKAGES)  # the tests run their own on 127.0.0.1
        done = True
    prometheus = run_quiet([system_binary("prometheus") or "prometheus", "--version"])
    detail = f"phoenix {phoenix.strip()} ({venv}); {prometheus.splitlines()[0]}"
    return Outcome(STEP, "done" if done else "ready", detail)
