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
from chromium import CHROMIUM, screenshot
from conftest import ECOTRAIN
from dashboard_fixture import build


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
        drawn = screenshot(
            f"http://127.0.0.1:{port}/",
            png,
            tmp_path / "chromium",
            wait_for='[data-testid="stMetric"]',
            port=_free_port(),
        )
        assert drawn, "the overview's metrics never appeared"
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
    # A blank page compresses to ~6-8 KB; the drawn overview to ~75-90 KB.
    assert len(data) > 50_000, len(data)
    # The log says what the command printed: the masked URL of our database, on localhost.
    assert f"http://127.0.0.1:{port}/" in (tmp_path / "dashboard.log").read_text()
    if os.environ.get("ECOTRAIN_SCREENSHOT_COPY"):
        shutil.copy(png, os.environ["ECOTRAIN_SCREENSHOT_COPY"])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_sigterm_stops_the_streamlit_server(tmp_path: Path) -> None:
    """`kill` of `ecotrain dashboard` stops its Streamlit server: no orphan keeps the port."""
    db = build(tmp_path / "fixture.db")
    port = _free_port()
    proc = subprocess.Popen(
        [ECOTRAIN, "dashboard", "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        _wait_healthy(port, proc)
        proc.send_signal(signal.SIGTERM)  # to the wrapper only, not its process group
        assert proc.wait(timeout=20) == 0
        deadline = time.monotonic() + 10
        while _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _port_open(port), "the Streamlit server outlived `ecotrain dashboard`"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_every_page_reads_at_1280x800(tmp_path: Path) -> None:
    """Every page in headless Chromium at 1280x800: no e-notation, no None, no value cut."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from dashboard_screens import screens

    from ecotrain.store.db import Store
    from ecotrain.store.records import utcnow
    from tests.test_reports import _run

    db = build(tmp_path / "fixture.db")
    # A seconds-long CPU run: the values that used to read 1.2e-05 kWh, $2.6e-06, "None".
    pixel = "![px](http://127.0.0.1:9/t.png)"
    tiny = _run("d" * 32, "tiny", 1, gpu_j=0.0, cpu_j=43.2, gpu_model=None, gpu_count=None,
                gpu_hours=None, exit_code=None, notes=[pixel])  # fmt: skip
    tiny["run"]["started_at"] = utcnow()
    Store(str(db)).write_record(tiny)
    found = screens(str(db), tmp_path / "screens", (1280, 800), ECOTRAIN, f"?run={'d' * 32}")
    assert found == {name: [] for name in found}, found
    assert len(found) == 6
