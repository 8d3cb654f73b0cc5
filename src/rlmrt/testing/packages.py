"""Python packages for tests of installing tools: `build_wheel` writes a wheel by the
wheel spec (PEP 427: no build backend, works offline), `SimpleIndex` serves wheels as a
PEP 503 "simple" package index on 127.0.0.1 (a stdlib http.server thread) for
``pip install --index-url``."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import zipfile
from collections.abc import Mapping
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["SimpleIndex", "build_wheel"]


def _normalized(name: str) -> str:
    """The PEP 503 form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def build_wheel(
    folder: Path,
    name: str,
    version: str,
    files: Mapping[str, str],
    *,
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """A pure-Python wheel of project `name` at `version` holding `files` (path in the
    wheel -> text), with `entry_points` ({group: {name: "module:attr"}}), in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{re.sub(r'[-.]+', '_', name)}-{version}"
    info = f"{stem}.dist-info"
    contents = dict(files)
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: rlmrt.testing\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if entry_points:
        contents[f"{info}/entry_points.txt"] = "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
            for group, points in entry_points.items()
        )
    record = []
    for path, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    wheel = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class SimpleIndex:
    """A PEP 503 index of `wheels` under `root`, served on 127.0.0.1 while open::

    with SimpleIndex(tmp_path / "index", [wheel]) as index:
        pip install --index-url {index.url} NAME
    """

    def __init__(self, root: Path, wheels: list[Path]) -> None:
        self.root = root
        simple = root / "simple"
        projects: dict[str, list[Path]] = {}
        for wheel in wheels:
            projects.setdefault(_normalized(wheel.name.split("-", 1)[0]), []).append(wheel)
        for project, files in projects.items():
            (simple / project).mkdir(parents=True, exist_ok=True)
            links = []
            for wheel in files:
                data = wheel.read_bytes()
                (simple / project / wheel.name).write_bytes(data)
                digest = hashlib.sha256(data).hexdigest()
                links.append(f'<a href="{wheel.name}#sha256={digest}">{wheel.name}</a><br>')
            (simple / project / "index.html").write_text(
                "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
            )
        simple.mkdir(parents=True, exist_ok=True)
        (simple / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n"
            + "\n".join(f'<a href="{p}/">{p}</a><br>' for p in sorted(projects))
            + "\n</body></html>\n"
        )
        handler = partial(_Quiet, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        """The server's address (it also serves any other file under `root`)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The index URL for ``pip install --index-url``."""
        return f"{self.base}/simple/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> SimpleIndex:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
