"""`tools.files_list(path)` and `tools.files_read(path)`: the files under one folder.

Every path is taken relative to the root and resolved (symbolic links followed) before
use: a path that leaves the root, by ``..``, by being absolute, or through a link that
points outside, is refused with an error naming `path`.

Installed, the entry points read the folder named by RLMRT_FILES_ROOT (a path settings
must grant). In code, ``files_tools("docs")`` makes both tools for one folder.
"""

import fnmatch
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from rlmrt.tools import FunctionTool, ToolNeeds

__all__ = ["ROOT_VARIABLE", "files_tools"]

__version__ = "1.0.0"

#: the environment variable naming the folder of the installed tools
ROOT_VARIABLE = "RLMRT_FILES_ROOT"


def files_tools(
    root: str | Path, *, read_cap: int = 1_000_000, list_cap: int = 1000
) -> list[FunctionTool]:
    """`files_list` and `files_read` over the folder `root`: their needs are that path."""
    base = Path(root).expanduser().resolve()

    def inside(path: str) -> Path:
        """`path` (relative to the root) resolved; a `ValueError` if it leaves the root."""
        if "\x00" in path:
            raise ValueError("argument 'path': contains a NUL character")
        target = (base / path).resolve()
        if target != base and base not in target.parents:
            raise ValueError(f"argument 'path': {path!r} is outside the granted folder")
        return target

    def relative(target: Path) -> str:
        return target.relative_to(base).as_posix() or "."

    def files_list(
        path: str = ".",
        pattern: str = "*",
        max_entries: Annotated[int, Field(ge=1, le=list_cap)] = 200,
    ) -> dict[str, Any]:
        """List a folder under the root: names, kinds and sizes.

        Args:
            path: the folder, relative to the root ("." is the root)
            pattern: keep the names that match this glob ("*.md")
            max_entries: at most this many entries; `truncated` says if there were more
        """
        folder = inside(path)
        if not folder.is_dir():
            raise ValueError(f"argument 'path': {path!r} is not a folder under the root")
        entries: list[dict[str, Any]] = []
        names = sorted(n for n in os.listdir(folder) if fnmatch.fnmatch(n, pattern))
        for name in names[:max_entries]:
            entry = folder / name
            kind = "link" if entry.is_symlink() else "folder" if entry.is_dir() else "file"
            size = entry.lstat().st_size if kind == "file" else None
            entries.append({"name": name, "kind": kind, "size": size})
        return {
            "path": relative(folder),
            "entries": entries,
            "truncated": len(names) > max_entries,
        }

    def files_read(
        path: str,
        offset: Annotated[int, Field(ge=0)] = 0,
        max_bytes: Annotated[int, Field(ge=1, le=read_cap)] = 100_000,
    ) -> dict[str, Any]:
        """Read a text file under the root (invalid UTF-8 is replaced).

        Args:
            path: the file, relative to the root
            offset: the byte to start at
            max_bytes: at most this many bytes; `truncated` says if the file goes on
        """
        target = inside(path)
        if not target.is_file():
            raise ValueError(f"argument 'path': {path!r} is not a file under the root")
        with target.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(max_bytes + 1)
        return {
            "path": relative(target),
            "text": data[:max_bytes].decode("utf-8", "replace"),
            "truncated": len(data) > max_bytes,
        }

    needs = ToolNeeds(paths=(str(base),))
    return [
        FunctionTool(files_list, version=__version__, needs=needs),
        FunctionTool(files_read, version=__version__, needs=needs),
    ]


def __getattr__(name: str) -> Any:
    """The installed tools (entry points `files_list`, `files_read`), made when looked up."""
    if name not in ("files_list", "files_read"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    root = os.environ.get(ROOT_VARIABLE)
    if not root:
        raise LookupError(f"set {ROOT_VARIABLE} to the folder the files tools read")
    listing, reading = files_tools(root)
    return listing if name == "files_list" else reading
