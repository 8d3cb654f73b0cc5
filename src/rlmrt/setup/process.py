"""`rlm setup process`: bubblewrap, which isolates the process sandbox (own namespaces,
read-only system folders). Without it that sandbox runs with rlimits only and says so."""

from __future__ import annotations

from rlmrt.sandbox import process as process_sandbox
from rlmrt.setup._host import Host, Outcome, Reporter, apt_install

STEP = "process"


def setup_process(host: Host, report: Reporter) -> Outcome:
    """Install Debian's bubblewrap unless it is there."""
    where = process_sandbox.BWRAP  # read at call time, as the sandbox does
    if process_sandbox.bubblewrap_available():
        return Outcome(STEP, "ready", f"bubblewrap present ({where})")
    needs = apt_install(host, report, STEP, ["bubblewrap"])
    return needs or Outcome(STEP, "done", f"bubblewrap installed ({where})")
