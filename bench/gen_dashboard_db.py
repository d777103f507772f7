"""Generate a large dashboard benchmark database: 100,000 runs and 1,000 checkpoints.

    python bench/gen_dashboard_db.py /tmp/dash-bench.db [--runs 100000] [--checkpoints 1000]
    python bench/gen_dashboard_db.py postgresql://postgres@127.0.0.1/dashbench [--replace]

Runs spread over two years, 40 projects, 120 users, 60 hosts, 4 GPU models, 6 regions;
every run consumes one checkpoint and every 10th produces one (so the lineage is a DAG);
the 200 newest runs get a 500-point power timeline. Rows go in through SQLAlchemy Core
executemany in chunks, on the real schema (created by Store, so migrations apply).

TARGET is a SQLite path (the file is replaced) or a database URL (PostgreSQL: the lab-scale
benchmarks run there too). A database that already holds runs is only replaced with
``--replace``: the generator must never wipe a real store by a typo.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from datetime import timedelta
from pathlib import Path

from ecotrain.store.db import Store
from ecotrain.store.records import utcnow
from ecotrain.store.schema import checkpoints, run_checkpoints, runs, samples

GPUS = [("NVIDIA A100-SXM4-40GB", 400.0), ("NVIDIA H100 80GB HBM3", 700.0),
        ("NVIDIA V100-SXM2-16GB", 300.0), ("NVIDIA RTX A6000", 300.0)]  # fmt: skip
REGIONS = [("FRA", 56.0), ("USA/CA", 220.0), ("DEU", 380.0), ("CAN/QC", 2.0),
           ("USA/VA", 330.0), ("GBR", 210.0)]  # fmt: skip
CHUNK = 10_000


def is_url(target: str | Path) -> bool:
    """Whether ``target`` is a database URL rather than a SQLite path."""
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", str(target), re.I))


def prepare(target: str | Path, replace: bool) -> Store:
    """An empty store at ``target``: a SQLite file recreated, or a URL's tables dropped
    (only with ``replace`` if it holds runs)."""
    if not is_url(target):
        Path(target).unlink(missing_ok=True)
        return Store(str(target))
    from sqlalchemy import inspect, text

    from ecotrain.store.engine import make_engine, resolve_url
    from ecotrain.store.schema import metadata

    url = resolve_url(str(target))
    engine = make_engine(url)
    with engine.begin() as conn:
        if inspect(conn).has_table("runs"):
            n = conn.execute(text("SELECT count(*) FROM runs")).scalar()
            if n and not replace:
                raise SystemExit(
                    f"{target}: holds {n:,} runs; pass --replace to drop them and regenerate"
                )
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS ecotrain_meta")
    engine.dispose()
    return Store(url)


def generate(
    path: str | Path, n_runs: int, n_ckpts: int, seed: int = 7, replace: bool = True
) -> dict[str, float]:
    """Write the database at ``path`` (SQLite path or URL); returns timings in seconds."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    store = prepare(path, replace)
    now = utcnow()
    ckpt_ids = [f"sha256:{i:064x}" for i in range(n_ckpts)]
    ckpt_rows = [
        {
            "checkpoint_id": cid,
            "name": f"model-{i}",
            "size_bytes": rng.randint(10**8, 10**10),
            "first_seen_at": now - timedelta(days=730 - i * 730 // n_ckpts),
            # Every 20th is a published base model with a stated footprint. executemany needs
            # the same keys in every row, so the others carry explicit NULLs.
            "footprint_source": "catalogue" if i % 20 == 0 else None,
            "footprint_citation": "bench" if i % 20 == 0 else None,
            "fp_gpu_hours": 5000.0 if i % 20 == 0 else None,
            "fp_energy_kwh": 2000.0 if i % 20 == 0 else None,
            "fp_co2_kg": 800.0 if i % 20 == 0 else None,
        }
        for i, cid in enumerate(ckpt_ids)
    ]
    with store.engine.begin() as conn:
        conn.execute(checkpoints.insert(), ckpt_rows)
    run_rows, links = [], []
    produced = 0
    for i in range(n_runs):
        gpu, watts = rng.choice(GPUS)
        region, intensity = rng.choice(REGIONS)
        n_gpu = rng.choice([1, 1, 2, 4, 8])
        hours = rng.uniform(0.05, 24.0)
        gpu_kwh = watts * n_gpu * hours * rng.uniform(0.5, 0.9) / 1000
        it = gpu_kwh * 1.25
        facility = it * 1.56
        started = now - timedelta(seconds=rng.uniform(0, 730 * 86400))
        run_id = f"{i:08x}" + f"{rng.getrandbits(96):024x}"
        run_rows.append(
            {
                "run_id": run_id,
                "project": f"project-{rng.randint(0, 39)}",
                "user": f"user-{rng.randint(0, 119)}",
                "host": f"node{rng.randint(0, 59):02d}",
                "command": ["python", "train.py", "--lr", f"{rng.choice([1, 3])}e-4"],
                "tags": {"lr": f"{rng.choice([1, 3])}e-4"},
                "source": "run",
                "started_at": started,
                "ended_at": started + timedelta(hours=hours),
                "heartbeat_at": started + timedelta(hours=hours),
                "duration_s": hours * 3600,
                "status": rng.choice(["finished"] * 8 + ["failed", "killed"]),
                "exit_code": 0,
                "gpu_energy_j": gpu_kwh * 3.6e6,
                "gpu_method": "measured",
                "cpu_energy_j": gpu_kwh * 0.2 * 3.6e6,
                "cpu_method": "measured",
                "ram_energy_j": gpu_kwh * 0.05 * 3.6e6,
                "ram_method": "modelled",
                "it_energy_kwh": it,
                "pue": 1.56,
                "pue_source": "default",
                "facility_energy_kwh": facility,
                "region": region,
                "intensity_g_per_kwh": intensity,
                "intensity_source": "bench",
                "co2_kg": facility * intensity / 1000,
                "cost_usd": facility * 0.15,
                "cost_method": "electricity",
                "price": 0.15,
                "price_source": "bench",
                "gpu_model": gpu,
                "gpu_count": n_gpu,
                "gpu_hours": n_gpu * hours,
                "ecotrain_version": "bench",
            }
        )
        # Consume a checkpoint older than the ones this run may produce: the lineage is a DAG.
        consumed = rng.randrange(0, max(1, produced or n_ckpts // 10))
        links.append({"run_id": run_id, "checkpoint_id": ckpt_ids[consumed], "role": "consumed"})
        if i % 10 == 0 and produced < n_ckpts:
            produced_ckpt = min(n_ckpts - 1, consumed + 1 + rng.randrange(5))
            links.append(
                {"run_id": run_id, "checkpoint_id": ckpt_ids[produced_ckpt], "role": "produced"}
            )
            produced = max(produced, produced_ckpt)
        if len(run_rows) >= CHUNK:
            _flush(store, run_rows, links)
    _flush(store, run_rows, links)
    t_runs = time.perf_counter() - t0
    newest = sorted((r for r in _all_ids(store)), key=lambda r: r[1], reverse=True)[:200]
    sample_rows = [
        {
            "run_id": run_id,
            "t_s": t * 10.0,
            "gpu_w": 250 + 50 * rng.random(),
            "cpu_w": 40.0,
            "ram_w": 5.0,
        }  # fmt: skip
        for run_id, _ in newest
        for t in range(500)
    ]
    with store.engine.begin() as conn:
        conn.execute(samples.insert(), sample_rows)
    store.engine.dispose()
    return {"runs_s": t_runs, "total_s": time.perf_counter() - t0}


def _flush(store: Store, run_rows: list[dict], links: list[dict]) -> None:
    if not run_rows:
        return
    with store.engine.begin() as conn:
        conn.execute(runs.insert(), run_rows)
        conn.execute(run_checkpoints.insert(), links)
    run_rows.clear()
    links.clear()


def _all_ids(store: Store):
    from sqlalchemy import select

    with store.engine.connect() as conn:
        return conn.execute(select(runs.c.run_id, runs.c.started_at)).all()


def main() -> None:
    """Command line: the database path and sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="SQLite path or database URL (postgresql://...)")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--checkpoints", type=int, default=1_000)
    parser.add_argument(
        "--replace", action="store_true", help="drop the runs a database URL already holds"
    )
    args = parser.parse_args()
    timings = generate(args.path, args.runs, args.checkpoints, replace=args.replace)
    if is_url(args.path):
        from ecotrain.store.engine import mask_url

        where, size = mask_url(args.path), ""
    else:
        where, size = args.path, f", {Path(args.path).stat().st_size / 1e6:.0f} MB"
    print(
        f"{where}: {args.runs:,} runs, {args.checkpoints:,} checkpoints{size} "
        f"in {timings['total_s']:.1f} s (runs and links {timings['runs_s']:.1f} s)"
    )


if __name__ == "__main__":
    main()
