"""Lab-wide store: real PostgreSQL, never losing a run, many writers, owner-only files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlite_utils
from sqlalchemy import create_engine, func, select, text

from ecotrain.store import spool
from ecotrain.store.db import Store
from ecotrain.store.migrations import MIGRATIONS, current_version, upgrade
from ecotrain.store.queries import get_run
from ecotrain.store.schema import SCHEMA_VERSION, runs
from tests.conftest import ECOTRAIN, run_cli
from tests.pg import pg_url  # noqa: F401 - fixture

PY = sys.executable


def record(run_id: str, status: str = "finished", minute: int = 1, **extra) -> dict:
    start = datetime(2026, 11, 20, 10, 0)
    return {
        "run": {
            "run_id": run_id,
            "project": "lab",
            "status": status,
            "started_at": start,
            "heartbeat_at": start + timedelta(minutes=minute),
            "command": ["python", "x.py"],
            "tags": {"k": "v"},
            "it_energy_kwh": float(minute),
            "co2_kg": 0.1 * minute,
            **extra,
        },
        "samples": [[0.0, 1.0, 2.0, 3.0], [1.0, 1.5, 2.5, 3.5]],
    }


def test_postgres_round_trip_and_db_commands(pg_url: str) -> None:  # noqa: F811
    masked = pg_url.replace("postgres@", "postgres:hunter2@")
    up = run_cli("db", "upgrade", "--db", masked)
    assert up.returncode == 0, up.stderr
    assert f"-> {SCHEMA_VERSION}" in up.stdout and "hunter2" not in up.stdout
    store = Store(pg_url)
    store.write_record(record("r1", status="running", minute=1))
    store.write_record(record("r1", status="finished", minute=5, exit_code=0))
    store.write_record(record("r1", status="running", minute=3))  # stale replay: ignored
    row = get_run(store.engine, "r1")
    assert row["status"] == "finished" and row["it_energy_kwh"] == 5.0
    assert row["tags"] == {"k": "v"} and row["command"] == ["python", "x.py"]
    assert row["started_at"] == datetime(2026, 11, 20, 10, 0)
    info = run_cli("db", "info", "--db", masked, "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["runs_rows"] == 1 and data["samples_rows"] == 2
    assert "***" in data["url"] and "hunter2" not in info.stdout


def test_migration_runner_applies_missing_steps(pg_url: str, monkeypatch) -> None:  # noqa: F811
    store = Store(pg_url)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE ecotrain_meta SET value = :v WHERE key = 'schema_version'"),
            {"v": str(SCHEMA_VERSION - 1)},
        )
    applied = []
    monkeypatch.setitem(MIGRATIONS, SCHEMA_VERSION, lambda conn: applied.append(conn))
    assert upgrade(store.engine) == (SCHEMA_VERSION - 1, SCHEMA_VERSION)
    assert len(applied) == 1
    with store.engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION


def test_256_concurrent_writers_on_postgres(pg_url: str) -> None:  # noqa: F811
    Store(pg_url)  # schema
    stores = [Store(pg_url) for _ in range(4)]  # bounded connection pools
    errors: list[str] = []

    def writer(i: int) -> None:
        store = stores[i % len(stores)]
        try:
            store.write_record(record(f"w{i:03d}", status="running", minute=1))
            store.write_record(record(f"w{i:03d}", status="finished", minute=2))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(256)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with stores[0].engine.connect() as conn:
        counts = dict(
            conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status)).all()
        )
    assert counts == {"finished": 256}


def test_many_processes_create_the_schema_at_once(pg_url: str) -> None:  # noqa: F811
    code = f"from ecotrain.store.db import Store; Store({pg_url!r})"
    procs = [subprocess.Popen([PY, "-c", code], stderr=subprocess.PIPE) for _ in range(6)]
    assert all(p.wait(timeout=60) == 0 for p in procs), [p.stderr.read() for p in procs]
    with create_engine(pg_url).connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION


def test_64_concurrent_runs_into_one_sqlite_file(db_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [ECOTRAIN, "run", "-q", "--project", "many", "--", PY, "-c", "pass"],
            stderr=subprocess.PIPE,
        )
        for _ in range(64)
    ]
    assert all(p.wait(timeout=180) == 0 for p in procs)
    assert run_cli("sync", "-q").returncode == 0
    db = sqlite_utils.Database(db_path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = list(db["runs"].rows)
    assert len(rows) == 64 and len({r["run_id"] for r in rows}) == 64
    assert {r["status"] for r in rows} == {"finished"}


def test_unreachable_database_spools_then_syncs_once(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    # A database that does not exist yet stands for a server that is down.
    later = pg_url + "_later"
    env = {"ECOTRAIN_DB": later}
    t0 = time.monotonic()
    result = run_cli("run", "--", PY, "-c", "import sys; sys.exit(3)", env=env)
    assert result.returncode == 3
    assert time.monotonic() - t0 < 20
    pending = run_cli("sync", "--status", env=env)
    assert "1 record(s) pending" in pending.stdout
    down = run_cli("sync", env=env)
    assert down.returncode == 1 and "kept in spool" in down.stderr
    assert len(spool.pending()) == 1
    # The server comes back: create the database, sync (twice: idempotent).
    admin = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{later.rsplit("/", 1)[1]}"'))
    try:
        assert run_cli("sync", env=env).returncode == 0
        assert spool.pending() == []
        store = Store(later)
        store.write_record(record("extra"))
        assert run_cli("sync", env=env).returncode == 0
        with store.engine.connect() as conn:
            statuses = conn.execute(select(runs.c.status, runs.c.exit_code)).all()
        assert sorted(statuses, key=str) == sorted([("failed", 3), ("finished", None)], key=str)
        store.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{later.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()


def test_retried_push_writes_no_duplicates(db_path: Path, tmp_path: Path) -> None:
    store = Store(str(db_path))
    for i in range(3):
        spool.spool(record(f"s{i}"), target=str(db_path))
    # A failure mid-batch: the second write raises once; its file stays for the retry.
    real = store.write_record
    calls = {"n": 0}

    def flaky(rec: dict) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("connection reset")
        real(rec)

    store.write_record = flaky
    pushed, errors = store.sync_spool()
    assert (pushed, len(errors)) == (2, 1) and len(spool.pending()) == 1
    store.write_record = real
    assert store.sync_spool() == (1, [])
    spool.spool(record("s0"), target=str(db_path))  # the same record pushed again
    store.sync_spool()
    assert sorted(r["run_id"] for r in sqlite_utils.Database(db_path)["runs"].rows) == [
        "s0",
        "s1",
        "s2",
    ]


def test_store_and_spool_are_owner_only(db_path: Path) -> None:
    result = run_cli(
        "run", "--", PY, "-c", "pass", env={"ECOTRAIN_DB": "postgresql://x@127.0.0.1:1/x"}
    )
    assert result.returncode == 0
    directory = spool.spool_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (spooled,) = spool.pending()
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o600
    assert run_cli("runs").returncode == 0  # creates the default SQLite store
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
