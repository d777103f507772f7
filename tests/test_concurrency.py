"""Many writers at once lose and corrupt nothing: 64 `ecotrain run` processes into one
SQLite file, 256 writers (start, heartbeats, end) into one PostgreSQL database.

Bigger numbers and timings: bench/concurrency.py.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from conftest import ECOTRAIN
from sqlalchemy import create_engine, text
from store_helpers import make_record, wait_for_tagged_runs

from ecotrain.store.db import Store

N_RUNS = 64
N_WRITERS = 256
BEATS = 3


def test_64_concurrent_runs_into_one_sqlite_file(isolated: Path, db_path: Path) -> None:
    env = {**os.environ, "ECOTRAIN_HEARTBEAT_S": "0.5", "ECOTRAIN_SAMPLE_INTERVAL_S": "0.2"}
    procs = []
    for i in range(N_RUNS):
        # each child exits with its own code, so every row can be checked against its run
        child = [sys.executable, "-c", f"import time,sys; time.sleep(1.0); sys.exit({i % 5})"]
        procs.append(
            subprocess.Popen(
                [ECOTRAIN, "run", "--tag", f"i={i}", "-q", *child],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [i % 5 for i in range(N_RUNS)]
    assert all(not p.stderr.read() for p in procs)

    # Finals not written within the wrapper's 50 ms go through detached syncs: wait for them.
    spool = isolated / "home" / "data" / "spool"
    rows = wait_for_tagged_runs(db_path, spool, N_RUNS, timeout_s=60)
    by_i = {int(i): (status, code) for i, status, code in rows}
    assert len(rows) == N_RUNS and sorted(by_i) == list(range(N_RUNS))
    for i in range(N_RUNS):
        code = i % 5
        assert by_i[i] == ("finished" if code == 0 else "failed", code)
    assert list(spool.glob("*.json")) == []
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # every run kept a timeline, and no sample was written twice
        per_run = conn.execute(
            "SELECT r.run_id, count(s.t_s) FROM runs r "
            "LEFT JOIN samples s ON s.run_id = r.run_id GROUP BY r.run_id"
        ).fetchall()
        doubles = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM samples "
            "GROUP BY run_id, t_s, gpu_w, cpu_w, ram_w HAVING count(*) > 1)"
        ).fetchone()
    assert [r for r in per_run if r[1] == 0] == []
    assert doubles == (0,)


def test_256_concurrent_writers_into_postgresql(pg_url: str) -> None:
    """256 writers, each a run: a start record, heartbeats, a final record, all at once
    through one barrier (more than PostgreSQL's 100 connections: refusals are retried)."""
    Store(pg_url).engine.dispose()
    barrier = threading.Barrier(N_WRITERS)
    errors: list[str] = []

    def writer(i: int) -> None:
        # 1,024 writes through 100 connection slots on 2 cores take ~30 s under load: a
        # writer retries refusals longer than the default 30 s (the run path spools instead).
        store = Store(pg_url, migrate=False, retry_s=120)
        try:
            barrier.wait(30)
            for beat in range(BEATS):
                store.write_record(make_record(f"run-{i:04d}", beat=beat, job_id="big", rank=i))
            store.write_record(
                make_record(f"run-{i:04d}", beat=BEATS, status="finished", job_id="big", rank=i)
            )
        except Exception as e:  # noqa: BLE001
            errors.append(f"{i}: {type(e).__name__}: {e}")
        finally:
            store.engine.dispose()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(N_WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    eng = create_engine(pg_url)
    with eng.connect() as conn:
        rows = conn.execute(
            text("SELECT run_id, status, cpu_energy_j, rank FROM runs ORDER BY run_id")
        ).all()
        samples = conn.execute(
            text("SELECT count(*), count(DISTINCT (run_id, t_s)) FROM samples")
        ).one()
    eng.dispose()
    assert len(rows) == N_WRITERS
    assert all(r == (f"run-{i:04d}", "finished", 100.0 * BEATS, i) for i, r in enumerate(rows)), (
        rows[:3]
    )
    assert tuple(samples) == (N_WRITERS * 3, N_WRITERS * 3)
