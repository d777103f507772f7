"""The database path of time-resolved accounting (`apply_to_runs`): bulk reads in chunks give
the same figures as the run-by-run computation, and as before it was made bulk."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import ecotrain.grid_series as gs
from ecotrain.store.db import Store
from ecotrain.store.queries import run_samples
from ecotrain.store.schema import runs

START = datetime(2024, 3, 1)

# What apply_to_runs stored for the fixture below before the bulk read (commit d21b283, one
# SQLAlchemy query per chunk and a plain loop per point), to the last bit.
BEFORE = {
    "before": (None, None),
    "late-first": (0.32278047083333333, 161.39023541666666),
    "no-energy": (None, None),
    "no-timeline": (0.24047661, 160.31774),
    "other-region": (None, None),
    "over-hole": (None, None),
    "r0": (1.0892379825681198, 143.92806562094867),
    "r1": (0.27115500752287724, 147.51389433703244),
    "r2": (0.986034499058565, 143.39653630063162),
    "r3": (0.5048380926381781, 143.54519703206475),
    "r4": (0.6681566308929299, 144.45778853013047),
    "r5": (0.822282273402599, 144.94447601259716),
    "r6": (0.4919767926945149, 134.8696978268042),
    "r7": (0.014041708224437895, 139.49998807359503),
    "r8": (0.7182582302624211, 138.41411997397864),
    "zeros": (0.09059259999999998, 129.41799999999998),
}


def _fixture(store: Store, csv: Path) -> None:
    """Four days of hourly intensity with a 3-hour hole, and runs of every shape: several
    components (some unknown), no timeline, only zeros, one over the hole, one starting
    before the series, one without energy, one unfinished, one in another region."""
    rng = random.Random(3)
    lines = ["timestamp,zone,g_per_kwh"]
    for h in range(96):
        if 50 <= h < 53:
            continue  # the hole
        ts = START + timedelta(hours=h)
        lines.append(f"{ts:%Y-%m-%dT%H:%M:%S}Z,FRA,{100 + 80 * rng.random():.3f}")
    csv.write_text("\n".join(lines) + "\n")

    def record(run_id: str, hour: float, duration: float, kwh: float | None, samples, **kw):
        started = START + timedelta(hours=hour)
        run = {
            "run_id": run_id,
            "project": "p",
            "started_at": started.isoformat(),
            "ended_at": (started + timedelta(seconds=duration)).isoformat(),
            "duration_s": duration,
            "status": "finished",
            "region": "FRA",
            "facility_energy_kwh": kwh,
            "intensity_g_per_kwh": 56.0,
            "co2_kg": None if kwh is None else kwh * 0.056,
        }
        run.update(kw)
        store.write_record({"run": run, "samples": samples})

    for i in range(9):
        duration = rng.uniform(600, 20 * 3600)
        n = rng.randint(2, 300)
        samples = []
        for k in range(n):
            gpu = rng.uniform(50, 700)
            cpu = None if k % 7 == 3 else rng.uniform(10, 90)
            ram = None if i % 2 else rng.uniform(1, 9)
            samples.append([duration * k / (n - 1), gpu, cpu, ram])
        record(f"r{i}", rng.uniform(0, 40), duration, rng.uniform(0.1, 9.0), samples)
    record("no-timeline", 10.25, 5000, 1.5, [])
    record("zeros", 20.5, 3600, 0.7, [[0, 0, 0, 0], [3600, 0, 0, 0]])
    record("late-first", 30.1, 4000, 2.0, [[400, 100, 20, 5], [3000, 300, 20, 5]])
    record("over-hole", 49.5, 7200, 1.0, [[0, 100, 0, 0]])  # mostly in the hole: none
    record("before", -0.5, 7200, 1.0, [[0, 100, 0, 0]])  # a quarter before the series: none
    record("no-energy", 12, 3600, None, [[0, 100, 0, 0]])
    record("other-region", 12, 3600, 1.0, [[0, 100, 0, 0]], region="DEU")


def _figures(store: Store) -> dict[str, tuple]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                runs.c.run_id,
                runs.c.co2_series_kg,
                runs.c.intensity_series_g_per_kwh,
                runs.c.co2_series_method,
            )
        )
        return {r[0]: tuple(r[1:]) for r in rows}


def _check(store: Store, csv: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple]:
    _fixture(store, csv)
    gs.import_file(store.engine, csv, apply=False)
    monkeypatch.setattr(gs, "CHUNK", 4)  # several chunks, a run's points never split
    assert gs.apply_to_runs(store.engine, "FRA") == 12
    got = _figures(store)
    series = gs.load_series(store.engine, "FRA")
    for run_id, figure in got.items():
        with store.engine.connect() as conn:
            row = dict(conn.execute(select(runs).where(runs.c.run_id == run_id)).one()._mapping)
        timeline = [
            (s["t_s"], (s["gpu_w"] or 0.0) + (s["cpu_w"] or 0.0) + (s["ram_w"] or 0.0))
            for s in run_samples(store.engine, run_id)
        ]
        one = gs.time_resolved(row, timeline, series) if row["region"] == "FRA" else None
        # exactly the run-by-run figure (no tolerance)
        assert figure == (tuple(one[c] for c in gs.SERIES_COLUMNS) if one else (None,) * 3)
    return got


def test_bulk_database_path_matches_run_by_run_and_before(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = _check(Store(db_path), tmp_path / "fra.csv", monkeypatch)
    for run_id in ("over-hole", "before", "no-energy", "other-region"):
        assert got[run_id] == (None, None, None)
    assert "evenly" in got["no-timeline"][2] and "(2 points)" in got["zeros"][2]
    assert {k: v[:2] for k, v in got.items()} == BEFORE


def test_bulk_database_path_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(pg_url)
    got = _check(store, tmp_path / "fra.csv", monkeypatch)
    assert {k: v[:2] for k, v in got.items()} == BEFORE
    store.engine.dispose()
