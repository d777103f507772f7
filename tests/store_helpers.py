"""Run records for store tests, built the way the run path builds them (plain data)."""

from __future__ import annotations

from datetime import datetime, timedelta


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
