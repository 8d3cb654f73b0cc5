"""End to end: `rlm visualize` as a real process, rendered by a real headless Chromium.

The screenshot is kept in tests/artifacts/ (ignored by git) for a person to look at; the
test checks the page's HTML for the run, its nodes and numbers, and that the page asked
for nothing beyond 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import free_port, start_visualize, stop

from browser import CHROMIUM, capture

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs chromium: rlm setup browser"),
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
READY = (
    "document.querySelector('.rlm-tree') && "
    'document.querySelector(\'[data-testid="stVegaLiteChart"] canvas, '
    '[data-testid="stVegaLiteChart"] svg\') && '
    "document.querySelectorAll('[data-testid=\"stExpander\"]').length >= 3"
)


def test_the_page_renders_the_run_in_chromium(runs, tmp_path) -> None:
    pytest.importorskip("streamlit", reason="the visualizer is the `viz` extra")
    port = free_port()
    process, url = start_visualize(
        [runs.tree.stem, "--port", str(port), "--runs-dir", str(runs.folder)], cwd=tmp_path
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # screenshots are kept, not committed
    png = ARTIFACTS / "visualize.png"
    try:
        page = capture(url, READY, png, tmp_path / "chromium-profile")
    finally:
        stop(process)
    print(f"screenshot: {png}")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 50_000  # not a blank page
    html = page.html
    assert f"Run {runs.tree.stem}" in html
    for text in (
        "What is in the parts?",
        "child run (depth 1)",
        "child run (depth 2)",
        "llm_query",
        "rlm_query",
        "three parts and a child",
        "23 calls; at most 3 model call(s) at once",
    ):
        assert text in html, text
    assert f'data-node="{runs.tree.stem}"' in html
    outside = [u for u in page.requested if not u.startswith(f"http://127.0.0.1:{port}/")]
    assert [u for u in outside if not u.startswith(("data:", "blob:"))] == []
