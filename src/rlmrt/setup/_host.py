"""What every set-up step shares: the machine it runs on (`Host`), how it reports
(`Reporter`), what it ends with (`Outcome`), running a command quietly, and
installing Debian packages."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from rlmrt.errors import SetupError

State = Literal["done", "ready", "needs"]
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_OUTPUT_TAIL = 12  # lines of a failed command's output in its error


class Reporter(Protocol):
    """How a step talks to the user (the CLI renders it)."""

    def note(self, line: str) -> None:
        """One line of what the step does or found."""

    def working(self, what: str) -> AbstractContextManager[None]:
        """A long part of a step (an install, a build), shown while it runs."""


@dataclass(frozen=True, slots=True)
class Host:
    """The machine a step runs on. `root`: whether the step may install Debian packages,
    start daemons and build the docker image itself; when False it returns the commands
    to run instead. `rlm`: the command that runs `rlm` here (for `sudo ...`)."""

    root: bool
    rlm: str

    @classmethod
    def detect(cls, *, as_user: bool = False) -> Host:
        """This machine; `as_user` acts as a user without root even when root."""
        script = Path(sys.executable).with_name("rlm")
        rlm = str(script) if script.is_file() else "rlm"
        return cls(root=os.geteuid() == 0 and not as_user, rlm=rlm)

    def rerun_as_root(self, step: str) -> str:
        """The exact command that runs `step` with the rights it needs."""
        return f"sudo {shlex.quote(self.rlm)} setup {step}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a step ended. `state`: "done" (it installed or started something), "ready"
    (all was there: nothing done), "needs" (the user must run `commands`)."""

    step: str
    state: State
    detail: str
    commands: tuple[str, ...] = ()


def system_binary(name: str) -> str | None:
    """`name` on PATH or in the system folders (/usr/sbin is not on a user's PATH)."""
    return shutil.which(name) or shutil.which(name, path=_SYSTEM_PATH)


def run_quiet(
    argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """Run `argv` and return its output (stdout and stderr); a failure raises
    `SetupError` with the end of the output (what went wrong is there)."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise SetupError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        output = done.stdout.strip().splitlines()[-_OUTPUT_TAIL:]
        shown = "\n".join(output) or "(no output)"
        raise SetupError(f"`{shlex.join(argv)}` failed (exit {done.returncode}):\n{shown}")
    return done.stdout


def _apt_options(recommends: bool) -> list[str]:
    return ["-y"] if recommends else ["-y", "--no-install-recommends"]


def apt_command(packages: Sequence[str], *, recommends: bool = False) -> str:
    """The command a user runs to install Debian `packages` themselves."""
    return shlex.join(["sudo", "apt-get", "install", *_apt_options(recommends), *packages])


def apt_install(
    host: Host, report: Reporter, step: str, packages: Sequence[str], *, recommends: bool = False
) -> Outcome | None:
    """Install Debian `packages` (None when they are installed now), or the Outcome
    saying which command installs them when this step may not or cannot. `recommends`:
    with the packages' recommended ones (debootstrap needs Debian's keyring)."""
    listed = ", ".join(packages)
    apt = system_binary("apt-get")
    if apt is None:
        return Outcome(
            step, "needs", f"missing: {listed}; install them with the system's package manager"
        )
    if not host.root:
        command = apt_command(packages, recommends=recommends)
        return Outcome(step, "needs", f"missing: {listed} (Debian packages)", (command,))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with report.working(f"installing {listed} (apt-get)"):
        run_quiet([apt, "update", "-qq"], env=env)
        run_quiet([apt, "install", "-qq", *_apt_options(recommends), *packages], env=env)
    report.note(f"installed {listed}")
    return None


def stop_services(services: Sequence[str]) -> None:
    """Stop those of systemd's `services` that run (apt starts a package's service;
    rlmrt's tests start their own daemons). Nothing without systemd."""
    systemctl = system_binary("systemctl")
    if systemctl is None:
        return
    for service in services:
        try:
            run_quiet([systemctl, "is-active", "--quiet", service])
        except SetupError:
            continue  # not running
        run_quiet([systemctl, "stop", service])
