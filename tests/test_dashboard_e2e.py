"""End to end: `ecotrain dashboard` serves the app, and headless Chromium renders it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ECOTRAIN
from dashboard_fixture import build

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ecotrain dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("the dashboard did not become healthy in time")


# A blank page compresses to ~8 KB and the sidebar alone to ~32 KB; the rendered overview
# (metrics, chart, tables) to ~85 KB.
MIN_PNG_BYTES = 50_000


def _screenshot(png: Path, port: int, profile: Path) -> None:
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "--virtual-time-budget=15000",
            f"--screenshot={png}",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_dashboard_serves_and_renders(tmp_path: Path) -> None:
    db = build(tmp_path / "fixture.db")
    port = _free_port()
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [ECOTRAIN, "dashboard", "--db", str(db), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    png = tmp_path / "dashboard.png"
    try:
        _wait_healthy(port, proc)
        # The first page load runs the script cold (imports, first queries); a screenshot
        # taken before the app has drawn is small, so retry a few times until it has.
        for attempt in range(5):
            _screenshot(png, port, tmp_path / f"chromium{attempt}")
            if png.is_file() and png.stat().st_size > MIN_PNG_BYTES:
                break
        assert proc.poll() is None, "the dashboard died while rendering"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert png.is_file(), (tmp_path / "dashboard.log").read_text()[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1400, 1000)
    assert len(data) > MIN_PNG_BYTES, len(data)
    # The log says what the command printed: the masked URL of our database, on localhost.
    assert f"http://127.0.0.1:{port}/" in (tmp_path / "dashboard.log").read_text()
    if os.environ.get("ECOTRAIN_SCREENSHOT_COPY"):
        shutil.copy(png, os.environ["ECOTRAIN_SCREENSHOT_COPY"])
