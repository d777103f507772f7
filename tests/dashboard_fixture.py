"""A small database with hand-known values, for the dashboard tests.

Within the default period (last 30 days): 3 runs, 35 kWh facility energy, 14 kg CO2e,
$5.50, 11 GPU-hours. In the 30 days before: 1 run, 100 kWh, 50 kg, $10, 20 GPU-hours.
Project alpha (30 days): 30 kWh, 13 kg, $5, 10 GPU-hours. User ana: 15 kWh, 6 kg.
Lineage: r1 consumed A (bert-base) and produced B (bert-distill); r2 consumed B.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ecotrain.store.db import Store
from ecotrain.store.records import utcnow

CKPT_A = "sha256:" + "a" * 64
CKPT_B = "sha256:" + "b" * 64
RUN_IDS = {
    "r1": "1111aaaa" + "0" * 24,
    "r2": "2222bbbb" + "0" * 24,
    "r3": "3333cccc" + "0" * 24,
    "r4": "4444dddd" + "0" * 24,
}


def _run(key, project, user, host, status, days_ago, kwh, co2, cost, gpu_h, **extra) -> dict:
    started = utcnow() - timedelta(days=days_ago)
    return {
        "run_id": RUN_IDS[key],
        "project": project,
        "user": user,
        "host": host,
        "status": status,
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(hours=2)).isoformat(),
        "heartbeat_at": (started + timedelta(hours=2)).isoformat(),
        "duration_s": 7200.0,
        "exit_code": 0 if status == "finished" else 1,
        "gpu_energy_j": kwh / 1.5 * 0.75 * 3.6e6,
        "gpu_method": "measured",
        "cpu_energy_j": kwh / 1.5 * 0.2 * 3.6e6,
        "cpu_method": "modelled",
        "ram_energy_j": kwh / 1.5 * 0.05 * 3.6e6,
        "ram_method": "modelled",
        "it_energy_kwh": kwh / 1.5,
        "pue": 1.5,
        "pue_source": "config",
        "facility_energy_kwh": kwh,
        "region": extra.pop("region", "FRA"),
        "intensity_g_per_kwh": co2 / kwh * 1000,
        "intensity_source": "codecarbon global_energy_mix 2023",
        "co2_kg": co2,
        "cost_usd": cost,
        "cost_method": "electricity",
        "price": 0.2,
        "price_source": "config",
        "gpu_model": extra.pop("gpu_model", "NVIDIA A100-SXM4-40GB"),
        "gpu_count": 2,
        "gpu_hours": gpu_h,
        "command": extra.pop("command", ["python", "train.py"]),
        "tags": extra.pop("tags", {}),
        "ecotrain_version": "0.1.0",
        **extra,
    }


def build(path: Path | str) -> Path | str:
    """Write the fixture database at ``path`` (or a database URL) through Store.write_record."""
    store = Store(str(path))
    records = [
        {
            "run": _run(
                "r1",
                "alpha",
                "ana",
                "h1",
                "finished",
                2,
                10.0,
                5.0,
                2.0,
                4.0,
                command=["python", "train.py", "--lr", "3e-4"],
                tags={"lr": "3e-4"},
            ),
            "samples": [
                [0.0, 250.0, 40.0, 5.0],
                [60.0, 300.0, 45.0, 5.0],
                [120.0, 280.0, 42.0, 5.0],
            ],
            "checkpoints": [
                {
                    "checkpoint_id": CKPT_A,
                    "name": "bert-base",
                    "footprint_source": "catalogue",
                    "footprint_citation": "Strubell et al. 2019",
                    "fp_gpu_hours": 3000.0,
                    "fp_energy_kwh": 1500.0,
                    "fp_co2_kg": 600.0,
                },
                {"checkpoint_id": CKPT_B, "name": "bert-distill"},
            ],
            "links": [
                {"checkpoint_id": CKPT_A, "role": "consumed", "path": "/m/a", "detected_by": "fd"},
                {"checkpoint_id": CKPT_B, "role": "produced", "path": "/m/b", "detected_by": "fd"},
            ],
        },
        {
            "run": _run(
                "r2",
                "alpha",
                "bob",
                "h2",
                "finished",
                3,
                20.0,
                8.0,
                3.0,
                6.0,
                command=["python", "finetune.py"],
                gpu_model="NVIDIA H100",
                region="USA/CA",
            ),
            "links": [
                {"checkpoint_id": CKPT_B, "role": "consumed", "path": "/m/b", "detected_by": "fd"}
            ],
        },
        {"run": _run("r3", "beta", "ana", "h1", "failed", 5, 5.0, 1.0, 0.5, 1.0)},
        {"run": _run("r4", "beta", "bob", "h2", "finished", 40, 100.0, 50.0, 10.0, 20.0)},
    ]
    for record in records:
        store.write_record(record)
    store.engine.dispose()
    return path
