"""Where the branches for issues 12-18 meet: each test here failed on the merged main."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_cli, wait_synced


def _series_around_now(path: Path, zone: str, g_per_kwh: float) -> Path:
    """A plain hourly series for ``zone`` covering the next few hours and the last few."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    lines = ["timestamp,zone,g_per_kwh"]
    for h in range(-3, 4):
        lines.append(f"{(now + timedelta(hours=h)).isoformat()},{zone},{g_per_kwh}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_short_run_gets_its_time_resolved_co2_like_a_long_one(
    isolated: Path, db_path: Path
) -> None:
    """Issue 16's stdlib writer (short runs) skipped issue 17's time-resolved CO2e that
    Store.write_record adds after a final record."""
    series = _series_around_now(isolated / "fr.csv", "FR", 50.0)
    imported = run_cli("grid", "import", str(series), "--region", "FRA")
    assert imported.returncode == 0, imported.stderr
    out = run_cli(
        "run", "--region", "FRA", "--", sys.executable, "-c", "import time; time.sleep(0.3)"
    )
    assert out.returncode == 0, out.stderr
    (row,) = wait_synced(db_path)
    assert row["region"] == "FRA"

    def series_row() -> tuple:
        with sqlite3.connect(db_path) as conn:
            return conn.execute(
                "select intensity_series_g_per_kwh, co2_series_kg, facility_energy_kwh"
                " from runs"
            ).fetchone()

    # the detached sync (if any) may still be accounting it
    import time

    deadline = time.monotonic() + 20
    while series_row()[0] is None and time.monotonic() < deadline:
        time.sleep(0.1)
    g, co2, facility = series_row()
    assert g == pytest.approx(50.0)
    assert co2 == pytest.approx(facility * 50.0 / 1000)
