"""Units of work reported from inside a run; per-unit figures; embodied emissions beside."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import run_cli, wait_synced

from ecotrain.efficiency import per_unit, pooled, sentence
from ecotrain.embodied import DEFAULT_KG_PER_GPU_HOUR, OFF, embodied, statement

PY = sys.executable

CHILD = """
import time, ecotrain
with ecotrain.track(project="work") as run:
    run.progress(1, 2, tokens=400_000)
    time.sleep(0.3)
    run.progress(2, 2, tokens=800_000, samples=2_000)
    time.sleep(0.3)
"""


def test_units_of_work_reach_the_record_through_ecotrain_run(db_path: Path) -> None:
    result = run_cli("run", "--project", "work", "--", PY, "-c", CHILD)
    assert result.returncode == 0, result.stderr
    (row,) = wait_synced(db_path)
    progress = json.loads(row["progress"])
    assert progress["tokens"] == 800_000 and progress["samples"] == 2_000
    row["progress"] = progress
    figures = per_unit(row)
    kwh, co2 = row["facility_energy_kwh"], row["co2_kg"]
    assert kwh > 0
    assert figures["wh_per_1m_tokens"] == pytest.approx(kwh * 1000 / 0.8)
    assert figures["g_co2e_per_1m_tokens"] == pytest.approx(co2 * 1000 / 0.8)
    assert figures["wh_per_1k_samples"] == pytest.approx(kwh * 1000 / 2)
    shown = run_cli("show", row["run_id"][:12])
    assert "per 1M tokens" in shown.stdout and "(800,000 tokens)" in shown.stdout
    # and the report says so
    report = run_cli("report", "--project", "work", "--format", "json")
    assert report.returncode == 0, report.stderr
    method = json.loads(report.stdout)["methodology"]
    assert "per 1M tokens (1 of 1 runs reported tokens)" in method
    assert "per 1k samples (1 of 1 runs reported samples)" in method


def test_per_unit_by_hand() -> None:
    run = {
        "facility_energy_kwh": 2.0,
        "co2_kg": 0.5,
        "co2_series_kg": 0.4,
        "progress": {"tokens": 4_000_000, "samples": 10_000},
    }
    f = per_unit(run)
    assert f["wh_per_1m_tokens"] == pytest.approx(500.0)  # 2000 Wh / 4 M tokens
    assert f["g_co2e_per_1m_tokens"] == pytest.approx(125.0)
    assert f["g_co2e_series_per_1m_tokens"] == pytest.approx(100.0)
    assert f["wh_per_1k_samples"] == pytest.approx(200.0)
    assert per_unit({"facility_energy_kwh": 1.0, "progress": {"step": 3}}) == {}
    # pooled: a ratio of sums; a run without units does not count
    other = {"facility_energy_kwh": 1.0, "co2_kg": 0.1, "progress": {"tokens": 1_000_000}}
    none = {"facility_energy_kwh": 9.0, "co2_kg": 9.0, "progress": None}
    p = pooled([run, other, none])
    assert p["tokens"]["wh_per_1m_tokens"] == pytest.approx(3000 / 5)
    assert p["tokens"]["runs"] == 2 and p["samples"]["runs"] == 1
    assert "per 1M tokens (2 of 3 runs reported tokens)" in sentence(p, 3)


def test_embodied_is_off_by_default_and_beside_when_on() -> None:
    assert embodied(100.0, {}) is None and statement(100.0, {}) == OFF
    on = embodied(100.0, {"embodied": "on"})
    assert round(DEFAULT_KG_PER_GPU_HOUR, 5) == 0.01034
    assert on.kg == pytest.approx(100 * 11_200 / 1_082_990)  # 1.03 kg
    assert "not included in" in on.sentence() and "BLOOM" in on.source
    custom = embodied(10.0, {"embodied": "true", "embodied_kg_per_gpu_hour": 0.013})
    assert custom.kg == pytest.approx(0.13) and custom.source.startswith("configured")


def test_lightning_batch_size_for_samples() -> None:
    np = pytest.importorskip("numpy")
    from ecotrain.callbacks import batch_size

    x = np.zeros((32, 128))
    assert batch_size(x) == 32
    assert batch_size((x, np.zeros(32))) == 32
    assert batch_size({"input_ids": np.zeros((8, 512)), "labels": np.zeros(8)}) == 8
    assert batch_size([]) is None and batch_size("text") is None
    assert batch_size(np.float32(1)) is None  # a 0-d value has no batch dimension
