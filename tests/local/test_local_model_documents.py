"""A 500-page PDF, loaded as a context and counted over on the local model (issue 19).

The PDF is written here with fpdf2; rlmrt reads it with pypdf into a list of 500 page
texts, and the 1.5B model answers by code over that list. Marked `local_model`.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from local_helpers import local_rlm

from rlmrt.events import Event, RunStarted
from rlmrt.local.server import ServerInfo

pytestmark = [pytest.mark.local_model, pytest.mark.usefixtures("real_models_dir")]


def write_report(path: Path, seed: int) -> int:
    """A 500-page inspection report; returns how many pages have the result FAIL."""
    from fpdf import FPDF

    rng = random.Random(seed)
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    fails = 0
    for number in range(1, 501):
        result = rng.choice(["PASS"] * 5 + ["FAIL"])
        fails += result == "FAIL"
        pdf.add_page()
        pdf.multi_cell(
            0,
            7,
            f"Inspection report, page {number} of 500\nSite: plant-{rng.randint(1, 40):02d}\n"
            f"Inspector: {rng.choice(['Ito', 'Marsh', 'Okafor', 'Lind'])}\n"
            f"Result: {result}\n" + " ".join(["Routine checks were recorded."] * 8),
        )
    pdf.output(str(path))
    return fails


@pytest.mark.timeout(900)
def test_a_500_page_pdf_is_counted_over(server: ServerInfo, tmp_path: Path) -> None:
    path = tmp_path / "inspections.pdf"
    fails = write_report(path, seed=1)
    events: list[Event] = []
    rlm = local_rlm(server, tmp_path, max_iterations=8)
    rlm.subscribe(events.append)
    try:
        result = rlm.completion(
            "How many pages of the report have the result FAIL? Answer with the number.",
            context=path,
        )
    finally:
        rlm.close()
    started = next(e for e in events if isinstance(e, RunStarted) and e.depth == 0)
    assert started.context_metadata["type"] == "list"
    assert started.context_metadata["items"] == 500
    assert result.answer is not None and not result.partial, result.stop_reason
    assert result.answer.strip() == str(fails)
