"""Drive Debian's headless Chromium over the DevTools protocol: load a page, wait until an
element is drawn, take a screenshot.

`chromium --screenshot` captures as soon as the document has loaded, before Streamlit's
websocket has delivered the app, so on a busy machine it photographs a blank page. Waiting
for a selector makes the end-to-end test deterministic. Uses the `websockets` client that
Streamlit's server already depends on, no extra package.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def screenshot(
    url: str,
    png: Path,
    profile: Path,
    wait_for: str,
    port: int,
    size: tuple[int, int] = (1400, 1000),
    timeout: float = 90.0,
) -> bool:
    """Screenshot ``url`` into ``png`` once ``wait_for`` (a CSS selector) exists.

    Returns whether the selector appeared before ``timeout`` (the screenshot is taken
    either way, so a failure can be looked at).
    """
    return capture(url, png, profile, wait_for, port, size, timeout)["found"]


# What the page says, as a reader sees it: the visible text, the text of the data grids
# (drawn on a canvas; their accessible copy is in the DOM), and the metric values whose box
# is narrower than their text (CSS cuts those with an ellipsis that innerText never shows).
PAGE_TEXT_JS = """(() => {
  const sel = '[data-testid="stMetricValue"], [data-testid="stMetricValue"] *';
  const cut = [...document.querySelectorAll(sel)]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText);
  const grids = [...document.querySelectorAll('table, [role="grid"]')].map(t => t.innerText);
  return JSON.stringify({text: document.body.innerText, grids: grids, cut: cut});
})()"""


def capture(
    url: str,
    png: Path,
    profile: Path,
    wait_for: str,
    port: int,
    size: tuple[int, int] = (1400, 1000),
    timeout: float = 90.0,
    also: dict[str, Path] | None = None,
) -> dict:
    """Like :func:`screenshot`; returns {found, text, grids, cut} (see PAGE_TEXT_JS).

    ``also``: {CSS selector: png}: scroll each element into view and screenshot it too."""
    proc = subprocess.Popen(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            f"--window-size={size[0]},{size[1]}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ws_url = _page_ws(port, timeout=30)
        return asyncio.run(_capture(ws_url, url, png, wait_for, size, timeout, also or {}))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _page_ws(port: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium's DevTools endpoint did not come up")
        time.sleep(0.2)


async def _capture(
    ws_url: str,
    url: str,
    png: Path,
    wait_for: str,
    size: tuple[int, int],
    timeout: float,
    also: dict[str, Path] | None = None,
) -> dict:
    from websockets.asyncio.client import connect

    async with connect(ws_url, max_size=64 * 1024 * 1024) as conn:
        return await _drive(conn, url, png, wait_for, size, timeout, also or {})


async def _drive(
    conn,
    url: str,
    png: Path,
    wait_for: str,
    size: tuple[int, int],
    timeout: float,
    also: dict[str, Path] | None = None,
) -> dict:
    counter = 0

    async def call(method: str, **params) -> dict:
        nonlocal counter
        counter += 1
        await conn.send(json.dumps({"id": counter, "method": method, "params": params}))
        while True:
            message = json.loads(await conn.recv())
            if message.get("id") == counter:
                return message.get("result", {})

    await call(
        "Emulation.setDeviceMetricsOverride",
        width=size[0],
        height=size[1],
        deviceScaleFactor=1,
        mobile=False,
    )
    await call("Page.navigate", url=url)
    deadline = time.monotonic() + timeout
    found = False
    while time.monotonic() < deadline:
        result = await call(
            "Runtime.evaluate", expression=f"!!document.querySelector({json.dumps(wait_for)})"
        )
        if result.get("result", {}).get("value"):
            found = True
            break
        await asyncio.sleep(0.3)
    # Let charts and tables finish their first paint, and Streamlit finish its run.
    await asyncio.sleep(2.5)
    # Streamlit marks its app root while the script runs; wait until it has finished.
    running = "!!document.querySelector('[data-test-script-state=\"running\"]')"
    for _ in range(int(timeout * 2)):
        busy = await call("Runtime.evaluate", expression=running)
        if not busy.get("result", {}).get("value"):
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    shot = await call("Page.captureScreenshot", format="png")
    png.write_bytes(base64.b64decode(shot["data"]))
    result = await call("Runtime.evaluate", expression=PAGE_TEXT_JS)
    for selector, extra in (also or {}).items():
        await call(
            "Runtime.evaluate",
            expression=f"document.querySelector({json.dumps(selector)})?.scrollIntoView()",
        )
        await asyncio.sleep(1.5)
        shot = await call("Page.captureScreenshot", format="png")
        extra.write_bytes(base64.b64decode(shot["data"]))
    page = json.loads(result.get("result", {}).get("value") or "{}")
    return {"found": found, **page}
