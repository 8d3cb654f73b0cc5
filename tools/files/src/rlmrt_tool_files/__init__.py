"""`tools.files_list(path)` and `tools.files_read(path)`: the files under one folder.

Every path is taken relative to the root and resolved (symbolic links followed) before
use: a path that leaves the root, by ``..``, by being absolute, or through a link that
points outside, is refused with an error naming `path`. The resolved path is then opened
one component at a time from the root's folder, none of them followed if it is a link
(``O_NOFOLLOW``): a component swapped for a link between the check and the open fails
to open instead of leading out of the root.

Installed, the entry points read the folder named by RLMRT_FILES_ROOT (a path settings
must grant). In code, ``files_tools("docs")`` makes both tools for one folder.
"""

import fnmatch
import os
import stat
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
        try:
            target = (base / path).resolve()
        except OSError as exc:  # changed while it was resolved (a link swapped for a file)
            raise ValueError(
                f"argument 'path': {path!r} cannot be resolved: {exc.strerror}"
            ) from None
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
        fd = _open_beneath(base, folder, path, folder=True)
        try:
            names = sorted(n for n in os.listdir(fd) if fnmatch.fnmatch(n, pattern))
            entries = [_entry(fd, name) for name in names[:max_entries]]
        finally:
            os.close(fd)
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
        with os.fdopen(_open_beneath(base, target, path, folder=False), "rb") as handle:
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


_NO_FOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO never blocks


def _open_beneath(base: Path, target: Path, path: str, *, folder: bool) -> int:
    """An fd of `target` (resolved, under `base`), opened one component at a time from
    the root's fd, following no link: what was checked is what is opened. A `ValueError`
    naming `path` when it is not a folder (`folder`) or a regular file, or when a
    component is a link now (it was swapped in after the check)."""
    kind = "folder" if folder else "file"
    parts = target.relative_to(base).parts
    fd = os.open(base, _NO_FOLLOW | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = _NO_FOLLOW | (os.O_DIRECTORY if folder or not last else 0)
            try:
                next_fd = os.open(part, flags, dir_fd=fd)
            except OSError:
                if _is_link(fd, part):
                    raise ValueError(
                        f"argument 'path': {path!r} leads through a symbolic link that was"
                        " not there when it was checked; refused"
                    ) from None
                raise ValueError(
                    f"argument 'path': {path!r} is not a {kind} under the root"
                ) from None
            os.close(fd)
            fd = next_fd
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
            raise ValueError(f"argument 'path': {path!r} is not a {kind} under the root")
        if not folder:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(folder_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _entry(folder_fd: int, name: str) -> dict[str, Any]:
    """A listed entry: its name, kind (a link is not followed) and size (files)."""
    mode = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    kind = (
        "link" if stat.S_ISLNK(mode.st_mode) else "folder" if stat.S_ISDIR(mode.st_mode) else "file"
    )
    return {"name": name, "kind": kind, "size": mode.st_size if kind == "file" else None}


def __getattr__(name: str) -> Any:
    """The installed tools (entry points `files_list`, `files_read`), made when looked up."""
    if name not in ("files_list", "files_read"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    root = os.environ.get(ROOT_VARIABLE)
    if not root:
        raise LookupError(f"set {ROOT_VARIABLE} to the folder the files tools read")
    listing, reading = files_tools(root)
    return listing if name == "files_list" else reading
