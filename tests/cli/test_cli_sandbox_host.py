"""`rlm sandbox token` and the checks `rlm sandbox serve` makes before it listens: each
bad input is one error line naming it (the serving itself: tests/sandbox/test_remote.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rlmrt.cli.sandbox_cmd import TOKEN_ENV
from rlmrt.sandbox._remote_wire import hash_token, read_token_hash


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_token_writes_its_hash_for_the_owner_and_prints_the_token(rlm_cli, tmp_path: Path) -> None:
    file = tmp_path / "token.hash"
    result = rlm_cli("sandbox", "token", str(file))
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert len(token) >= 32 and token not in file.read_text()
    assert read_token_hash(file) == hash_token(token)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert "cannot write" in _error(rlm_cli("sandbox", "token", str(tmp_path / "no" / "t")))


def test_serve_refuses_bad_input_before_listening(
    rlm_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    hashed = tmp_path / "token.hash"
    assert rlm_cli("sandbox", "token", str(hashed)).exit_code == 0
    token = ("--token-file", str(hashed))
    for listen in ("8765", "host:port", "127.0.0.1:70000"):
        line = _error(rlm_cli("sandbox", "serve", "--listen", listen, *token))
        assert f"--listen takes HOST:PORT, got {listen!r}" in line
    assert "no token" in _error(rlm_cli("sandbox", "serve", "--listen", "127.0.0.1:0"))
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    line = _error(rlm_cli("sandbox", "serve", *token, "--tls-key", str(key)))
    assert "--tls-key needs --tls-cert" in line
    line = _error(
        rlm_cli("sandbox", "serve", *token, "--tls-cert", str(key), "--tls-key", str(key))
    )
    assert f"cannot use the TLS certificate {key}" in line
