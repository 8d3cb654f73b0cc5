"""`rlm setup browser`: headless Chromium (Debian's), for the visualizer's browser test."""

from __future__ import annotations

from rlmrt.setup._host import (
    Host,
    Outcome,
    Reporter,
    State,
    apt_install,
    run_quiet,
    system_binary,
)

STEP = "browser"
PACKAGES = ("chromium", "fonts-dejavu-core")


def setup_browser(host: Host, report: Reporter) -> Outcome:
    """Install Chromium unless it is there."""
    state: State = "ready"
    if system_binary("chromium") is None:
        needs = apt_install(host, report, STEP, PACKAGES)
        if needs is not None:
            return needs
        state = "done"
    chromium = system_binary("chromium") or "chromium"
    # Debian's wrapper script may print shell noise first: the version is the last line
    version = run_quiet([chromium, "--version"]).strip().splitlines()
    return Outcome(STEP, state, version[-1] if version else chromium)
