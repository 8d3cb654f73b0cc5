"""Reading a context file by its format: documents become text that keeps their
structure, images and recordings become the kernel's `Image` / `Audio` objects.

The shapes (README, "Documents, images and audio as context"):

- PDF: a list of page texts; DOCX: a list of sections, each starting with its heading as
  a Markdown heading line (``"## Results"``), tables as ``" | "``-joined rows;
  XLSX: a dict sheet name -> list of rows (lists of cell values, dates as ISO text).
- with `[input] parse_text` on (off by default: these are text, as before): CSV/TSV a
  list of rows (lists of str), JSON the parsed value, JSONL a list of values, HTML its
  text. Markdown and every other text file stay text.
- PNG, JPEG, WebP: `Image` (format, width, height); WAV, MP3: `Audio` (format,
  duration_s, sample_rate, channels).

PDF, DOCX, XLSX, the images and MP3 need the `documents` extra (pypdf, python-docx,
openpyxl, Pillow, mutagen), imported only when such a file is read. A file that cannot be
read raises `Unreadable` with the reason; the caller names the file.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from rlmrt.config import InputSettings
from rlmrt.errors import MissingDependencyError
from rlmrt.sandbox.kernel import Audio, Image

__all__ = ["Unreadable", "reader_for"]

EXTRA = "documents"

Reader = Callable[[bytes, str], Any]  # (the file's bytes, the text encoding) -> value


class Unreadable(Exception):
    """A file of a known format whose content cannot be read (encrypted, corrupt)."""


def reader_for(path: Path, data: bytes, options: InputSettings) -> Reader | None:
    """How to read the file at `path` holding `data`, or None to read it as text (or
    bytes) as any other file. A PDF is known by its suffix, or by its first bytes when
    it is not text (a text file that begins with "%PDF-" stays text, as before)."""
    suffix = path.suffix.lower()
    if suffix == ".pdf" or (data.startswith(b"%PDF-") and not _is_text(data, options.encoding)):
        return _pdf
    found = _BINARY.get(suffix)
    if found is None and options.parse_text:
        found = _TEXT.get(suffix)
    return found


def _is_text(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


# -- documents ----------------------------------------------------------------------------


def _pdf(data: bytes, encoding: str) -> list[str]:
    if not data.startswith(b"%PDF-"):
        raise Unreadable("not a PDF file (it does not begin with %PDF-)")
    pypdf = _need("pypdf", "pypdf")
    import logging

    # pypdf logs what it repairs ("EOF marker not found") as warnings, which an
    # unconfigured logging prints on stderr: a file it cannot read is our error instead
    log = logging.getLogger("pypdf")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("an encrypted PDF (it needs a password)")
        return [page.extract_text() or "" for page in reader.pages]
    except Unreadable:
        raise
    except Exception as exc:  # pypdf raises many kinds for a broken file
        raise Unreadable(f"a PDF that cannot be read ({_reason(exc)})") from exc
    finally:
        log.setLevel(level)


def _docx(data: bytes, encoding: str) -> list[str]:
    docx = _need("docx", "python-docx")
    try:
        document = docx.Document(io.BytesIO(data))
        # style names by id, once: `paragraph.style` looks the default style up again
        # for each paragraph (4 s for 5,000 of them)
        names = {style.style_id: style.name for style in document.styles}
        sections: list[list[str]] = [[]]
        for block in document.iter_inner_content():
            if hasattr(block, "rows"):  # a table
                lines = [" | ".join(cell.text for cell in row.cells) for row in block.rows]
                sections[-1].append("\n".join(lines))
                continue
            text = block.text.strip()
            if not text:
                continue
            style = block._p.style  # its style's id; None for the default one
            level = _heading_level(names.get(style) or "") if style else 0
            if level:
                sections.append([f"{'#' * level} {text}"])
            else:
                sections[-1].append(text)
    except Exception as exc:
        raise Unreadable(f"a DOCX file that cannot be read ({_reason(exc)})") from exc
    return ["\n".join(section) for section in sections if section]


def _heading_level(style: str) -> int:
    """1-9 for a heading paragraph style ("Title" is 1), 0 for any other."""
    if style == "Title":
        return 1
    name, _, level = style.partition(" ")
    return int(level) if name == "Heading" and level.isdigit() else 0


def _xlsx(data: bytes, encoding: str) -> dict[str, list[list[Any]]]:
    openpyxl = _need("openpyxl", "openpyxl")
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise Unreadable(f"an XLSX file that cannot be read ({_reason(exc)})") from exc
    try:
        sheets: dict[str, list[list[Any]]] = {}
        for sheet in book.worksheets:
            rows = [[_cell(value) for value in row] for row in sheet.iter_rows(values_only=True)]
            while rows and all(value is None for value in rows[-1]):
                rows.pop()
            sheets[sheet.title] = rows
        return sheets
    finally:
        book.close()


def _cell(value: Any) -> Any:
    """A spreadsheet cell as JSON data: dates and times as ISO text, decimals as floats."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


# -- text formats (with `parse_text`) ----------------------------------------------------


def _text(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not {encoding.upper()} text (byte {exc.start})") from exc


def _csv(data: bytes, encoding: str, delimiter: str = ",") -> list[list[str]]:
    import csv

    try:
        return list(csv.reader(io.StringIO(_text(data, encoding), newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise Unreadable(f"a CSV file that cannot be read ({exc})") from exc


def _tsv(data: bytes, encoding: str) -> list[list[str]]:
    return _csv(data, encoding, "\t")


def _json(data: bytes, encoding: str) -> Any:
    import json

    try:
        return json.loads(_text(data, encoding))
    except ValueError as exc:
        raise Unreadable(f"not valid JSON ({exc})") from exc


def _jsonl(data: bytes, encoding: str) -> list[Any]:
    import json

    values: list[Any] = []
    for number, line in enumerate(_text(data, encoding).splitlines(), 1):
        if line.strip():
            try:
                values.append(json.loads(line))
            except ValueError as exc:
                raise Unreadable(f"line {number} is not valid JSON ({exc})") from exc
    return values


def _html(data: bytes, encoding: str) -> str:
    parser = _TextOfHTML()
    parser.feed(_text(data, encoding))
    parser.close()
    return parser.text()


class _TextOfHTML(HTMLParser):
    """The text of an HTML page: scripts and styles left out, one line per block."""

    _HIDDEN = frozenset({"script", "style", "template", "noscript", "head"})
    _BLOCKS = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "header",
            "footer",
            "table",
            "ul",
            "ol",
            "pre",
            "blockquote",
            "title",
            "dt",
            "dd",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self._parts.append("\n")
            if tag[0] == "h" and tag[1:].isdigit():
                self._parts.append("#" * int(tag[1:]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self._parts).splitlines())
        return "\n".join(line for line in lines if line and line != "#")


# -- images and recordings ---------------------------------------------------------------


def _image(data: bytes, encoding: str) -> Image:
    pillow = _need("PIL.Image", "Pillow")
    try:
        with pillow.open(io.BytesIO(data)) as picture:
            fmt, (width, height) = str(picture.format).lower(), picture.size
            picture.verify()
    except Exception as exc:
        raise Unreadable(f"an image that cannot be read ({_reason(exc)})") from exc
    if fmt not in ("png", "jpeg", "webp"):
        raise Unreadable(f"a {fmt} image, not PNG, JPEG or WebP")
    return Image(data, fmt, width=width, height=height)


def _wav(data: bytes, encoding: str) -> Audio:
    import wave

    try:
        with wave.open(io.BytesIO(data), "rb") as recording:
            rate, frames = recording.getframerate(), recording.getnframes()
            channels = recording.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise Unreadable(f"a WAV file that cannot be read ({_reason(exc)})") from exc
    return Audio(data, "wav", duration_s=frames / rate, sample_rate=rate, channels=channels)


def _mp3(data: bytes, encoding: str) -> Audio:
    mp3 = _need("mutagen.mp3", "mutagen")
    try:
        info = mp3.MP3(io.BytesIO(data)).info
    except Exception as exc:
        raise Unreadable(f"an MP3 file that cannot be read ({_reason(exc)})") from exc
    return Audio(
        data,
        "mp3",
        duration_s=float(info.length),
        sample_rate=int(info.sample_rate),
        channels=int(info.channels),
    )


_BINARY: dict[str, Reader] = {
    ".docx": _docx,
    ".xlsx": _xlsx,
    ".xlsm": _xlsx,
    ".png": _image,
    ".jpg": _image,
    ".jpeg": _image,
    ".webp": _image,
    ".wav": _wav,
    ".mp3": _mp3,
}
_TEXT: dict[str, Reader] = {
    ".csv": _csv,
    ".tsv": _tsv,
    ".json": _json,
    ".jsonl": _jsonl,
    ".ndjson": _jsonl,
    ".html": _html,
    ".htm": _html,
}


def _need(module: str, package: str) -> Any:
    """`module`, imported, or the error naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, EXTRA) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
