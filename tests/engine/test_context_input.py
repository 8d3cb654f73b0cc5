from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rlmrt.engine.context_input import ReadOptions, describe_for_prompt, load_context
from rlmrt.errors import ContextError


def test_str_bytes_list_dict_and_none() -> None:
    assert load_context("abc").metadata["total_length"] == 3
    assert load_context(b"caf\xc3\xa9").value == "café"
    assert load_context(b"\xff\xfe").value == b"\xff\xfe"
    listed = load_context(["ab", "cde"])
    assert listed.metadata["item_lengths"] == [2, 3]
    assert listed.metadata["total_length"] == 5
    mapping = load_context({"a": "xx", "b": [1, 2, 3]})
    assert mapping.metadata["item_lengths"] == {"a": 2, "b": 3}
    assert load_context(None).metadata == {"type": "none", "total_length": 0}
    assert load_context([]).metadata["items"] == 0


def test_paths(tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("alpha")
    (tmp_path / "docs" / "sub" / "b.txt").write_text("beta")
    (tmp_path / "docs" / "img.bin").write_bytes(b"\x89PNG\xff")
    (tmp_path / "docs" / ".git").mkdir()
    (tmp_path / "docs" / ".git" / "HEAD").write_text("ref")

    assert load_context(tmp_path / "docs" / "a.md").value == "alpha"
    folder = load_context(tmp_path / "docs").value
    assert folder == {"a.md": "alpha", "img.bin": b"\x89PNG\xff", "sub/b.txt": "beta"}
    both = load_context([tmp_path / "docs" / "a.md", tmp_path / "docs" / "sub"]).value
    assert both == {str(tmp_path / "docs" / "a.md"): "alpha", "b.txt": "beta"}


def test_bad_contexts_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match=r"does not exist: .*missing\.txt"):
        load_context(tmp_path / "missing.txt")
    (tmp_path / "bin.dat").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ContextError, match=r"not UTF-8 text: .*bin\.dat"):
        load_context(tmp_path / "bin.dat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContextError, match="no files"):
        load_context(tmp_path / "empty")
    with pytest.raises(ContextError, match="unsupported context type int"):
        load_context(42)
    with pytest.raises(ContextError, match="only str or only paths, got: int, str"):
        load_context(["a", 1])
    (tmp_path / "dangling").mkdir()
    (tmp_path / "dangling" / "link.txt").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ContextError, match=r"no readable files: .*dangling"):
        load_context(tmp_path / "dangling")


def test_many_items_are_summarised_for_the_prompt() -> None:
    meta = load_context([f"item {i}" for i in range(30)]).metadata
    assert meta["items_not_listed"] == 10
    text = describe_for_prompt(meta)
    assert "Items: 30" in text and "10 more items not listed" in text
    assert "Preview" in text


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tree"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    return folder


def test_a_folder_skips_symlinks_to_outside_unless_asked(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (tmp_path / "secret.txt").write_text("outside")
    (folder / "out.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "in.txt").symlink_to(folder / "a.txt")
    loaded = load_context(folder)
    assert loaded.value == {"a.txt": "alpha", "in.txt": "alpha"}
    assert loaded.metadata["skipped"] == [
        {"path": "out.txt", "reason": "a symlink to outside the folder (follow_symlinks is off)"}
    ]
    assert "Files not loaded: out.txt (a symlink to outside" in describe_for_prompt(loaded.metadata)
    followed = load_context(folder, ReadOptions(follow_symlinks=True))
    assert followed.value == {"a.txt": "alpha", "in.txt": "alpha", "out.txt": "outside"}


def test_a_symlink_to_a_device_is_never_read(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "zero").symlink_to("/dev/zero")
    assert load_context(folder).metadata["skipped"][0]["path"] == "zero"
    followed = load_context(folder, ReadOptions(follow_symlinks=True))
    assert followed.value == {"a.txt": "alpha"}
    assert followed.metadata["skipped"] == [
        {"path": "zero", "reason": "a device, not a regular file"}
    ]


def test_dangling_and_looping_symlinks_and_fifos_are_skipped_with_a_note(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "dangling").symlink_to(folder / "nowhere")
    (folder / "loop1").symlink_to(folder / "loop2")
    (folder / "loop2").symlink_to(folder / "loop1")
    os.mkfifo(folder / "pipe")
    loaded = load_context(folder)
    assert loaded.value == {"a.txt": "alpha"}
    reasons = {item["path"]: item["reason"] for item in loaded.metadata["skipped"]}
    assert reasons == {
        "dangling": "a dangling or looping symlink",
        "loop1": "a dangling or looping symlink",
        "loop2": "a dangling or looping symlink",
        "pipe": "a FIFO, not a regular file",
    }


def test_a_fifo_given_as_the_context_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ContextError, match=r"is a FIFO, not a regular file or a folder: .*pipe"):
        load_context(tmp_path / "pipe")


def test_size_caps_per_file_and_in_total(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "b.txt").write_text("b" * 100)
    with pytest.raises(ContextError, match=r"b\.txt is over the 50-byte cap per file"):
        load_context(folder, ReadOptions(max_file_bytes=50))
    with pytest.raises(ContextError, match=r"over the 80-byte cap in total .* at .*b\.txt"):
        load_context(folder, ReadOptions(max_total_bytes=80))
    assert len(load_context(folder, ReadOptions(max_total_bytes=105)).value) == 2


def test_unreadable_files_are_listed_in_one_error_or_skipped(tmp_path: Path) -> None:
    """/proc/self/mem is a regular file whose read fails (EIO) even for root."""
    folder = _folder(tmp_path)
    for name in ("x.txt", "y.txt"):
        (folder / name).symlink_to("/proc/self/mem")
    options = ReadOptions(follow_symlinks=True)
    with pytest.raises(ContextError, match=r"cannot read 2 file\(s\).*x\.txt: .*; y\.txt: "):
        load_context(folder, options)
    skipped = load_context(folder, ReadOptions(follow_symlinks=True, errors="skip"))
    assert skipped.value == {"a.txt": "alpha"}
    assert [item["path"] for item in skipped.metadata["skipped"]] == ["x.txt", "y.txt"]


def test_undecodable_file_names_and_other_encodings(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (Path(os.fsdecode(bytes(folder))) / os.fsdecode(b"\xffname.txt")).write_text("odd")
    loaded = load_context(folder)
    assert loaded.value == {"\\xffname.txt": "odd", "a.txt": "alpha"}
    assert json.loads(json.dumps(loaded.metadata, ensure_ascii=False))  # writable as JSON
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ContextError, match=r"not UTF-8 text: .*latin\.txt .*--encoding"):
        load_context(tmp_path / "latin.txt")
    assert load_context(tmp_path / "latin.txt", ReadOptions(encoding="latin-1")).value == "café"
