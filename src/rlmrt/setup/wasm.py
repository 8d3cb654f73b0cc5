"""`rlm setup wasm`: the runtime of the wasm sandbox. Deno and Pyodide, both from the
npm registry at the versions the sandbox pins, into its runtime folder
(`rlmrt.sandbox.wasm.runtime_dir`), then the memory snapshot of a booted Python.
Nothing is downloaded at run time: the sandbox only reads that folder. An installed
folder is reused (the stamp file names the versions in it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from rlmrt.errors import MissingDependencyError, SetupError
from rlmrt.sandbox.wasm import (
    DENO_VERSION,
    PYODIDE_VERSION,
    ensure_snapshot,
    find_runtime,
    runtime_dir,
    snapshot_path,
)
from rlmrt.setup._host import (
    Host,
    Outcome,
    Reporter,
    State,
    apt_install,
    run_quiet,
    system_binary,
)

STEP = "wasm"
STAMP = f"deno={DENO_VERSION} pyodide={PYODIDE_VERSION}"
STAMP_FILE = ".installed"


def setup_wasm(host: Host, report: Reporter) -> Outcome:
    """Install Deno and Pyodide unless the pinned versions are there; make the snapshot."""
    folder = runtime_dir()
    installed = _installed(folder)
    if installed:
        report.note(f"{STAMP} already installed in {folder}")
    else:
        needs = _npm_install(host, report, folder)
        if needs is not None:
            return needs
    deno, pyodide = find_runtime(folder)
    made = not snapshot_path(deno, pyodide).is_file()
    if made:
        with report.working("making the memory snapshot of a booted Python (once)"):
            snapshot = asyncio.run(ensure_snapshot(deno, pyodide))
    else:
        snapshot = snapshot_path(deno, pyodide)
    shown = f"memory snapshot {snapshot}" if snapshot else "no memory snapshot (full boots)"
    state: State = "ready" if installed and not made else "done"
    return Outcome(STEP, state, f"{STAMP} in {folder}; {shown}")


def _installed(folder: Path) -> bool:
    stamp = folder / STAMP_FILE
    if not stamp.is_file() or stamp.read_text().strip() != STAMP:
        return False
    try:
        find_runtime(folder)
    except MissingDependencyError:
        return False
    return True


def _npm_install(host: Host, report: Reporter, folder: Path) -> Outcome | None:
    """npm install the pinned Deno and Pyodide into `folder` (None when done)."""
    npm = system_binary("npm")
    if npm is None:
        needs = apt_install(host, report, STEP, ["npm"], recommends=True)
        if needs is not None:
            return needs
        npm = system_binary("npm")
        if npm is None:
            raise SetupError("npm is not on PATH after installing Debian's npm")
    folder.mkdir(parents=True, exist_ok=True)
    package = folder / "package.json"
    if not package.is_file():
        package.write_text(json.dumps({"name": "rlmrt-wasm-runtime", "private": True}) + "\n")
    what = f"deno@{DENO_VERSION} pyodide@{PYODIDE_VERSION}"
    with report.working(f"installing {what} into {folder} (npm)"):
        # Deno's npm package ships its binary as an optional per-platform package
        # (@deno/linux-x64-glibc...): optional dependencies must stay enabled
        options = ["--no-audit", "--no-fund", "--loglevel=error", "--save-exact"]
        packages = [f"deno@{DENO_VERSION}", f"pyodide@{PYODIDE_VERSION}"]
        run_quiet([npm, "install", *options, *packages], cwd=folder)
        # the npm wrapper finds the platform binary at first use: check it runs offline now
        version = run_quiet([str(folder / "node_modules" / ".bin" / "deno"), "--version"])
    (folder / STAMP_FILE).write_text(STAMP + "\n")
    report.note(f"installed {what} ({version.splitlines()[0] if version else 'deno'})")
    return None
