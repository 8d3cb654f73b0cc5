"""Chunking along structure, with line ranges that match the text."""

from __future__ import annotations

from rlmrt.context._chunking import MAX_CHARS, chunk_text


def _lines_match(text: str, chunks: list) -> None:
    lines = text.splitlines()
    for c in chunks:
        if len(c.text) < MAX_CHARS:
            assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line])


def test_markdown_headings_make_sections_and_fences_do_not() -> None:
    md = "intro line\n\n# Install\npip install x\n\n```sh\n# not a heading\n```\n## Use\nrun it\n"
    chunks = chunk_text("docs/README.md", md)
    assert [(c.title, c.start_line, c.end_line) for c in chunks] == [
        ("intro line", 1, 1),
        ("Install", 3, 8),
        ("Use", 9, 10),
    ]
    _lines_match(md, chunks)


def test_python_defs_and_classes_with_decorators() -> None:
    src = (
        "import os\n\n\n@cache\ndef load(path):\n    return path\n\n\n"
        "class Store:\n    x = 1\n\n    def get(self):\n        return 1\n"
    )
    chunks = chunk_text("pkg/store.py", src)
    assert [(c.title, c.start_line, c.end_line) for c in chunks] == [
        ("import os", 1, 1),
        ("def load", 4, 6),
        ("class Store", 9, 13),
    ]
    _lines_match(src, chunks)


def test_big_class_is_cut_into_header_and_methods() -> None:
    body = "".join(f"    def m{i}(self):\n        return '{'y' * 300}'\n\n" for i in range(8))
    src = "class Big:\n    '''doc'''\n\n" + body
    chunks = chunk_text("big.py", src)
    assert chunks[0].title == "class Big"
    assert (chunks[0].start_line, chunks[0].end_line) == (1, 2)
    assert [c.title for c in chunks[1:]] == [f"def Big.m{i}" for i in range(8)]
    assert (chunks[1].start_line, chunks[1].end_line) == (4, 5)
    _lines_match(src, chunks)


def test_python_that_does_not_parse_falls_back_to_blocks() -> None:
    src = "def broken(:\n    pass\n\n" + "\n\n".join("x" * 600 for _ in range(4))
    chunks = chunk_text("bad.py", src)
    assert chunks[0].start_line == 1
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    assert len(chunks) >= 2
    _lines_match(src, chunks)


def test_prose_paragraphs_merge_until_the_cap() -> None:
    paras = [f"paragraph {i} " + "word " * 100 for i in range(10)]  # ~515 chars each
    text = "\n\n".join(paras)
    chunks = chunk_text("notes.txt", text)
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    assert 3 <= len(chunks) <= 5  # two paragraphs per chunk, not ten
    assert chunks[0].start_line == 1
    assert chunks[-1].end_line == len(text.splitlines())
    _lines_match(text, chunks)


def test_a_very_long_line_is_cut_into_pieces_on_its_line() -> None:
    text = "first\n\n" + "z" * 4000 + "\nlast"
    chunks = chunk_text("min.js", text)
    long = [c for c in chunks if c.start_line == 3]
    assert len(long) == 3
    assert all(c.end_line == 3 and len(c.text) <= MAX_CHARS for c in long)
    assert "".join(c.text for c in long) == "z" * 4000


def test_empty_and_blank_files_have_no_chunks() -> None:
    assert chunk_text("a.md", "") == []
    assert chunk_text("a.py", "\n\n  \n") == []
