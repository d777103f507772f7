"""Fuzz the codecarbon CSV importer (Hypothesis): whatever a row holds, the import never
raises, every row is imported or reported by its line, and nothing non-finite, out of range or
time-travelling reaches the store."""

from __future__ import annotations

import csv
import math
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecotrain.importers import import_codecarbon, read_codecarbon_csv
from ecotrain.store.db import Store

HEADER = [
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "tracking_mode",
    "on_cloud",
    "pue",
]
GOOD = {
    "timestamp": "2026-11-23T07:55:03",
    "project_name": "",
    "duration": "0.197",
    "emissions": "2.8e-08",
    "cpu_energy": "1.1e-08",
    "gpu_energy": "0.0",
    "ram_energy": "4.9e-07",
    "energy_consumed": "5.07e-07",
    "country_iso_code": "FRA",
    "codecarbon_version": "3.3.2",
    "cpu_count": "2",
    "gpu_count": "0",
    "on_cloud": "N",
    "pue": "1.0",
}
NUMERIC = [
    "duration",
    "emissions",
    "energy_consumed",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "cpu_count",
    "gpu_count",
    "pue",
]

number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-1e6, max_value=1e6).map(str),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(["", " ", "inf", "-inf", "nan", "1e300", "1e309", "-0", "0x10", "1_000"]),
    st.text(max_size=12),
)
timestamp_text = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        datetime.isoformat
    ),
    st.sampled_from(
        [
            "0001-01-01T00:00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "2026-11-23T07:55:03Z",
            "2026-02-30T00:00:00",
            "",
        ]
    ),
    st.text(max_size=25),
)
row = st.fixed_dictionaries(
    {
        "timestamp": timestamp_text,
        "run_id": st.text(max_size=40),
        "project_name": st.text(max_size=20),
        **{name: number_text for name in NUMERIC},
    }
)


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as f:
        writer = csv.DictWriter(f, fieldnames=HEADER)
        writer.writeheader()
        for i, r in enumerate(rows):
            writer.writerow({**GOOD, "run_id": f"good-{i}", **r})


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(row, min_size=1, max_size=6), good_first=st.booleans())
def test_any_row_is_imported_or_reported_by_line(
    tmp_path: Path, rows: list[dict], good_first: bool
) -> None:
    csv_path = tmp_path / "emissions.csv"
    # One untouched row among the hostile ones: it must always get in.
    sentinel = {"run_id": "sentinel-row"}
    rows = [sentinel, *rows] if good_first else [*rows, sentinel]
    _write(csv_path, [{k: v.replace("\x00", "") for k, v in r.items()} for r in rows])
    physical_lines = len(csv_path.read_bytes().splitlines())

    records, errors = read_codecarbon_csv(csv_path)
    assert len(records) + len(errors) == len(rows)
    for line, why in errors:
        assert 2 <= line <= physical_lines and why

    db = tmp_path / "fuzz.db"
    db.unlink(missing_ok=True)
    store = Store(str(db))
    result = import_codecarbon(store, csv_path)
    store.engine.dispose()
    assert len(result.imported) + len(result.already) + len(result.errors) == len(rows)
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT external_id, duration_s, co2_kg, facility_energy_kwh, it_energy_kwh, "
            "pue, cpu_count, gpu_count, started_at, ended_at FROM runs"
        ).fetchall()
    assert "sentinel-row" in {r[0] for r in stored}
    for external, *numbers, started, ended in stored:
        for value in numbers:
            assert value is None or (math.isfinite(value) and abs(value) <= 1e12), external
        start, end = datetime.fromisoformat(started), datetime.fromisoformat(ended)
        assert datetime(1990, 1, 1) - timedelta(days=36525) <= start <= end
