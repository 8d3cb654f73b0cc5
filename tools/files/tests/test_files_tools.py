"""The files tools: listing and reading under the root, never outside it (by `..`, an
absolute path or a symbolic link); their contracts; a run that reads through them."""

import asyncio
from pathlib import Path

import pytest

from rlmrt.testing import assert_tool_called, tool_contract
from rlmrt.tools import FunctionTool, Secrets
from rlmrt_tool_files import files_tools


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "notes").mkdir(parents=True)
    (folder / "readme.md").write_text("hello\nworld\n")
    (folder / "notes" / "a.txt").write_text("alpha " * 100)
    (folder / "notes" / "b.bin").write_bytes(b"\xff\xfeok")
    (tmp_path / "secret.txt").write_text("outside")
    (folder / "escape").symlink_to(tmp_path / "secret.txt")
    (folder / "up").symlink_to(tmp_path)
    (folder / "inner").symlink_to(folder / "notes")
    return folder


@pytest.fixture
def tools(root: Path) -> dict[str, FunctionTool]:
    return {t.name: t for t in files_tools(root, read_cap=1000)}


def run(tool: FunctionTool, **kwargs: object) -> object:
    return asyncio.run(tool.run(tool.arguments((), kwargs), Secrets({})))


def test_the_contracts(tools: dict[str, FunctionTool]) -> None:
    listing = tool_contract(
        tools["files_list"],
        call={"path": "notes"},
        bad_calls={"path": {"path": ".."}, "max_entries": {"max_entries": 0}},
    )
    assert listing["entries"] == [
        {"name": "a.txt", "kind": "file", "size": 600},
        {"name": "b.bin", "kind": "file", "size": 4},
    ]
    text = tool_contract(
        tools["files_read"],
        call={"path": "readme.md"},
        bad_calls={"path": {"path": "escape"}, "max_bytes": {"path": "a", "max_bytes": 1001}},
    )
    assert text == {"path": "readme.md", "text": "hello\nworld\n", "truncated": False}


@pytest.mark.parametrize(
    "path",
    ["..", "../secret.txt", "notes/../../secret.txt", "escape", "up/secret.txt", "/etc/passwd"],
)
def test_no_path_leaves_the_root(tools: dict[str, FunctionTool], path: str) -> None:
    with pytest.raises(ValueError, match=r"argument 'path': .* is outside the granted folder"):
        run(tools["files_read"], path=path)
    with pytest.raises(ValueError, match=r"argument 'path': .* is outside the granted folder"):
        run(tools["files_list"], path=path)


def test_listing_reading_and_links_inside(tools: dict[str, FunctionTool]) -> None:
    out = run(tools["files_list"], pattern="*e*")
    assert [e["name"] for e in out["entries"]] == ["escape", "inner", "notes", "readme.md"]  # type: ignore[index]
    assert out["entries"][0]["kind"] == "link"  # type: ignore[index]
    assert run(tools["files_read"], path="inner/b.bin")["text"] == "\ufffd\ufffdok"  # type: ignore[index]
    part = run(tools["files_read"], path="notes/a.txt", offset=6, max_bytes=12)
    assert part == {"path": "notes/a.txt", "text": "alpha alpha ", "truncated": True}
    with pytest.raises(ValueError, match="argument 'path': 'notes' is not a file"):
        run(tools["files_read"], path="notes")
    with pytest.raises(ValueError, match=r"argument 'path': 'readme\.md' is not a folder"):
        run(tools["files_list"], path="readme.md")


CODE = """\
```repl
names = [e["name"] for e in tools.files_list("notes")["entries"]]
texts = tools.batch([("files_read", {"path": "notes/" + n}) for n in names])
FINAL(sum(len(t["text"]) for t in texts))
```"""


def test_code_reads_through_them_from_each_sandbox(
    scripted_rlm, rlm_sandbox_kind: str, tools: dict[str, FunctionTool], root: Path
) -> None:
    rlm = scripted_rlm([CODE], sandbox=rlm_sandbox_kind, tool_grants={"paths": [str(root)]})
    result = rlm.completion("how long?", context="c", tools=list(tools.values()))
    assert result.answer == "604"
    assert_tool_called(result, "files_list", times=1)
    assert_tool_called(result, "files_read", where={"ok": True}, times=2)


def test_a_link_swapped_in_after_the_check_does_not_lead_out(root: Path, tmp_path: Path) -> None:
    """The check resolved `notes/a.txt` inside the root; `notes` is a link to a folder
    outside by the time it is opened: the open, one component at a time from the
    root's fd without following links, refuses it."""
    from rlmrt_tool_files import _open_beneath

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.txt").write_text("outside")
    checked = root.resolve() / "notes" / "a.txt"
    (root / "notes").rename(root / "notes.old")
    (root / "notes").symlink_to(outside)
    with pytest.raises(ValueError, match="leads through a symbolic link that was not there"):
        _open_beneath(root.resolve(), checked, "notes/a.txt", folder=False)
    with pytest.raises(ValueError, match="leads through a symbolic link that was not there"):
        _open_beneath(root.resolve(), checked.parent, "notes", folder=True)
    (root / "notes").unlink()
    (root / "notes").symlink_to(outside / "a.txt")  # the file itself a link now
    with pytest.raises(ValueError, match="leads through a symbolic link that was not there"):
        _open_beneath(root.resolve(), root.resolve() / "notes", "notes", folder=False)


def test_reads_racing_a_link_swap_never_read_outside(
    tools: dict[str, FunctionTool], root: Path, tmp_path: Path
) -> None:
    """A thread swaps `doc.txt` between a file and a link to a file outside the root
    while reads go on: each read gets the file or is refused, never the outside text."""
    import os
    import threading

    (tmp_path / "secret.txt").write_text("outside")
    (root / "doc.txt").write_text("inside")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.symlink(tmp_path / "secret.txt", root / "link.tmp")
            os.rename(root / "link.tmp", root / "doc.txt")
            (root / "file.tmp").write_text("inside")
            os.rename(root / "file.tmp", root / "doc.txt")

    swapper = threading.Thread(target=swap)
    swapper.start()
    texts: list[str] = []
    refused = 0
    try:
        for _ in range(3000):
            try:
                texts.append(run(tools["files_read"], path="doc.txt")["text"])  # type: ignore[index]
            except ValueError:
                refused += 1
    finally:
        stop.set()
        swapper.join()
    assert "outside" not in texts
    assert texts and refused  # both sides of the swap were met
