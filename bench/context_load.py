"""How long a context file takes to load by format, and how much memory it takes.

For each format a file of about `--mb` MB is written (once, under `--dir`), then loaded
with `rlmrt.engine.context_input.load_context` in a fresh interpreter, `--repeat` times:
the median wall time and the peak RSS growth of the load (`ru_maxrss` after minus
before, the readers' libraries imported first) are reported. `--pdf-libraries`
compares pypdf and pdfplumber on a 500-page PDF instead (the choice of the PDF reader).

    .venv/bin/python bench/context_load.py [--mb 10] [--formats csv,json,...] [--repeat 3]
    .venv/bin/python bench/context_load.py --pdf-libraries

Needs the `documents` extra and fpdf2 (the dev extra) to write the PDFs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path

MB = 1 << 20
LINE = "invoice {i:07d} status {s} amount {a:>8.2f} customer meadow-{c:05d} note lorem ipsum"
STATUSES = ("OPEN", "PAID", "OVERDUE", "REOPENED")


def rows(count: int) -> list[tuple[int, str, float, int]]:
    return [(i, STATUSES[i % 4], (i * 37) % 10_000 / 3, i % 99_991) for i in range(count)]


def line(row: tuple[int, str, float, int]) -> str:
    i, s, a, c = row
    return LINE.format(i=i, s=s, a=a, c=c)


def lines_for(size: int) -> int:
    return size // (len(line(rows(1)[0])) + 1) + 1


def write_txt(path: Path, size: int) -> None:
    path.write_text("\n".join(line(r) for r in rows(lines_for(size))) + "\n")


def write_csv(path: Path, size: int) -> None:
    body = "\n".join(
        f"{i},{s},{a:.2f},meadow-{c:05d},lorem ipsum" for i, s, a, c in rows(size // 45)
    )
    path.write_text("id,status,amount,customer,note\n" + body + "\n")


def write_json(path: Path, size: int) -> None:
    records = [
        {"id": i, "status": s, "amount": a, "customer": c} for i, s, a, c in rows(size // 60)
    ]
    path.write_text(json.dumps({"invoices": records}))


def write_jsonl(path: Path, size: int) -> None:
    records = (
        json.dumps({"id": i, "status": s, "amount": a, "customer": c})
        for i, s, a, c in rows(size // 60)
    )
    path.write_text("\n".join(records) + "\n")


def write_html(path: Path, size: int) -> None:
    body = "".join(f"<tr><td>{line(r)}</td></tr>\n" for r in rows(lines_for(size)))
    path.write_text(f"<html><body><h1>Ledger</h1><table>{body}</table></body></html>")


def write_pdf(path: Path, size: int) -> None:
    """Pages of 40 ledger lines; `size` is taken as a page count (see --pdf-pages)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=9)
    for page in range(size):
        pdf.add_page()
        for r in rows(40):
            pdf.cell(0, 6, line((page * 40 + r[0], *r[1:])), new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def write_docx(path: Path, size: int) -> None:
    """python-docx's empty document with its body written here: its `add_paragraph`
    scans the body for each new paragraph (hours for 100,000 of them)."""
    import io
    import zipfile

    import docx

    empty = io.BytesIO()
    docx.Document().save(empty)
    paragraphs = []
    for n, r in enumerate(rows(lines_for(size))):
        if n % 200 == 0:
            paragraphs.append(
                '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr>'
                f"<w:r><w:t>Section {n // 200 + 1}</w:t></w:r></w:p>"
            )
        paragraphs.append(f"<w:p><w:r><w:t>{line(r)}</w:t></w:r></w:p>")
    with zipfile.ZipFile(empty) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                head, _, rest = data.decode("utf-8").partition("<w:body>")
                body = "".join(paragraphs)
                data = f"{head}<w:body>{body}{rest[rest.index('<w:sectPr') :]}".encode()
            out.writestr(item, data)


def write_xlsx(path: Path, size: int) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Invoices")
    sheet.append(["id", "status", "amount", "customer", "note"])
    for i, s, a, c in rows(size // 60):
        sheet.append([i, s, a, f"meadow-{c:05d}", "lorem ipsum"])
    book.save(str(path))


def write_png(path: Path, size: int) -> None:
    import random

    from PIL import Image

    side = int((size / 3) ** 0.5)  # noise: PNG barely compresses it, so about `size` bytes
    rng = random.Random(7)
    Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)).save(path)


def write_wav(path: Path, size: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\x01\x02" * (size // 2))


def write_mp3(path: Path, size: int) -> None:
    """Silent MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz): mutagen reads their headers."""
    frame = bytes.fromhex("FFFB9004") + bytes(417 - 4)
    path.write_bytes(frame * (size // len(frame)))


WRITERS: dict[str, Callable[[Path, int], None]] = {
    "txt": write_txt,
    "csv": write_csv,
    "json": write_json,
    "jsonl": write_jsonl,
    "html": write_html,
    "pdf": write_pdf,
    "docx": write_docx,
    "xlsx": write_xlsx,
    "png": write_png,
    "wav": write_wav,
    "mp3": write_mp3,
}
PARSED = {"csv", "json", "jsonl", "html"}  # read by format only with [input] parse_text

# Peak RSS growth: VmHWM after the load minus VmRSS before it, with VmHWM reset first
# (`/proc/self/clear_refs`), so the imports' own peak does not hide a smaller load's.
PEAK = """
import json, sys, time
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":")) / 1024
def reset():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
"""
LOAD = (
    PEAK
    + """
from pathlib import Path
import pypdf, docx, openpyxl, PIL.Image, mutagen, csv, html.parser  # the readers, imported first
from rlmrt.config import InputSettings
from rlmrt.engine.context_input import load_context
path, parse = Path(sys.argv[1]), sys.argv[2] == "1"
reset(); before = status("VmRSS")
started = time.perf_counter()
loaded = load_context(path, InputSettings(parse_text=parse, max_file_bytes=1 << 31))
took = time.perf_counter() - started
print(json.dumps({"s": took, "peak_mb": status("VmHWM") - before,
                  "type": loaded.metadata["type"], "items": loaded.metadata.get("items")}))
"""
)
PDF_LIBRARIES = (
    PEAK.replace("{", "{{").replace("}", "}}")
    + """
import {module}
reset(); before = status("VmRSS")
started = time.perf_counter()
{code}
took = time.perf_counter() - started
print(json.dumps({{"s": took, "peak_mb": status("VmHWM") - before, "pages": len(pages)}}))
"""
)
PDF_CODE = {
    "pypdf": "pages = [p.extract_text() for p in pypdf.PdfReader(sys.argv[1]).pages]",
    "pdfplumber": (
        "with pdfplumber.open(sys.argv[1]) as d:\n    pages = [p.extract_text() for p in d.pages]"
    ),
}


def measure(script: str, *args: str, repeat: int) -> dict[str, object]:
    samples = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
        )
        samples.append(json.loads(out.stdout))
    result = dict(samples[0])
    result["s"] = statistics.median(float(s["s"]) for s in samples)
    result["peak_mb"] = statistics.median(float(s["peak_mb"]) for s in samples)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=10.0, help="size of each file, in MB")
    parser.add_argument("--formats", default=",".join(WRITERS), help="comma-separated")
    parser.add_argument("--pdf-pages", type=int, default=500, help="pages of the PDF")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "rlmrt-bench")
    parser.add_argument("--pdf-libraries", action="store_true", help="pypdf against pdfplumber")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)

    if args.pdf_libraries:
        path = args.dir / f"ledger-{args.pdf_pages}p.pdf"
        if not path.exists():
            write_pdf(path, args.pdf_pages)
        print(f"{path.name}: {path.stat().st_size / MB:.2f} MB")
        print("| library | load + text of every page (s) | peak RSS growth (MB) |")
        print("|---|---|---|")
        for module, code in PDF_CODE.items():
            script = PDF_LIBRARIES.format(module=module, code=code)
            got = measure(script, str(path), repeat=args.repeat)
            print(f"| {module} | {got['s']:.2f} | {got['peak_mb']:.0f} |", flush=True)
        return

    size = int(args.mb * MB)
    print("| format | file (MB) | loads as | load (s) | peak RSS growth (MB) |")
    print("|---|---|---|---|---|")
    for fmt in args.formats.split(","):
        sized = args.pdf_pages if fmt == "pdf" else size
        name = f"ledger-{args.pdf_pages}p.pdf" if fmt == "pdf" else f"ledger-{args.mb:g}mb.{fmt}"
        path = args.dir / name
        if not path.exists():
            WRITERS[fmt](path, sized)
        got = measure(LOAD, str(path), "1" if fmt in PARSED else "0", repeat=args.repeat)
        shape = f"{got['type']}" + (f" of {got['items']:,}" if got["items"] is not None else "")
        print(
            f"| {fmt} | {path.stat().st_size / MB:.1f} | {shape} | {got['s']:.2f}"
            f" | {got['peak_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
