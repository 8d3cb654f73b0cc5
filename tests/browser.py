"""A real headless Chromium driven over the DevTools protocol (aiohttp's WebSocket).

`capture(url, ready_js, png)` opens `url`, waits until the JavaScript expression
`ready_js` is true (the page renders over a WebSocket after loading, so a fixed wait
would race), saves a screenshot, and returns the page's HTML and every URL it requested.
Hosts other than 127.0.0.1 do not resolve, so a page that needs the internet fails.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2400",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


@dataclass
class Page:
    html: str
    png: bytes
    requested: list[str] = field(default_factory=list)


class _Session:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.requested: list[str] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads((await self.ws.receive()).data)
            if message.get("method") == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})


async def _drive(port: int, url: str, ready_js: str, timeout_s: float) -> Page:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            session = _Session(ws)
            await session.call("Network.enable")
            await session.call("Page.enable")
            await session.call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout_s
            while True:
                done = await session.call(
                    "Runtime.evaluate", expression=f"Boolean({ready_js})", returnByValue=True
                )
                if done["result"].get("value") is True:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"the page never got ready ({ready_js})")
                await asyncio.sleep(0.25)
            await asyncio.sleep(1.0)  # let the chart finish its first paint
            shot = await session.call("Page.captureScreenshot", format="png")
            html = await session.call(
                "Runtime.evaluate",
                expression="document.documentElement.outerHTML",
                returnByValue=True,
            )
            png = base64.b64decode(shot["data"])
            return Page(html["result"]["value"], png, session.requested)


def capture(url: str, ready_js: str, png: Path, profile: Path, timeout_s: float = 60) -> Page:
    """Open `url` in a fresh headless Chromium (profile folder `profile`); stop it after."""
    process = subprocess.Popen(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (active.is_file() and active.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(active.read_text().splitlines()[0])
        page = asyncio.run(_drive(port, url, ready_js, timeout_s))
        png.write_bytes(page.png)
        return page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
