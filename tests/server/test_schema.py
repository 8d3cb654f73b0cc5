"""`/openapi.json` is honest: schemathesis generates requests from it (with a valid key)
and finds no 5xx, no undocumented status, content type or header, no answer or stream
event off its schema, and no bad request accepted.

`positive_data_acceptance` (a request valid by the schema must be accepted) is left out:
the last message must be the user's question, which JSON Schema cannot say.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import InProcessServer, serving

TOML = """
[sandbox]
kind = "local"

[server]
key_requests_per_minute = 0
tenant_requests_per_minute = 0
"""
MAX_EXAMPLES = 30  # per operation and phase: about 15 s here


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with serving(tmp_path_factory.mktemp("schema"), TOML) as served:
        yield served


def schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[dev]'")
    return found


def test_schemathesis_finds_nothing(server: InProcessServer, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            schemathesis(),
            "run",
            f"{server.root}/openapi.json",
            "--header",
            f"Authorization: Bearer {server.keys['acme']}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--no-color",
        ],
        cwd=tmp_path,  # its .hypothesis folder
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Operations:       15 selected / 15 total" in result.stdout
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert server.keys["acme"] not in result.stdout  # it filters the header
