"""The http_get tool against a server on 127.0.0.1: bodies capped, bad URLs named, and
denied to a run until the network is granted."""

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rlmrt.testing import assert_tool_called, tool_contract
from rlmrt.tools import Secrets
from rlmrt_tool_http_get import http_get


class Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            threading.Event().wait(3)  # the client has given up by then: nothing to send
            return
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/hello")
            self.end_headers()
            return
        body = b"x" * 5000 if self.path == "/big" else b"hello from 127.0.0.1"
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def get(**kwargs: object) -> dict[str, object]:
    return asyncio.run(http_get.run(http_get.arguments((), kwargs), Secrets({})))  # type: ignore[no-any-return]


def test_the_contract(site: str) -> None:
    page = tool_contract(
        http_get,
        call={"url": f"{site}/hello"},
        bad_calls={
            "url": {"url": "file:///etc/passwd"},
            "max_bytes": {"url": site, "max_bytes": 0},
        },
        slow_call={"url": f"{site}/slow"},
        timeout_s=0.3,
    )
    assert page == {
        "url": f"{site}/hello",
        "status": 200,
        "content_type": "text/plain; charset=utf-8",
        "text": "hello from 127.0.0.1",
        "truncated": False,
    }
    assert http_get.needs.network is True


def test_caps_redirects_statuses_and_failures(site: str) -> None:
    big = get(url=f"{site}/big", max_bytes=100)
    assert (len(big["text"]), big["truncated"]) == (100, True)  # type: ignore[arg-type]
    moved = get(url=f"{site}/moved")
    assert (moved["url"], moved["text"]) == (f"{site}/hello", "hello from 127.0.0.1")
    assert get(url=f"{site}/missing")["status"] == 404
    with pytest.raises(ValueError, match="argument 'url': 'ftp://x' is not an http"):
        get(url="ftp://x")
    with pytest.raises(ConnectionError, match=r"GET http://127\.0\.0\.1:1/ failed: ConnectError"):
        get(url="http://127.0.0.1:1/")


CODE = """\
```repl
try:
    page = tools.http_get(URL)
    print("status", page["status"], page["text"])
except Exception as exc:
    print(type(exc).__name__, exc)
```"""


def test_denied_until_the_network_is_granted(scripted_rlm, site: str) -> None:
    code = CODE.replace("URL", repr(f"{site}/hello"))
    denied = scripted_rlm([code, "FINAL(no)"], sandbox="process")
    denied.completion("fetch", context="c", tools=[http_get])
    said = scripted_rlm.server.requests[1].last_user_text
    assert "tools.http_get is not offered to this run: it needs network, not granted" in said
    granted = scripted_rlm([code, "FINAL(yes)"], sandbox="process", tool_grants={"network": True})
    result = granted.completion("fetch", context="c", tools=[http_get])
    assert "status 200 hello from 127.0.0.1" in scripted_rlm.server.requests[1].last_user_text
    assert_tool_called(result, "http_get", where={"ok": True}, times=1)
