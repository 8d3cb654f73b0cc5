"""Set-up steps for the parts of rlmrt that are not Python packages: the docker
sandbox's engine and image, the wasm sandbox's Deno and Pyodide, bubblewrap for the
process sandbox, the browser of the visualizer's test, the telemetry backends.

Each step is idempotent: it checks what is there, does only what is missing, and says
so. What needs root (Debian packages, starting dockerd, building the image) runs only
as root; otherwise the step returns the exact command to run instead (`Outcome`).
`rlm setup` renders the steps (`rlmrt.cli.setup_cmd`); the repository's
``scripts/setup*`` call it.
"""

from __future__ import annotations

from rlmrt.setup._host import Host, Outcome, Reporter

__all__ = ["Host", "Outcome", "Reporter"]
