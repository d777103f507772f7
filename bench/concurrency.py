"""Many writers at once: runs recorded vs launched, for SQLite and PostgreSQL.

    python bench/concurrency.py [--sqlite-runs 128] [--pg-writers 1024] [--pg URL]

SQLite: N concurrent `ecotrain run` processes (small Python children) into one file.
PostgreSQL: M threads writing a heartbeat then a final state each through 8 Store pools,
into a fresh database on the server at 127.0.0.1:5432 (skipped if unreachable).
Prints Markdown table rows and a final JSON line (bench/run.py's protocol).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from ecotrain.store.db import Store
from ecotrain.store.schema import runs

ECOTRAIN = str(Path(sys.executable).parent / "ecotrain")


def sqlite_runs(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "ECOTRAIN_DB": f"{tmp}/e.db",
            "ECOTRAIN_DATA_DIR": f"{tmp}/data",
            "ECOTRAIN_CONFIG": f"{tmp}/none.toml",
            "ECOTRAIN_NO_GPU": "1",
        }
        t0 = time.monotonic()
        procs = [
            subprocess.Popen(
                [ECOTRAIN, "run", "-q", "--", sys.executable, "-c", "pass"],
                env=env,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(n)
        ]
        codes = [p.wait() for p in procs]
        wall = time.monotonic() - t0
        subprocess.run([ECOTRAIN, "sync", "-q"], env=env, check=False)
        import sqlite3

        conn = sqlite3.connect(f"{tmp}/e.db")
        recorded = conn.execute("select count(distinct run_id) from runs").fetchone()[0]
        integrity = conn.execute("pragma integrity_check").fetchone()[0]
        conn.close()
    return {
        "launched": n,
        "recorded": recorded,
        "failed_exits": sum(c != 0 for c in codes),
        "wall_s": round(wall, 2),
        "integrity": integrity,
    }


def pg_writers(n: int, admin_url: str) -> dict | None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"et_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001
        print(f"PostgreSQL unreachable, skipped: {e}".splitlines()[0], file=sys.stderr)
        return None
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        stores = [Store(url) for _ in range(8)]
        errors: list[str] = []
        start = datetime(2026, 1, 1)

        def write(i: int) -> None:
            base = {"run_id": f"b{i:05d}", "project": "bench", "started_at": start}
            try:
                store = stores[i % len(stores)]
                store.write_record(
                    {
                        "run": {
                            **base,
                            "status": "running",
                            "heartbeat_at": start + timedelta(minutes=1),
                        }
                    }
                )
                store.write_record(
                    {
                        "run": {
                            **base,
                            "status": "finished",
                            "heartbeat_at": start + timedelta(minutes=2),
                        }
                    }
                )
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        with stores[0].engine.connect() as conn:
            finished = conn.execute(
                select(func.count()).select_from(runs).where(runs.c.status == "finished")
            ).scalar()
        for s in stores:
            s.engine.dispose()
        return {
            "launched": n,
            "recorded": finished,
            "errors": len(errors),
            "wall_s": round(wall, 2),
            "writes_per_s": round(2 * n / wall, 1),
        }
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite-runs", type=int, default=128)
    parser.add_argument("--pg-writers", type=int, default=1024)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    lite = sqlite_runs(args.sqlite_runs)
    pg = pg_writers(args.pg_writers, args.pg)
    print("| store | writers launched | runs recorded | errors | wall (s) | note |")
    print("|---|---:|---:|---:|---:|---|")
    print(
        f"| SQLite (`ecotrain run` processes) | {lite['launched']} | {lite['recorded']} | "
        f"{lite['failed_exits']} | {lite['wall_s']} | integrity_check: {lite['integrity']} |"
    )
    if pg:
        print(
            f"| PostgreSQL (threads, 8 pools) | {pg['launched']} | {pg['recorded']} | "
            f"{pg['errors']} | {pg['wall_s']} | {pg['writes_per_s']} writes/s |"
        )
    figures = {f"sqlite_{k}": v for k, v in lite.items() if isinstance(v, int | float)}
    figures.update({f"pg_{k}": v for k, v in (pg or {}).items()})
    print(json.dumps({"name": "concurrency", "figures": figures}))


if __name__ == "__main__":
    main()
