from __future__ import annotations

from pathlib import Path

import pytest

from rlmrt.engine.context_input import describe_for_prompt, load_context
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
    with pytest.raises(ContextError, match=r"cannot read context file .*link\.txt"):
        load_context(tmp_path / "dangling")


def test_many_items_are_summarised_for_the_prompt() -> None:
    meta = load_context([f"item {i}" for i in range(30)]).metadata
    assert meta["items_not_listed"] == 10
    text = describe_for_prompt(meta)
    assert "Items: 30" in text and "10 more items not listed" in text
    assert "Preview" in text
