"""Never lose a run: the database unreachable at start, heartbeat or end; the spool; sync
pushing idempotently, also after a push cut short."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from store_helpers import make_record
from tcpproxy import TCPProxy, free_port

from ecotrain.store import spool
from ecotrain.store.db import Store, sync_all


def _via_port(pg_url: str, port: int, password: str | None = "s3cret") -> str:
    """The test database's URL through a port that may or may not be forwarded."""
    url = make_url(pg_url).set(drivername="postgresql", port=port, password=password)
    return url.render_as_string(hide_password=False)


def _rows(pg_url: str, sql: str = "SELECT run_id, status, exit_code FROM runs") -> list:
    eng = create_engine(pg_url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        eng.dispose()


def _spool_dir(isolated: Path) -> Path:
    return isolated / "home" / "data" / "spool"


# A child that stamps the moment it exits, so the wrapper's own exit latency can be measured.
def _child(seconds: float, code: int, stamp: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        f"import time,sys; time.sleep({seconds}); "
        f"open({str(stamp)!r},'w').write(repr(time.time())); sys.exit({code})",
    ]


def test_database_down_at_start_spools_and_sync_pushes_once(
    pg_url: str, isolated: Path, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens: connection refused
    url = _via_port(pg_url, port)
    stamp = tmp_path / "exit-time"
    out = run_cli("run", *_child(0.2, 3, stamp), env={"ECOTRAIN_DB": url})
    latency = time.time() - float(stamp.read_text())
    assert out.returncode == 3, out.stderr  # the child's code, untouched
    assert latency < 1.0, f"wrapper took {latency:.2f} s to exit after the child"
    assert "NOT recorded" not in out.stderr  # spooled counts as recorded

    files = list(_spool_dir(isolated).glob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    # the spooled record knows where it belongs, its password masked (issue 16): sync finds
    # the password again in the configuration, or libpq in PGPASSWORD/~/.pgpass
    assert record["target"] == url.replace(":s3cret@", ":***@")
    assert "s3cret" not in files[0].read_text()
    assert (record["run"]["status"], record["run"]["exit_code"]) == ("failed", 3)
    run_id = record["run"]["run_id"]

    status = run_cli("sync", "--status")
    assert status.returncode == 0
    assert "1 record(s) pending" in status.stdout
    assert run_id[:12] in status.stdout and "failed" in status.stdout
    assert f":{port}/" in status.stdout and "s3cret" not in status.stdout

    still_down = run_cli("sync")
    assert still_down.returncode == 1
    assert "kept in spool" in still_down.stderr and "s3cret" not in still_down.stderr
    assert files[0].exists()

    proxy = TCPProxy(port).start()  # the server is back, on the same URL
    try:
        pushed = run_cli("sync")
        assert pushed.returncode == 0, pushed.stderr
        assert "1 record(s) written" in pushed.stdout
        assert not files[0].exists()
        again = run_cli("sync")
        assert again.returncode == 0 and "0 record(s) written" in again.stdout
    finally:
        proxy.stop()
    assert _rows(pg_url) == [(run_id, "failed", 3)]


def test_outage_during_the_run_heartbeats_resume_and_end_is_spooled(
    pg_url: str, isolated: Path, tmp_path: Path
) -> None:
    """Down at start, up mid-run (a heartbeat lands while running), down again at the end
    (the final record is spooled, the exit is not delayed), back up: sync completes it."""
    import subprocess

    from conftest import ECOTRAIN

    port = free_port()
    url = _via_port(pg_url, port, password=None)
    stamp = tmp_path / "exit-time"
    env = {**os.environ, "ECOTRAIN_DB": url, "ECOTRAIN_HEARTBEAT_S": "0.5"}
    proc = subprocess.Popen(
        [ECOTRAIN, "run", *_child(6.0, 0, stamp)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proxy = TCPProxy(port)
    try:
        time.sleep(1.0)
        proxy.start()
        deadline = time.monotonic() + 4.5
        running = []
        while time.monotonic() < deadline and not running:
            time.sleep(0.2)
            try:
                running = _rows(pg_url, "SELECT run_id FROM runs WHERE status = 'running'")
            except Exception:  # noqa: BLE001 - schema not created yet
                running = []
        assert running, "no heartbeat reached the database once it came back"
        proxy.stop()  # gone again before the end
        _, err = proc.communicate(timeout=30)
    finally:
        proxy.stop()
        if proc.poll() is None:
            proc.kill()
    latency = time.time() - float(stamp.read_text())
    assert proc.returncode == 0, err
    assert latency < 1.0, f"wrapper took {latency:.2f} s to exit after the child"

    files = list(_spool_dir(isolated).glob("*.json"))
    assert len(files) == 1
    final = json.loads(files[0].read_text())["run"]
    assert final["status"] == "finished" and final["run_id"] == running[0][0]
    assert _rows(pg_url)[0][1] == "running"  # the database has the last heartbeat only

    proxy.start()
    try:
        assert run_cli("sync").returncode == 0
    finally:
        proxy.stop()
    assert _rows(pg_url) == [(final["run_id"], "finished", 0)]
    assert not files[0].exists()


def test_retarget_sends_records_spooled_for_a_wrong_url(pg_url: str, isolated: Path) -> None:
    wrong = _via_port(pg_url, free_port())
    spool.spool(make_record("r-wrong", beat=2, status="finished"), target=wrong)
    plain = run_cli("sync", "--db", pg_url)
    assert plain.returncode == 1  # the wrong URL still refuses; the record stays
    assert len(spool.pending()) == 1
    moved = run_cli("sync", "--db", pg_url, "--retarget")
    assert moved.returncode == 0, moved.stderr
    assert "1 record(s) written" in moved.stdout
    assert spool.pending() == []
    assert _rows(pg_url) == [("r-wrong", "finished", 0)]


def test_a_push_cut_short_is_retried_without_duplicates(
    pg_url: str, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops right after the 3rd record commits (its file not yet removed),
    so that record is pushed again next time: still 6 runs, 6 x 3 samples, latest states."""
    for i in range(6):
        spool.spool(make_record(f"run-{i}", beat=i + 1, status="finished"), target=pg_url)
        time.sleep(0.01)  # distinct mtimes: the spool is pushed oldest first
    original = Store.write_record
    calls = {"n": 0}

    def flaky(self, record):
        calls["n"] += 1
        original(self, record)
        if calls["n"] == 3:
            raise ConnectionError("server closed the connection unexpectedly")

    monkeypatch.setattr(Store, "write_record", flaky)
    first = sync_all(default_target=pg_url)
    ((pushed, errors),) = first.values()
    assert pushed == 2 and len(errors) == 1 and "server closed" in errors[0]
    assert calls["n"] == 3  # it stopped at the dead connection, not 3 more failures
    assert len(spool.pending()) == 4

    monkeypatch.setattr(Store, "write_record", original)
    second = sync_all(default_target=pg_url)
    assert list(second.values()) == [(4, [])]
    assert spool.pending() == []
    third = sync_all(default_target=pg_url)
    assert list(third.values()) == [(0, [])]
    rows = _rows(pg_url, "SELECT run_id, cpu_energy_j FROM runs ORDER BY run_id")
    assert rows == [(f"run-{i}", 100.0 * (i + 1)) for i in range(6)]
    assert _rows(pg_url, "SELECT count(*) FROM samples") == [(18,)]
    assert _rows(pg_url, "SELECT count(DISTINCT run_id) FROM samples") == [(6,)]


def test_next_run_pushes_the_spool(isolated: Path, db_path: Path) -> None:
    """On SQLite too: a record left in the spool is written by the next `ecotrain run`."""
    spool.spool(make_record("r-left", beat=1, status="finished"), target=str(db_path))
    out = run_cli("run", sys.executable, "-c", "pass")
    assert out.returncode == 0, out.stderr
    from conftest import wait_synced

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ids = {r["run_id"] for r in wait_synced(db_path)}
        # the sync pushes one record at a time, the older (r-left) first: wait for both
        if "r-left" in ids and len(ids) == 2:
            break
        time.sleep(0.2)
    assert "r-left" in ids and len(ids) == 2
    assert not spool.spool_path("r-left").exists()


def test_writer_waits_its_start_delay_and_a_cancelled_one_never_opens(tmp_path: Path) -> None:
    from ecotrain.monitor import BackgroundWriter

    url = str(tmp_path / "w.db")
    cancelled = BackgroundWriter(url, start_delay_s=30.0)
    cancelled.start()
    assert cancelled.cancel_start()
    cancelled.join(2.0)
    assert not cancelled.is_alive() and not cancelled.ready.is_set()
    assert cancelled.store is None and not (tmp_path / "w.db").exists()

    hurried = BackgroundWriter(url, start_delay_s=30.0)
    hurried.start()
    time.sleep(0.2)
    assert not hurried.ready.is_set()  # still in its delay
    hurried.hurry()
    assert hurried.ready.wait(20.0) and hurried.store is not None
    assert not hurried.cancel_start()  # too late: already open
    record = make_record("w-1", status="finished")
    hurried.submit(record)
    assert hurried.wait_written(record, 20.0)
    with Store(url).engine.connect() as conn:
        assert conn.execute(text("SELECT run_id FROM runs")).scalars().all() == ["w-1"]
