"""Time-resolved accounting at lab scale: 100,000 runs against a year of hourly intensity.

    python bench/grid_series.py [--runs 100000] [--db-runs 100000] [--seed 7] [--workdir DIR]

A year (2024, 8,784 hours) of synthetic hourly intensity; ``--runs`` runs starting at random
times in the year, lasting 5 min to 3 days (log-uniform), each with a power timeline of one
point a minute up to ecotrain's cap of 2,000 points (so a run longer than 33 h has 2,000),
power a random walk around 300 W. Generated one at a time, in one pass:

1. **In memory** (the accounting itself): every run goes through ``time_resolved`` (power
   curve + ``weighted_intensity``); only those calls are timed.
2. **From the database**: the first ``--db-runs`` runs are written to a SQLite store (runs
   and timelines; not timed with the rest), the year is imported from a plain CSV through
   ``import_file``, and then ``apply_to_runs`` (read timelines, weight, update rows) is
   timed on its own, which is the issue's figure.

Prints Markdown rows and, last, one JSON line (bench/README.md's hook protocol); writes
bench/results/grid_series.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ecotrain.grid_series import (
    import_file,
    make_series,
    time_resolved,
)

YEAR0 = datetime(2024, 1, 1)
HOURS = 366 * 24
CAP = 2000


def year_series(rng: random.Random) -> list[tuple[float, float]]:
    """Hourly g/kWh with a daily and a seasonal cycle plus noise, never below 5."""
    out = []
    for h in range(HOURS):
        day = 60 * math.cos(2 * math.pi * ((h % 24) - 15) / 24)
        season = 80 * math.cos(2 * math.pi * (h / 24 - 15) / 366)
        out.append(
            (YEAR0.replace(tzinfo=UTC).timestamp() + h * 3600, max(5.0, 250 + day + season
                                                                    + rng.gauss(0, 20)))
        )  # fmt: skip
    return out


def make_runs(n: int, rng: random.Random):
    """Runs inside the year, with their timelines (t_s, watts), generated one at a time (a
    100,000-run list would hold ~50 M points in memory)."""
    for i in range(n):
        duration = math.exp(rng.uniform(math.log(300), math.log(3 * 86400)))
        start = YEAR0 + timedelta(seconds=rng.uniform(0, (HOURS - 80) * 3600))
        points = max(2, min(CAP, int(duration // 60)))
        step = duration / (points - 1)
        w, timeline = 300.0, []
        for k in range(points):
            w = min(700.0, max(50.0, w + rng.gauss(0, 15)))
            timeline.append((k * step, w))
        kwh = sum(p[1] for p in timeline) / len(timeline) * duration / 3.6e6 * 1.2
        run = {
            "run_id": f"bench-{i:06d}",
            "started_at": start,
            "duration_s": duration,
            "facility_energy_kwh": kwh,
        }
        yield run, timeline


def bench(runs, series, n_db: int, store) -> dict[str, float]:
    """One pass over the generated runs: time the in-memory accounting of each, and write
    the first ``n_db`` (runs rows, then their timelines through the driver's executemany)."""
    from ecotrain.store.schema import runs as runs_table

    out = {"runs": 0, "points": 0, "accounted": 0, "seconds": 0.0, "write_s": 0.0}
    out |= {"db_runs": 0, "db_points": 0}
    batch_runs, batch_points = [], []

    def flush() -> None:
        t0 = time.perf_counter()
        with store.engine.begin() as conn:
            conn.execute(runs_table.insert(), batch_runs)
            cursor = conn.connection.cursor()
            cursor.executemany(
                "INSERT INTO samples (run_id, t_s, gpu_w) VALUES (?, ?, ?)", batch_points
            )
            cursor.close()
        out["write_s"] += time.perf_counter() - t0
        out["db_points"] += len(batch_points)
        batch_runs.clear()
        batch_points.clear()

    for run, timeline in runs:
        out["runs"] += 1
        out["points"] += len(timeline)
        t0 = time.perf_counter()
        if time_resolved(run, timeline, series) is not None:
            out["accounted"] += 1
        out["seconds"] += time.perf_counter() - t0
        if out["db_runs"] < n_db:
            out["db_runs"] += 1
            end = run["started_at"] + timedelta(seconds=run["duration_s"])
            batch_runs.append(
                {**run, "project": "bench", "status": "finished", "ended_at": end, "region": "FRA"}
            )
            batch_points.extend((run["run_id"], t, w) for t, w in timeline)
            if len(batch_runs) >= 1000:
                flush()
    if batch_runs:
        flush()
    return out


def bench_db(store, points, workdir: Path) -> dict[str, float]:
    """Import the year, then time ``apply_to_runs`` over every stored run."""
    from ecotrain.grid_series import apply_to_runs

    csv = workdir / "year.csv"
    with csv.open("w") as f:
        f.write("timestamp,zone,g_per_kwh\n")
        for t, v in points:
            f.write(f"{datetime.fromtimestamp(t, UTC).isoformat()},FRA,{v:.2f}\n")
    t0 = time.perf_counter()
    _, imported = import_file(store.engine, csv, apply=False)
    import_s = time.perf_counter() - t0
    load = _load()
    t0, cpu0 = time.perf_counter(), time.process_time()
    done = apply_to_runs(store.engine, "FRA")
    apply_s, apply_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "apply_cpu_s": apply_cpu_s,
        "apply_load": f"{load} before, {_load()} after",
        "import_points": imported[0].points,
        "import_s": import_s,
        "accounted": done,
        "apply_s": apply_s,
    }


def _load() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--db-runs", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, help="keep the database here (default: temporary)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    from ecotrain.store.db import Store

    rng = random.Random(args.seed)
    points = year_series(rng)
    series = make_series(points, zone="FRA", region="FRA", source="synthetic year")
    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        store = Store(str(workdir / "bench.db"))
        t0 = time.perf_counter()
        mem = bench(make_runs(args.runs, rng), series, args.db_runs, store)
        wall_s = time.perf_counter() - t0
        db = bench_db(store, points, workdir) if args.db_runs else None
    load_after = _load()
    n_points = mem["points"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| series | {len(points):,} hourly points (one year) |",
        f"| runs | {mem['runs']:,}, {n_points:,} timeline points "
        f"(mean {n_points / mem['runs']:.0f} a run); generating and writing them: {wall_s:.0f} s |",
        f"| time-resolved accounting, in memory | **{mem['seconds']:.1f} s** "
        f"({mem['runs'] / mem['seconds']:,.0f} runs/s; {mem['accounted']:,} accounted) |",
    ]
    if db:
        lines += [
            f"| database: {mem['db_runs']:,} runs, {mem['db_points']:,} timeline points "
            f"written (SQLite) | {mem['write_s']:.0f} s |",
            f"| `import_file` of the year (plain CSV, upsert) | {db['import_s']:.2f} s |",
            f"| `apply_to_runs` (read timelines, weight, update) | **{db['apply_s']:.1f} s** "
            f"({mem['db_runs'] / db['apply_s']:,.0f} runs/s; {db['accounted']:,} accounted) |",
            f"| `apply_to_runs`, CPU time of this process | **{db['apply_cpu_s']:.1f} s** |",
            f"| load average (1, 5, 15 min) around `apply_to_runs` | {db['apply_load']} |",
        ]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grid_series.md").write_text(
        f"# Time-resolved accounting benchmark\n\n`python bench/grid_series.py --runs "
        f"{args.runs} --db-runs {args.db_runs}` on {machine}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, machine shared with other jobs: load "
        f"average (1, 5, 15 min) {load_before} before, {load_after} after.\n\n{text}\n"
    )
    figures = {"memory_runs": mem["runs"], "memory_s": round(mem["seconds"], 2)}
    if db:
        figures.update(
            db_runs=mem["db_runs"],
            db_apply_s=round(db["apply_s"], 2),
            db_apply_cpu_s=round(db["apply_cpu_s"], 2),
        )
    print(json.dumps({"name": "grid_series", "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
