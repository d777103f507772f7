"""How long `ecotrain report` takes over a 10,000-run project, per format.

    python bench/report_bench.py [--runs 10000] [--db FILE] [--repeat 5] [--no-cli]

Generates one project of N runs into SQLite (300 days, 4 GPU models, 3 regions, mixed
measurement methods, an 8-way tag sweep, every 20th run fine-tuning one of 50 checkpoints),
then times build_report + render for each format (median of --repeat, and the first, cold
call), and the whole CLI once per format. Target: < 1 s per format. Prints a Markdown
table and, last, one JSON line (the bench/run.py hook protocol).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from ecotrain.reports import FORMATS, render
from ecotrain.reports.model import build_report
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from ecotrain.store.schema import checkpoints, run_checkpoints, runs

PROJECT = "bench-project"
GPUS = [("NVIDIA A100-SXM4-40GB", 400.0), ("NVIDIA H100 80GB HBM3", 700.0),
        ("NVIDIA V100-SXM2-16GB", 300.0), ("NVIDIA RTX A6000", 300.0)]  # fmt: skip
REGIONS = [("FRA", 56.0, "national grid mix 2023"), ("USA/CA", 220.0, "eGRID 2022"),
           ("DEU", 380.0, "national grid mix 2023")]  # fmt: skip
GPU_METHODS = ["measured", "measured", "measured", "integrated"]
CPU_METHODS = ["measured", "modelled"]


def generate(path: Path, n_runs: int, seed: int = 11) -> float:
    """Write the database; returns seconds taken."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    store = Store(str(path))
    start = datetime(2025, 1, 1)
    ckpts = [f"sha256:{i:064x}" for i in range(50)]
    rows, links = [], []
    for i in range(n_runs):
        gpu, watts = GPUS[i % len(GPUS)]
        region, g, source = REGIONS[i % len(REGIONS)]
        count = rng.choice([1, 2, 4, 8])
        hours = rng.uniform(0.1, 12.0)
        gpu_kwh = count * watts * hours / 1000 * rng.uniform(0.5, 0.9)
        cpu_kwh, ram_kwh = gpu_kwh * 0.12, gpu_kwh * 0.03
        it = gpu_kwh + cpu_kwh + ram_kwh
        pue = 1.2 if region == "FRA" else 1.56
        began = start + timedelta(minutes=i * 43)
        rows.append(
            {
                "run_id": f"{i:08x}{rng.getrandbits(96):024x}",
                "project": PROJECT,
                "user": f"user{i % 12}",
                "host": f"node{i % 30}",
                "job_id": f"job{i // 4}" if i % 5 == 0 else None,
                "command": ["python", "train.py", "--lr", str(i % 8)],
                "tags": {"lr": f"{(i % 8 + 1)}e-4"},
                "source": "run",
                "started_at": began,
                "ended_at": began + timedelta(hours=hours),
                "heartbeat_at": began + timedelta(hours=hours),
                "duration_s": hours * 3600,
                "status": "finished" if i % 50 else "failed",
                "gpu_energy_j": gpu_kwh * 3.6e6,
                "gpu_method": GPU_METHODS[i % 4],
                "cpu_energy_j": cpu_kwh * 3.6e6,
                "cpu_method": CPU_METHODS[i % 2],
                "ram_energy_j": ram_kwh * 3.6e6,
                "ram_method": "modelled",
                "it_energy_kwh": it,
                "pue": pue,
                "pue_source": "configured" if pue == 1.2 else "default",
                "facility_energy_kwh": it * pue,
                "region": region,
                "intensity_g_per_kwh": g,
                "intensity_source": source,
                "co2_kg": it * pue * g / 1000,
                "cost_usd": it * pue * 0.15,
                "cost_method": "electricity",
                "price": 0.15,
                "price_source": "configured",
                "gpu_model": gpu,
                "gpu_count": count,
                "gpu_hours": count * hours,
                "cpu_model": "AMD EPYC 7763",
                "cpu_count": 32,
                "cpu_seconds": hours * 3600 * 4,
                "ecotrain_version": "0.1.0",
                "data_version": "codecarbon 3.0.0",
            }
        )
        if i % 20 == 0:
            links.append(
                {"run_id": rows[-1]["run_id"], "checkpoint_id": ckpts[i % 50], "role": "consumed"}
            )
    with store.engine.begin() as conn:
        conn.execute(
            checkpoints.insert(),
            [
                {
                    "checkpoint_id": c,
                    "name": f"base-{n}",
                    "footprint_source": "catalogue",
                    "fp_gpu_model": "NVIDIA A100-SXM4-40GB",
                    "fp_gpu_hours": 1000.0 + n,
                    "fp_energy_kwh": 400.0 + n,
                    "fp_co2_kg": 100.0 + n,
                }
                for n, c in enumerate(ckpts)
            ],
        )
        for k in range(0, len(rows), 2000):
            conn.execute(runs.insert(), rows[k : k + 2000])
        conn.execute(run_checkpoints.insert(), links)
    store.engine.dispose()
    return time.perf_counter() - t0


def time_formats(db: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Seconds for build_report + render, per format: first (cold) call and median."""
    out: dict[str, dict[str, float]] = {}
    store = Store(str(db), readonly=True, migrate=False)
    flt = RunFilter(project=PROJECT)
    for fmt in FORMATS:
        times, size = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            text = render(build_report(store.engine, flt), fmt)
            times.append(time.perf_counter() - t0)
            size = len(text)
        out[fmt] = {"first_s": times[0], "median_s": statistics.median(times), "bytes": size}
    t0 = time.perf_counter()
    report = build_report(store.engine, flt)
    out["_model_only"] = {"first_s": time.perf_counter() - t0, "median_s": 0.0, "bytes": 0}
    out["_model_only"]["runs"] = report.n_runs
    return out


def time_cli(db: Path) -> dict[str, float]:
    """Wall seconds of the whole `ecotrain report` process, per format (includes start-up)."""
    exe = str(Path(sys.executable).parent / "ecotrain")
    out = {}
    for fmt in FORMATS:
        t0 = time.perf_counter()
        done = subprocess.run(
            [exe, "report", "--project", PROJECT, "--format", fmt, "--db", str(db)],
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        out[fmt] = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{fmt}: {done.stderr.strip()}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--db", type=Path, default=None, help="Default: a temporary file.")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-cli", action="store_true", help="Skip the CLI timings.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "report-bench.db"
        gen_s = generate(db, args.runs)
        results = time_formats(db, args.repeat)
        cli = {} if args.no_cli else time_cli(db)
    model = results.pop("_model_only")
    print(f"Generated {args.runs:,} runs in {gen_s:.1f} s; build_report alone "
          f"{model['first_s'] * 1000:.0f} ms.\n")  # fmt: skip
    print("| format | build+render first (ms) | median (ms) | size (KB) | whole CLI (ms) |")
    print("|---|---:|---:|---:|---:|")
    figures: dict[str, float] = {"runs": float(args.runs), "model_s": round(model["first_s"], 4)}
    for fmt, r in results.items():
        cli_ms = f"{cli[fmt] * 1000:.0f}" if fmt in cli else "-"
        print(f"| {fmt} | {r['first_s'] * 1000:.0f} | {r['median_s'] * 1000:.0f} | "
              f"{r['bytes'] / 1024:.1f} | {cli_ms} |")  # fmt: skip
        figures[f"{fmt}_median_s"] = round(r["median_s"], 4)
        if fmt in cli:
            figures[f"{fmt}_cli_s"] = round(cli[fmt], 3)
    worst = max(r["median_s"] for r in results.values())
    print()
    print(json.dumps({"name": "report_bench", "figures": figures}))
    if worst >= 1.0:
        print(f"slowest format median {worst:.2f} s: over the 1 s target", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
