"""Run records for store tests, built the way the run path builds them (plain data)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path


def make_record(
    run_id: str,
    *,
    beat: int = 0,
    status: str = "running",
    started: datetime = datetime(2024, 5, 1, 12, 0, 0),
    job_id: str | None = None,
    rank: int | None = None,
    gpu_energy_j: float | None = None,
    samples: int = 3,
) -> dict:
    """A record of ``run_id`` at heartbeat ``beat`` (one beat = 30 s; energy grows 100 J/beat)."""
    heartbeat = started + timedelta(seconds=30 * beat)
    final = status != "running"
    return {
        "run": {
            "run_id": run_id,
            "project": "lab",
            "user": "ada",
            "host": "node01",
            "pid": 4242,
            "job_id": job_id,
            "rank": rank,
            "local_rank": rank,
            "node": "node01",
            "command": ["python", "train.py", "--lr", "3e-4"],
            "tags": {"lr": "3e-4", "beat": str(beat)},
            "source": "run",
            # ISO strings with an offset, as a spooled record carries them
            "started_at": started.isoformat() + "+00:00",
            "heartbeat_at": heartbeat.isoformat() + "+00:00",
            "ended_at": heartbeat.isoformat() + "+00:00" if final else None,
            "duration_s": 30.0 * beat,
            "status": status,
            "exit_code": 0 if status == "finished" else None,
            "cpu_energy_j": 100.0 * beat,
            "cpu_method": "modelled",
            "gpu_energy_j": gpu_energy_j,
            "gpu_method": "measured" if gpu_energy_j is not None else None,
            "gpu_devices": [{"index": 0, "uuid": "GPU-aaaa", "method": "measured"}],
            "notes": [f"beat {beat}"],
        },
        "samples": [[float(i), 200.0 + i, 50.0, 5.0] for i in range(samples)],
    }


def wait_for_tagged_runs(db: Path, spool: Path, n: int, timeout_s: float) -> list[tuple]:
    """(tags.i, status, exit_code) of every run in the SQLite file at ``db``, once ``n`` runs
    are there, none still running, and the spool is empty — or whatever is there at timeout.

    The file and its tables may not exist yet: on a loaded machine every wrapper can end
    before its writer is ready, leaving all finals to detached syncs. Opened read-only, so
    polling never creates an empty database.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + timeout_s
    rows: list[tuple] = []
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                rows = conn.execute(
                    "SELECT json_extract(tags, '$.i'), status, exit_code FROM runs"
                ).fetchall()
        except sqlite3.OperationalError:
            rows = []
        done = len(rows) >= n and all(r[1] != "running" for r in rows)
        if done and not list(spool.glob("*.json")):
            break
        time.sleep(0.2)
    return rows


def links(db: Path) -> list[dict]:
    """Every run-checkpoint link with its run's project and energy, after `ecotrain sync`
    (which resolves the hashes a run left pending)."""
    import sqlite_utils

    from tests.conftest import run_cli

    assert run_cli("sync", "-q").returncode == 0
    return list(
        sqlite_utils.Database(db).query(
            "select r.project, r.run_id, r.facility_energy_kwh, r.it_energy_kwh, r.duration_s, "
            "l.checkpoint_id, l.role, l.path, l.written_s, l.energy_share, l.detected_by "
            "from run_checkpoints l join runs r using (run_id) order by r.started_at, l.role"
        )
    )


def runs_by_project(db: Path) -> dict[str, dict]:
    """The runs of a SQLite store, by project (one run per project in the tests using it)."""
    import sqlite_utils

    return {r["project"]: r for r in sqlite_utils.Database(db)["runs"].rows}
