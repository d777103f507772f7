"""Shared fixtures: every test gets its own data dir, database and config, and no GPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ECOTRAIN = str(Path(sys.executable).parent / "ecotrain")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private world for one test: data dir, user config, database, cwd."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ECOTRAIN_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("ECOTRAIN_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("ECOTRAIN_DB", str(tmp_path / "ecotrain.db"))
    monkeypatch.setenv("ECOTRAIN_NO_GPU", "1")
    monkeypatch.setenv("ECOTRAIN_LOCK_DIR", str(home / "locks"))
    monkeypatch.setenv("ECOTRAIN_SAMPLE_INTERVAL_S", "0.1")
    for var in (
        "ECOTRAIN_REGION",
        "ECOTRAIN_PUE",
        "ECOTRAIN_PROJECT",
        "ECOTRAIN_REPLAY",
        "ECOTRAIN_RUN_ID",
        "SLURM_JOB_ID",
        "TORCHELASTIC_RUN_ID",
        "CUDA_VISIBLE_DEVICES",
    ):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


@pytest.fixture
def db_path(isolated: Path) -> Path:
    return isolated / "ecotrain.db"


def run_cli(
    *args: str,
    input: str | None = None,
    env: dict | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run the real `ecotrain` console script."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [ECOTRAIN, *args],
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )


def wait_synced(db: Path, run_id_prefix: str | None = None, timeout: float = 20.0) -> list[dict]:
    """Rows of the runs table once the (possibly detached) writer has stored them."""
    import time

    import sqlite_utils

    deadline = time.monotonic() + timeout
    while True:
        rows = []
        if db.exists():
            database = sqlite_utils.Database(db)
            if "runs" in database.table_names():
                rows = [
                    r
                    for r in database["runs"].rows
                    if run_id_prefix is None or r["run_id"].startswith(run_id_prefix)
                ]
        final = [r for r in rows if r["status"] != "running"]
        if final or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


# PostgreSQL for the lab-wide tests: the server CI provides (trust auth on loopback).
# ECOTRAIN_TEST_PG points elsewhere; ECOTRAIN_TEST_PG=skip skips them where no server runs
# (CI never sets it: there an unreachable server fails the tests).
PG_ADMIN_URL = os.environ.get(
    "ECOTRAIN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test (dropped after): its URL."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if PG_ADMIN_URL == "skip":
        pytest.skip("ECOTRAIN_TEST_PG=skip")
    name = f"et_{uuid.uuid4().hex[:16]}"
    admin = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    # CREATE DATABASE copies template1 and fails while another session (a second test run
    # on the same server) is copying it too: retry a few times.
    for attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            break
        except Exception as e:  # noqa: BLE001
            if "being accessed by other users" not in str(e) or attempt == 19:
                raise
            time.sleep(0.25)
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
