"""Many writers at once, bigger than the CI test (tests/test_concurrency.py).

    python bench/concurrency.py --runs 128 --writers 1024 [--pg postgresql://postgres@127.0.0.1/postgres]

1. SQLite: ``--runs`` concurrent `ecotrain run` processes (each child sleeps 1 s, 0.5 s
   heartbeats) into one file; counts rows once every detached sync is done, checks exit
   codes and ``PRAGMA integrity_check``.
2. PostgreSQL: ``--writers`` concurrent writers (threads over ``--procs`` processes, one
   Store each), each a run: 3 heartbeats and a final record, released by one barrier; in
   a fresh database (created, then dropped).

Prints a Markdown table: recorded vs launched, wall time, records written per second.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
ECOTRAIN = str(Path(sys.executable).parent / "ecotrain")


def sqlite_runs(n: int) -> dict:
    """``n`` concurrent `ecotrain run` into one SQLite file."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        env = {
            **os.environ,
            "ECOTRAIN_DATA_DIR": f"{tmp}/data",
            "ECOTRAIN_CONFIG": f"{tmp}/config.toml",
            "ECOTRAIN_LOCK_DIR": f"{tmp}/locks",
            "ECOTRAIN_DB": str(db),
            "ECOTRAIN_NO_GPU": "1",
            "ECOTRAIN_HEARTBEAT_S": "0.5",
            "ECOTRAIN_SAMPLE_INTERVAL_S": "0.2",
        }
        t0 = time.monotonic()
        procs = [
            subprocess.Popen(
                [
                    ECOTRAIN,
                    "run",
                    "-q",
                    "--tag",
                    f"i={i}",
                    "--",
                    sys.executable,
                    "-c",
                    f"import time,sys; time.sleep(1); sys.exit({i % 5})",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(n)
        ]
        codes = [p.wait() for p in procs]
        t_exit = time.monotonic() - t0
        spool = Path(tmp) / "data" / "spool"
        from store_helpers import wait_for_tagged_runs

        rows = wait_for_tagged_runs(db, spool, n, timeout_s=600)
        t_all = time.monotonic() - t0
        with sqlite3.connect(db) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        wrong = [
            r
            for r in rows
            if not (r[2] == int(r[0]) % 5 and r[1] == ("finished" if r[2] == 0 else "failed"))
        ]
        right = sum(
            1
            for i, status, code in rows
            if code == int(i) % 5 and status == ("finished" if code == 0 else "failed")
        )
    return {
        "case": f"SQLite, {n} x `ecotrain run`",
        "launched": n,
        "recorded": len(rows),
        "correct": right,
        "exit codes ok": codes == [i % 5 for i in range(n)],
        "integrity": integrity,
        "wrong": wrong[:3],
        "wall_s (all exited)": round(t_exit, 1),
        "wall_s (all stored)": round(t_all, 1),
        "records/s": round(len(rows) / t_all, 1),
    }


def _pg_proc(url: str, ids: list[int], barrier, out, spool_dir: str) -> None:
    from store_helpers import make_record

    from ecotrain.store import spool
    from ecotrain.store.db import Store

    errors: list[str] = []
    inner = threading.Barrier(len(ids))

    def writer(i: int) -> None:
        store = Store(url, migrate=False, retry_s=120)
        inner.wait()
        for beat in range(4):
            extra = {"job_id": "b", "rank": i} if beat < 3 else {"status": "finished"}
            record = make_record(f"run-{i:05d}", beat=beat, **extra)
            try:
                store.write_record(record)
            except Exception as e:  # noqa: BLE001
                # as the run path does: the record waits in the spool for `ecotrain sync`
                errors.append(f"{type(e).__name__}: {e}"[:200])
                spool.spool(record, Path(spool_dir), target=url)

    threads = [threading.Thread(target=writer, args=(i,)) for i in ids]
    barrier.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(errors)


def pg_writers(admin_url: str, n: int, procs: int) -> dict:
    """``n`` concurrent writers (4 records each) into a fresh PostgreSQL database."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from ecotrain.store.db import Store

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"et_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        Store(url).engine.dispose()
        ctx = mp.get_context("fork")
        barrier = ctx.Barrier(procs + 1)
        out = ctx.Queue()
        chunks = [list(range(n))[k::procs] for k in range(procs)]
        spool_dir = tempfile.mkdtemp(prefix="et_bench_spool_")
        ps = [ctx.Process(target=_pg_proc, args=(url, c, barrier, out, spool_dir)) for c in chunks]
        for p in ps:
            p.start()
        barrier.wait()
        t0 = time.monotonic()
        errors = [e for _ in ps for e in out.get()]
        for p in ps:
            p.join()
        wall = time.monotonic() - t0
        eng = create_engine(url)
        query = text(
            "SELECT count(*), count(*) FILTER (WHERE status='finished' AND cpu_energy_j = 300) "
            "FROM runs"
        )
        with eng.connect() as conn:
            direct = conn.execute(query).one()
        spooled = len(list(Path(spool_dir).glob("*.json")))
        t1 = time.monotonic()
        from ecotrain.store.db import sync_all

        sync_all(Path(spool_dir), default_target=url, lineage=False)
        sync_wall = time.monotonic() - t1
        left = len(list(Path(spool_dir).glob("*.json")))
        with eng.connect() as conn:
            rows = conn.execute(query).one()
            samples = conn.execute(text("SELECT count(*) FROM samples")).scalar()
        eng.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    return {
        "case": f"PostgreSQL, {n} writers x 4 records ({procs} processes)",
        "launched": n,
        "written directly": direct[0],
        "final state directly": direct[1],
        "failed writes (spooled)": len(errors),
        "runs in spool": spooled,
        "recorded after sync": rows[0],
        "correct after sync": rows[1],
        "left in spool": left,
        "samples ok": samples == 3 * n,
        "first error": errors[0] if errors else None,
        "wall_s": round(wall, 1),
        "sync_s": round(sync_wall, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=128)
    p.add_argument("--writers", type=int, default=1024)
    p.add_argument("--procs", type=int, default=8)
    p.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--skip-sqlite", action="store_true")
    a = p.parse_args()
    results = []
    if not a.skip_sqlite:
        results.append(sqlite_runs(a.runs))
        print(results[-1], flush=True)
    results.append(pg_writers(a.pg, a.writers, a.procs))
    print(results[-1], flush=True)
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end\n")
    for r in results:
        print("| " + " | ".join(f"{k}: {v}" for k, v in r.items()) + " |")


if __name__ == "__main__":
    main()
