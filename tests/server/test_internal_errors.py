"""A failure inside the server is a 500 that names a request id, never its internals;
the traceback goes to the server's log under that id."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from rlmrt.config import load_config
from rlmrt.server.app import create_app


def test_a_500_names_only_a_request_id(caplog: pytest.LogCaptureFixture) -> None:
    # without its lifespan the app has no store: every /v1 route fails inside
    app = create_app(load_config(model="openai/test-model"))
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="rlmrt.server"):
        response = client.get("/v1/models", headers={"Authorization": "Bearer rlm-x"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "internal_error"
    found = re.fullmatch(
        r"the server failed; the server's log has the details \(request ([0-9a-f]{12})\)",
        error["message"],
    )
    assert found is not None
    assert "AttributeError" not in response.text and "state" not in response.text
    logged = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
