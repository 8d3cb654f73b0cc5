"""Issue 19, rich inputs: documents, spreadsheets, text formats, images and recordings
given as a context, each from a real file written here by its own library."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import wave
from datetime import date
from pathlib import Path

import pytest

from rlmrt.config import InputSettings
from rlmrt.engine.context_input import describe_for_prompt, load_context
from rlmrt.errors import ContextError
from rlmrt.sandbox.kernel import Audio, Image


def write_pdf(path: Path, pages: list[str]) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def write_encrypted_pdf(path: Path, source: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    with path.open("wb") as out:
        writer.write(out)
    return path


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_paragraph("Preface text.")
    document.add_heading("Findings", level=1)
    document.add_paragraph("The aardvark eats ants.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("name", "count"), ("ants", "12")]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_heading("Details", level=2)
    document.add_paragraph("Bison graze.")
    document.save(str(path))
    return path


def write_xlsx(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Invoices"
    sheet.append(["id", "amount", "due"])
    sheet.append([1, 9.5, date(2026, 1, 31)])
    book.create_sheet("Empty")
    book.save(str(path))
    return path


def write_image(path: Path, fmt: str, size: tuple[int, int] = (40, 30)) -> Path:
    from PIL import Image as Pillow

    picture = Pillow.new("RGB", size, (200, 30, 30))
    for x in range(size[0] // 2):
        picture.putpixel((x, 0), (0, 0, 255))
    picture.save(path, format=fmt)
    return path


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x01" * int(rate * seconds))
    return path


def write_mp3(path: Path, frames: int) -> Path:
    """MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, stereo) of silence: 1152 samples each."""
    frame = bytes.fromhex("FFFB9004") + bytes(417 - 4)
    path.write_bytes(frame * frames)
    return path


def test_a_pdf_becomes_its_pages(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "report.pdf", ["First page: alpha.", "Second page: beta."])
    loaded = load_context(path)
    assert isinstance(loaded.value, list) and len(loaded.value) == 2
    assert "alpha" in loaded.value[0] and "beta" in loaded.value[1]
    assert loaded.metadata["items"] == 2
    # chosen by its first bytes too, whatever its name
    renamed = tmp_path / "report.bin"
    renamed.write_bytes(path.read_bytes())
    assert load_context(renamed).value == loaded.value


def test_a_docx_becomes_sections_with_their_headings(tmp_path: Path) -> None:
    sections = load_context(write_docx(tmp_path / "notes.docx")).value
    assert sections == [
        "Preface text.",
        "# Findings\nThe aardvark eats ants.\nname | count\nants | 12",
        "## Details\nBison graze.",
    ]


def test_an_xlsx_becomes_rows_per_sheet(tmp_path: Path) -> None:
    sheets = load_context(write_xlsx(tmp_path / "book.xlsx")).value
    assert sheets == {
        "Invoices": [["id", "amount", "due"], [1, 9.5, "2026-01-31T00:00:00"]],
        "Empty": [],
    }
    json.dumps(sheets)  # JSON data: it crosses to every sandbox


def test_text_formats_are_parsed_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text('id,name\n1,"Smith, J"\n')
    (tmp_path / "t.tsv").write_text("a\tb\n")
    (tmp_path / "t.json").write_text('{"doc": [1, 2]}')
    (tmp_path / "t.jsonl").write_text('{"n": 1}\n\n{"n": 2}\n')
    (tmp_path / "t.html").write_text(
        "<html><head><title>T</title><style>p{}</style></head><body><h2>Head</h2>"
        "<p>One &amp; two</p><script>var x;</script><ul><li>item</li></ul></body></html>"
    )
    (tmp_path / "t.md").write_text("# Title\ntext")
    as_text = load_context(tmp_path).value
    assert as_text["t.json"] == '{"doc": [1, 2]}' and as_text["t.csv"].startswith("id,name")
    parsed = load_context(tmp_path, InputSettings(parse_text=True)).value
    assert parsed == {
        "t.csv": [["id", "name"], ["1", "Smith, J"]],
        "t.html": "## Head\nOne & two\nitem",
        "t.json": {"doc": [1, 2]},
        "t.jsonl": [{"n": 1}, {"n": 2}],
        "t.md": "# Title\ntext",
        "t.tsv": [["a", "b"]],
    }
    (tmp_path / "bad.jsonl").write_text('{"n": 1}\n{oops\n')
    with pytest.raises(ContextError, match=r"bad\.jsonl: line 2 is not valid JSON"):
        load_context(tmp_path, InputSettings(parse_text=True))


def test_images_and_recordings_become_objects_described_by_metadata(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", "PNG")
    write_image(tmp_path / "b.jpg", "JPEG", (64, 48))
    write_image(tmp_path / "c.webp", "WEBP")
    write_wav(tmp_path / "d.wav", 2.5)
    write_mp3(tmp_path / "e.mp3", 100)
    loaded = load_context(tmp_path)
    value = loaded.value
    assert isinstance(value["a.png"], Image)
    assert (value["a.png"].format, value["a.png"].width, value["a.png"].height) == ("png", 40, 30)
    assert (value["b.jpg"].format, value["b.jpg"].width) == ("jpeg", 64)
    assert value["c.webp"].format == "webp"
    assert value["a.png"].data == (tmp_path / "a.png").read_bytes()
    wav = value["d.wav"]
    assert isinstance(wav, Audio)
    assert (wav.format, wav.duration_s, wav.sample_rate, wav.channels) == ("wav", 2.5, 8000, 1)
    mp3 = value["e.mp3"]
    assert mp3.format == "mp3" and mp3.duration_s == pytest.approx(100 * 1152 / 44100, rel=0.01)
    assert (mp3.sample_rate, mp3.channels) == (44100, 2)

    prompt = describe_for_prompt(loaded.metadata)
    assert "a.png: png 40x30" in prompt and "d.wav: wav, 2.50 s" in prompt
    assert "e.mp3: mp3, 2.61 s" in prompt
    # metadata only: no byte of any file, raw or base64, reaches the prompt
    import base64

    for item in value.values():
        assert base64.b64encode(item.data)[:24].decode() not in prompt
        assert repr(item.data[:12])[2:-1] not in prompt
    assert "iVBORw0KGgo" not in prompt  # a PNG's base64 opening

    single = load_context(tmp_path / "a.png")
    assert single.metadata["type"] == "image"
    assert "Total length: " in describe_for_prompt(single.metadata)
    assert "png 40x30" in describe_for_prompt(single.metadata)


def test_what_cannot_be_read_is_named_and_skip_loads_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    plain = write_pdf(tmp_path / "plain.pdf", ["open text"])
    write_encrypted_pdf(folder / "locked.pdf", plain)
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "fake.pdf").write_text("plain text named .pdf")
    (folder / "ok.txt").write_text("fine")
    with pytest.raises(ContextError) as raised:
        load_context(folder)
    message = str(raised.value)
    assert "cannot read 4 file(s) of the context folder" in message
    assert "locked.pdf: an encrypted PDF" in message
    assert "broken.docx: a DOCX file that cannot be read" in message
    assert "broken.png: an image that cannot be read" in message
    assert "fake.pdf: not a PDF file" in message
    assert "errors='skip'" in message

    loaded = load_context(folder, InputSettings(errors="skip"))
    assert loaded.value == {"ok.txt": "fine"}
    skipped = {item["path"] for item in loaded.metadata["skipped"]}
    assert skipped == {"locked.pdf", "broken.docx", "broken.png", "fake.pdf"}
    assert "locked.pdf (an encrypted PDF" in describe_for_prompt(loaded.metadata)

    with pytest.raises(ContextError, match=r"cannot read context file .*locked\.pdf: an encrypted"):
        load_context(folder / "locked.pdf")
    listed = load_context([folder / "locked.pdf", folder / "ok.txt"], InputSettings(errors="skip"))
    assert listed.value == {str(folder / "ok.txt"): "fine"}
    assert listed.metadata["skipped"][0]["path"] == str(folder / "locked.pdf")


def load_in_a_fresh_python(path: Path, first: str = "") -> subprocess.CompletedProcess[str]:
    """`load_context(path)` in a new interpreter (after the code `first`): its output is
    the `UsageError` raised, and its stderr what else was printed."""
    code = (
        f"{first}\n"
        "from rlmrt.engine.context_input import load_context\n"
        "from rlmrt.errors import UsageError\n"
        f"try: load_context(__import__('pathlib').Path({str(path)!r}))\n"
        "except UsageError as exc: print(exc)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_a_missing_extra_names_the_install_command(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "r.pdf", ["x"])
    out = load_in_a_fresh_python(path, "import sys; sys.modules['pypdf'] = None")
    assert "pip install 'rlmrt[documents]'" in out.stdout
    assert "pypdf is not installed" in out.stdout


def test_media_objects_edit_and_split(tmp_path: Path) -> None:
    picture = load_context(write_image(tmp_path / "a.png", "PNG", (40, 30))).value
    part = picture.crop((0, 0, 20, 10))
    assert (part.format, part.width, part.height) == ("png", 20, 10)
    from PIL import Image as Pillow

    with Pillow.open(io.BytesIO(part.data)) as opened:
        assert opened.size == (20, 10)
        assert opened.getpixel((0, 0)) == (0, 0, 255)
    assert picture.resize((8, 6)).width == 8
    assert picture.thumbnail(10).height == 8  # 40x30 -> 10x8 (rounded), never enlarged
    assert repr(picture) == "<Image png 40x30, " + f"{len(picture.data):,} bytes>"

    recording = load_context(write_wav(tmp_path / "d.wav", 2.5)).value
    pieces = recording.split(1.0)
    assert [p.duration_s for p in pieces] == [1.0, 1.0, 0.5]
    with wave.open(io.BytesIO(pieces[2].data)) as last:
        assert last.getnframes() == 4000
    with pytest.raises(ValueError, match="WAV recordings only"):
        load_context(write_mp3(tmp_path / "e.mp3", 3)).value.split(1.0)


def test_a_broken_pdf_is_one_clear_error_and_nothing_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(write_pdf(tmp_path / "whole.pdf", ["text"]).read_bytes()[:300])
    out = load_in_a_fresh_python(path)
    assert "cut.pdf: a PDF that cannot be read (" in out.stdout
    assert out.stderr == ""  # pypdf's repair warnings ("EOF marker not found") stay quiet


def test_a_list_of_rows_is_described_by_its_kinds_not_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(50)))
    loaded = load_context(path, InputSettings(parse_text=True))
    assert loaded.metadata["items"] == 51
    assert loaded.metadata["item_types"] == ["list"]
    assert loaded.metadata["item_lengths"] == [2] * 20
    prompt = describe_for_prompt(loaded.metadata)
    assert "Item types: ['list']" in prompt and "(lengths of 31 more items not listed)" in prompt


def test_a_text_file_that_begins_like_a_pdf_stays_text(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("%PDF-1.7 is the version we target\n")
    assert load_context(tmp_path / "notes.txt").value == "%PDF-1.7 is the version we target\n"
