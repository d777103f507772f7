"""`ecotrain compare` and `ecotrain summary` with units of work and a time-resolved CO2e, on
runs that reported tokens from inside (ecotrain.track / run.progress), through the CLI."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_cli, wait_synced

PY = sys.executable

CHILD = """
import time, ecotrain
with ecotrain.track(project="work") as run:
    run.progress(1, 2, tokens={half})
    time.sleep(0.3)
    run.progress(2, 2, tokens={tokens})
    time.sleep(0.3)
"""


def _runs(db_path: Path, *token_counts: int | None) -> list[dict]:
    """One finished run per count (None: a run that reports no units), oldest first."""
    ids = []
    for tokens in token_counts:
        code = (
            "import time; time.sleep(0.5)"
            if tokens is None
            else CHILD.format(half=tokens // 2, tokens=tokens)
        )
        result = run_cli("run", "--project", "work", "--", PY, "-c", code,
                         env={"ECOTRAIN_REGION": "FRA"})  # fmt: skip
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 20
        while True:  # the record may be stored by a detached writer a moment later
            new = [r["run_id"] for r in wait_synced(db_path) if r["run_id"] not in ids
                   and r["status"] != "running"]  # fmt: skip
            if new or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        ids.append(new[0])
    rows = {r["run_id"]: r for r in wait_synced(db_path)}
    return [rows[i] for i in ids]


def _flat_series(tmp_path: Path, g_per_kwh: float) -> Path:
    """A plain hourly series around now at one constant intensity."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    lines = ["timestamp,zone,g_per_kwh"]
    for h in range(-6, 4):
        lines.append(f"{now + timedelta(hours=h):%Y-%m-%dT%H:%M:%S}Z,FRA,{g_per_kwh}")
    path = tmp_path / "flat.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_compare_shows_efficiency_per_token_and_time_resolved_co2(
    db_path: Path, tmp_path: Path
) -> None:
    a, b, c = _runs(db_path, 800_000, 400_000, None)
    imported = run_cli("grid", "import", str(_flat_series(tmp_path, 100.0)), "--region", "FRA")
    assert imported.returncode == 0, imported.stderr
    result = run_cli("compare", a["run_id"][:12], b["run_id"][:12], c["run_id"][:12], "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    ra, rb, rc = data["runs"]
    kwh_a, kwh_b = a["facility_energy_kwh"], b["facility_energy_kwh"]
    assert kwh_a > 0 and kwh_b > 0
    assert ra["tokens"] == 800_000 and rb["tokens"] == 400_000 and rc["tokens"] is None
    assert ra["wh_per_1m_tokens"] == pytest.approx(kwh_a * 1000 / 0.8)
    assert rb["wh_per_1m_tokens"] == pytest.approx(kwh_b * 1000 / 0.4)
    assert ra["g_co2e_per_1m_tokens"] == pytest.approx(a["co2_kg"] * 1000 / 0.8)
    assert rc["wh_per_1m_tokens"] is None  # reported nothing: unknown, not zero
    # a flat 100 g/kWh series: time-resolved CO2e = facility kWh x 0.1 kg, beside the annual
    assert ra["co2_series_kg"] == pytest.approx(kwh_a * 0.1)
    assert ra["co2_kg"] == pytest.approx(a["co2_kg"]) and ra["co2_kg"] != ra["co2_series_kg"]
    assert "time-resolved" in ra["co2_series_method"]
    assert ra["g_co2e_series_per_1m_tokens"] == pytest.approx(kwh_a * 0.1 * 1000 / 0.8)
    ratio = (kwh_b / 0.4) / (kwh_a / 0.8)
    assert data["diff"]["wh_per_1m_tokens"][0]["ratio"] == pytest.approx(ratio)
    assert data["diff"]["wh_per_1m_tokens"][1] == {"delta": None, "ratio": None}
    assert list(data["metrics"])[list(data["metrics"]).index("co2_kg") + 1] == "co2_series_kg"

    table = run_cli("compare", a["run_id"][:12], b["run_id"][:12], c["run_id"][:12])
    assert table.returncode == 0, table.stderr
    out = table.stdout
    for label in ("Wh per 1M tokens", "g CO2e per 1M tokens", "tokens reported",
                  "CO2e time-resolved"):  # fmt: skip
        assert label in out
    assert "800,000" in out and "400,000" in out
    assert "the CO2e row above stays the annual figure" in out
    assert "FRA average series" in out and "no imported series covers" not in out
    assert f"{ratio - 1:+.0%}" in out


def test_compare_without_units_or_series_adds_no_rows(db_path: Path) -> None:
    a, b = _runs(db_path, None, None)
    data = json.loads(run_cli("compare", a["run_id"][:12], b["run_id"][:12], "--json").stdout)
    assert "wh_per_1m_tokens" not in data["metrics"] and "co2_series_kg" not in data["metrics"]
    table = run_cli("compare", a["run_id"][:12], b["run_id"][:12]).stdout
    assert "per 1M tokens" not in table and "time-resolved" not in table


def test_summary_pools_efficiency_per_group(db_path: Path) -> None:
    a, b, c = _runs(db_path, 800_000, 400_000, None)
    result = run_cli("summary", "--json")
    assert result.returncode == 0, result.stderr
    (group,) = json.loads(result.stdout)["groups"]
    tokens = group["per_unit"]["tokens"]
    # a ratio of sums over the runs that reported tokens; the third run is left out
    kwh = a["facility_energy_kwh"] + b["facility_energy_kwh"]
    assert tokens["runs"] == 2 and tokens["count"] == 1_200_000
    assert tokens["wh_per_1m_tokens"] == pytest.approx(kwh * 1000 / 1.2)
    co2 = a["co2_kg"] + b["co2_kg"]
    assert tokens["g_co2e_per_1m_tokens"] == pytest.approx(co2 * 1000 / 1.2)
    assert json.loads(result.stdout)["total"]["per_unit"]["tokens"]["runs"] == 2
    table = run_cli("summary")
    assert table.returncode == 0, table.stderr
    assert "per 1M tokens" in table.stdout and "2 of 3 runs" in table.stdout


def test_compare_and_summary_per_unit_on_postgresql(pg_url: str) -> None:
    from ecotrain.store.db import Store

    store = Store(pg_url)
    for run_id, kwh, tokens in (
        ("pga", 2.0, 4_000_000),
        ("pgb", 3.0, 2_000_000),
        ("pgc", 1.0, None),
    ):
        store.write_record({"run": {
            "run_id": run_id, "project": "lab", "status": "finished", "region": "FRA",
            "started_at": "2024-01-01T10:00:00", "ended_at": "2024-01-01T11:00:00",
            "duration_s": 3600, "facility_energy_kwh": kwh, "co2_kg": kwh * 0.05,
            "progress": {"tokens": tokens} if tokens else None,
        }})  # fmt: skip
    data = json.loads(run_cli("compare", "pga", "pgb", "pgc", "--db", pg_url, "--json").stdout)
    assert [r["wh_per_1m_tokens"] for r in data["runs"]] == [500.0, 1500.0, None]
    assert data["diff"]["wh_per_1m_tokens"][0] == {"delta": 1000.0, "ratio": 3.0}
    summary = json.loads(run_cli("summary", "--db", pg_url, "--json").stdout)
    (group,) = summary["groups"]
    # (2 + 3) kWh over 6 M tokens; 0.25 kg CO2e over 6 M tokens
    assert group["per_unit"]["tokens"]["wh_per_1m_tokens"] == pytest.approx(5000 / 6)
    assert group["per_unit"]["tokens"]["g_co2e_per_1m_tokens"] == pytest.approx(250 / 6)
    assert group["per_unit"]["tokens"]["runs"] == 2
    store.engine.dispose()
