"""`rlm setup docker`: the docker sandbox's real parts. Debian's Docker engine
(docker.io) and debootstrap, dockerd started when it is not running, and the sandbox
image built offline from Debian packages (`rlmrt.sandbox.docker_image`).

dockerd runs as the machines this was made on need: no iptables, no default bridge
(sandboxes have no network anyway), and oom-score-adjust 0 (a negative one needs
CAP_SYS_RESOURCE, which containers running rlmrt may lack).
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rlmrt.errors import RLMError, SetupError
from rlmrt.setup._host import Host, Outcome, Reporter, apt_install, system_binary

STEP = "docker"
DOCKERD_ARGS = ("--iptables=false", "--bridge=none", "--oom-score-adjust=0")
DOCKERD_LOG = Path("/var/log/rlmrt-dockerd.log")
DOCKERD_START_S = 30.0
_PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap"}


def setup_docker(host: Host, report: Reporter) -> Outcome:
    """Make the docker sandbox usable here (see the module docstring)."""
    if importlib.util.find_spec("docker") is None:
        command = f"{shlex.quote(sys.executable)} -m pip install 'rlmrt[docker]'"
        return Outcome(STEP, "needs", "the Docker SDK is not installed", (command,))
    from rlmrt.sandbox.docker import DEFAULT_IMAGE, image_present

    image = os.environ.get("RLMRT_DOCKER_IMAGE") or DEFAULT_IMAGE
    missing = [package for binary, package in _PACKAGES.items() if not system_binary(binary)]
    engine = _engine_version()
    present = engine is not None and image_present(image)
    if present:
        return Outcome(STEP, "ready", f"engine {engine} running, image {image} present")
    if not host.root:
        todo = [f"Debian packages {', '.join(missing)}"] if missing else []
        todo += [f"image {image} is missing"] if engine else ["dockerd is not running"]
        detail = f"needs root: {'; '.join(todo)}"
        return Outcome(STEP, "needs", detail, (host.rerun_as_root(STEP),))
    if missing:
        needs = apt_install(host, report, STEP, missing, recommends=True)
        if needs is not None:
            return needs
    if engine is None:
        engine = _start_dockerd(report)
    if not image_present(image):
        from rlmrt.sandbox.docker_image import SUITE, build_image

        with report.working(f"building the image {image} (debootstrap {SUITE}, a few minutes)"):
            build_image(image)
        report.note(f"built the image {image}")
    return Outcome(STEP, "done", f"engine {engine} running, image {image} present")


def _engine_version() -> str | None:
    """The running engine's version, or None when it cannot be reached."""
    from rlmrt.sandbox.docker import docker_client

    try:
        return str(docker_client().version().get("Version", "?"))
    except RLMError:
        return None


def _start_dockerd(report: Reporter) -> str:
    """Start dockerd in its own session (it outlives `rlm`) and wait until it answers."""
    dockerd = system_binary("dockerd")
    if dockerd is None:
        raise SetupError("dockerd is not installed (Debian package docker.io)")
    with report.working(f"starting dockerd (log: {DOCKERD_LOG})"):
        # through a shell that exits at once: dockerd is nobody's child here, so `rlm`
        # leaves no process behind to wait for
        subprocess.run(
            [
                "sh",
                "-c",
                'setsid "$@" >>"$0" 2>&1 </dev/null &',
                str(DOCKERD_LOG),
                dockerd,
                *DOCKERD_ARGS,
            ],
            check=True,
        )
        deadline = time.monotonic() + DOCKERD_START_S
        while (version := _engine_version()) is None:
            if time.monotonic() > deadline:
                tail = DOCKERD_LOG.read_text(errors="replace").splitlines()[-5:]
                raise SetupError(
                    f"dockerd did not answer in {DOCKERD_START_S:.0f} s; its log"
                    f" ({DOCKERD_LOG}) ends with:\n" + "\n".join(tail)
                )
            time.sleep(0.5)
    report.note(f"started dockerd (engine {version})")
    return version
