"""The default image of the docker sandbox, built offline from Debian packages.

``python -m rlmrt.sandbox.docker_image [--force] [--tag TAG]`` makes a minimal Debian
root filesystem with Python (``debootstrap --variant=minbase --include=python3``,
from the Debian mirror the host's apt already uses), strips documentation, caches
and package lists, and turns it into an image with ``docker import``. No container
registry is involved, so it works on machines that reach only package registries.
The image holds no rlmrt code: the kernel is bind-mounted at run time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rlmrt.sandbox.docker import DEFAULT_IMAGE, docker_client, image_present

__all__ = ["build_image", "image_present"]

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_STRIP = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")


def _mirror() -> str:
    """The Debian mirror apt is configured with (deb822 or one-line sources)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    return DEFAULT_MIRROR


def build_image(tag: str = DEFAULT_IMAGE, *, mirror: str | None = None) -> str:
    """Build the image `tag`; returns its id. Needs root and `debootstrap`."""
    if shutil.which("debootstrap") is None:
        raise SystemExit("debootstrap is missing: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise SystemExit("building the sandbox image needs root (debootstrap)")
    with tempfile.TemporaryDirectory(prefix="rlmrt-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3",
                SUITE,
                str(root),
                mirror or _mirror(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for name in _STRIP:
            shutil.rmtree(root / name, ignore_errors=True)
        for cache in ("var/cache/apt", "var/lib/apt/lists"):
            for child in (root / cache).glob("*"):
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        (root / "home" / "sandbox").mkdir(parents=True, exist_ok=True)
        (root / "rlmrt").mkdir(exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        image = docker_client().images
        result = image.client.api.import_image_from_stream(
            tar.stdout,
            repository=tag.split(":")[0],
            tag=tag.split(":")[1] if ":" in tag else "latest",
            changes=["USER 65534:65534", "WORKDIR /home/sandbox", "ENV LANG=C.UTF-8"],
        )
        if tar.wait() != 0:
            raise SystemExit("tar of the root filesystem failed")
    return str(image.get(tag).id) if result is not None else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlmrt.sandbox.docker_image")
    parser.add_argument("--tag", default=DEFAULT_IMAGE)
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    if not args.force and image_present(args.tag):
        print(f"docker sandbox image {args.tag} is present")
        return 0
    print(f"building the docker sandbox image {args.tag} (debootstrap {SUITE})...")
    image_id = build_image(args.tag)
    print(f"built {args.tag} ({image_id[:19]})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
