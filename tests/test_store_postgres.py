"""The store on a real PostgreSQL (and the same checks on SQLite where they apply):
schema creation, `ecotrain db upgrade/info`, round trips, migrations, concurrent upgrades."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest
from conftest import run_cli
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from store_helpers import make_record

from ecotrain.store import migrations
from ecotrain.store.db import Store
from ecotrain.store.queries import get_run, list_runs, run_samples
from ecotrain.store.schema import SCHEMA_VERSION, meta, metadata, runs


def _with_password(url: str, password: str) -> str:
    # Trust auth ignores the password: the URL still carries one, which must never show.
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def test_db_upgrade_and_info_on_postgresql(pg_url: str) -> None:
    url = _with_password(pg_url, "hunter2")
    up = run_cli("db", "upgrade", "--db", url)
    assert up.returncode == 0, up.stderr
    assert f"schema none -> {SCHEMA_VERSION}" in up.stdout
    assert "hunter2" not in up.stdout + up.stderr and ":***@" in up.stdout

    again = run_cli("db", "upgrade", "--db", url)
    assert f"schema {SCHEMA_VERSION} -> {SCHEMA_VERSION}" in again.stdout

    info = run_cli("db", "info", "--db", url, "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert "hunter2" not in info.stdout
    assert data["url"].startswith("postgresql+psycopg://postgres:***@127.0.0.1:5432/et_")
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["runs_rows"] == 0 and data["samples_rows"] == 0

    # the tables are really there, in PostgreSQL's catalogue
    eng = create_engine(pg_url)
    names = set(inspect(eng).get_table_names())
    eng.dispose()
    assert {"runs", "samples", "checkpoints", "run_checkpoints", "ecotrain_meta"} <= names


def test_round_trip_json_and_datetimes(pg_url: str) -> None:
    store = Store(pg_url)
    record = make_record("r1", beat=2, gpu_energy_j=1234.5)
    record["run"]["started_at"] = "2024-05-01T14:00:00+02:00"  # = 12:00 UTC
    store.write_record(record)

    run = get_run(store.engine, "r1")
    assert run["command"] == ["python", "train.py", "--lr", "3e-4"]
    assert run["tags"] == {"lr": "3e-4", "beat": "2"}
    assert run["gpu_devices"] == [{"index": 0, "uuid": "GPU-aaaa", "method": "measured"}]
    assert run["notes"] == ["beat 2"]
    # naive UTC on every backend
    assert run["started_at"] == datetime(2024, 5, 1, 12, 0, 0)
    assert run["heartbeat_at"] == datetime(2024, 5, 1, 12, 1, 0)
    assert run["gpu_energy_j"] == 1234.5 and run["cpu_energy_j"] == 200.0
    # a May 2024 heartbeat is long stale: shown as lost, stored as running
    assert run["status"] == "lost"
    assert [s["gpu_w"] for s in run_samples(store.engine, "r1")] == [200.0, 201.0, 202.0]
    # JSON text search works on PostgreSQL's JSON type too
    from ecotrain.store.queries import RunFilter

    assert [r["run_id"] for r in list_runs(store.engine, RunFilter(text="TRAIN.PY"))] == ["r1"]
    assert list_runs(store.engine, RunFilter(tags={"lr": "3e-4"}))[0]["run_id"] == "r1"
    store.engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_newer_state_wins_and_replays_are_idempotent(backend: str, request) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    store = Store(url)
    store.write_record(make_record("r1", beat=3))
    store.write_record(make_record("r1", beat=1))  # an old heartbeat arriving late
    store.write_record(make_record("r1", beat=3))  # the same state again (a retried push)
    store.write_record(make_record("r1", beat=5, status="finished", samples=4))
    store.write_record(make_record("r1", beat=4))  # a spooled heartbeat replayed after the end
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT status, cpu_energy_j FROM runs")).all()
        n_samples = conn.execute(text("SELECT count(*) FROM samples")).scalar()
    assert rows == [("finished", 500.0)]
    assert n_samples == 4
    store.engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_final_state_wins_over_running_whatever_the_timestamps(backend: str, request) -> None:
    """A heartbeat built a moment after the final record (the sampler's last beat racing the
    end of the run) must neither block the final record nor replace it."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    store = Store(url)
    store.write_record(make_record("r1", beat=6))  # the racing heartbeat, stamped later
    store.write_record(make_record("r1", beat=5, status="failed"))
    store.write_record(make_record("r1", beat=7))  # and one replayed after it
    store.write_record(make_record("r2", beat=5, status="finished"))
    store.write_record(make_record("r2", beat=4, status="killed"))  # two finals: newer wins
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT run_id, status, cpu_energy_j FROM runs ORDER BY 1")).all()
    assert rows == [("r1", "failed", 500.0), ("r2", "finished", 500.0)]
    store.engine.dispose()


def _make_v1(url: str) -> None:
    """A database as ecotrain 0.1 left it: schema version 1, no progress/prediction."""
    eng = create_engine(url)
    with eng.begin() as conn:
        metadata.create_all(conn)
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN progress")
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN prediction")
        conn.execute(meta.insert().values(key="schema_version", value="1"))
        record = make_record("old-run", beat=2, status="finished")["run"]
        from ecotrain.store.db import RUN_COLUMNS, _clean

        row = _clean(record, RUN_COLUMNS - {"progress", "prediction"})
        conn.execute(runs.insert().values(**{k: v for k, v in row.items()}))
    eng.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_upgrade_from_version_1(backend: str, request, tmp_path) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'old.db'}"
    )
    _make_v1(url)
    up = run_cli("db", "upgrade", "--db", url)
    assert up.returncode == 0, up.stderr
    assert f"schema 1 -> {SCHEMA_VERSION}" in up.stdout
    eng = create_engine(url)
    cols = {c["name"] for c in inspect(eng).get_columns("runs")}
    assert {"progress", "prediction"} <= cols
    with eng.connect() as conn:
        assert migrations.current_version(conn) == SCHEMA_VERSION
        kept = conn.execute(select(runs.c.run_id, runs.c.cpu_energy_j)).all()
    eng.dispose()
    assert kept == [("old-run", 200.0)]  # the data survived
    # and the new columns take values
    store = Store(url)
    record = make_record("new-run", beat=1)
    record["run"]["progress"] = {"kind": "step", "step": 5, "total": 10, "fraction": 0.5}
    store.write_record(record)
    assert get_run(store.engine, "new-run")["progress"]["fraction"] == 0.5
    store.engine.dispose()


def test_newer_database_is_refused(pg_url: str) -> None:
    Store(pg_url).engine.dispose()
    eng = create_engine(pg_url)
    with eng.begin() as conn:
        conn.execute(meta.update().values(value=str(SCHEMA_VERSION + 1)))
    eng.dispose()
    out = run_cli("db", "upgrade", "--db", pg_url)
    assert out.returncode == 2
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_migration_step_runs_once_under_many_concurrent_upgrades(
    backend: str, request, tmp_path, monkeypatch
) -> None:
    """16 processes' worth of engines upgrade one database at once: the (test-only) step
    from SCHEMA_VERSION to SCHEMA_VERSION+1 runs exactly once and nobody fails."""
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'c.db'}"
    )
    Store(url).engine.dispose()  # at today's version
    calls: list[int] = []
    lock = threading.Lock()

    def step(conn) -> None:
        with lock:
            calls.append(1)
        migrations._add_columns(conn, "runs", {"extra_test_col": "TEXT"})

    target = SCHEMA_VERSION + 1
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", target)
    monkeypatch.setitem(migrations.MIGRATIONS, target, step)

    errors: list[BaseException] = []
    results: list[tuple] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        store = Store(url, migrate=False)
        try:
            barrier.wait()
            results.append(migrations.upgrade(store.engine))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            store.engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(calls) == 1
    assert sorted(results).count((SCHEMA_VERSION, target)) == 1
    assert sorted(results).count((target, target)) == 15
    eng = create_engine(url)
    assert "extra_test_col" in {c["name"] for c in inspect(eng).get_columns("runs")}
    eng.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_many_processes_create_the_schema_at_once(backend: str, request, tmp_path) -> None:
    """32 fresh Stores on an empty database at the same moment: one creates, none fails."""
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'fresh.db'}"
    )
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(32)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_create_and_write, args=(url, i, barrier, results)) for i in range(32)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert outcomes == ["ok"] * 32
    store = Store(url)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 32
        assert conn.execute(text("SELECT count(*) FROM ecotrain_meta")).scalar() == 1
    store.engine.dispose()


def _create_and_write(url: str, i: int, barrier, results) -> None:
    try:
        barrier.wait(30)
        store = Store(url)
        store.write_record(make_record(f"run-{i:03d}", beat=1))
        store.engine.dispose()
        results.put("ok")
    except Exception as e:  # noqa: BLE001
        results.put(f"{type(e).__name__}: {e}")
