"""The dashboard's "When & where" page and the queries under it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from dashboard_fixture import build
from test_dashboard import _app, _df

from ecotrain.advise import biggest_projects_advice, emissions_by_hour
from ecotrain.grid_series import import_file
from ecotrain.store import aggregates as agg
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from ecotrain.store.records import utcnow


@pytest.fixture
def db_with_series(tmp_path: Path) -> Path:
    db = build(tmp_path / "fixture.db")
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=60)
    lines = ["timestamp,zone,g_per_kwh"]
    for i in range(62 * 24):
        t = start + timedelta(hours=i)
        lines.append(f"{t.isoformat()},FRA,{30 if 3 <= t.hour <= 5 else 90}")
    csv = tmp_path / "fra.csv"
    csv.write_text("\n".join(lines) + "\n")
    store = Store(str(db))
    _, done = import_file(store.engine, csv)
    assert done[0].region == "FRA" and done[0].runs_updated == 3  # r1, r3, r4 are in FRA
    store.engine.dispose()
    return db


def test_emissions_by_hour_spread_over_the_hours_run(db_with_series: Path) -> None:
    engine = agg.readonly_engine(str(db_with_series))
    rows = emissions_by_hour(engine, RunFilter())
    assert len(rows) == 24
    assert sum(r["co2_kg"] for r in rows) == pytest.approx(5 + 8 + 1 + 50)
    assert sum(r["energy_kwh"] for r in rows) == pytest.approx(10 + 20 + 5 + 100)
    assert sum(1 for r in rows if r["co2_kg"] > 0) <= 4 * 3  # 2-hour runs touch <= 3 hours


def test_advice_for_biggest_projects(db_with_series: Path) -> None:
    engine = agg.readonly_engine(str(db_with_series))
    rows = biggest_projects_advice(engine, RunFilter(), {})
    assert [r["project"] for r in rows] == ["beta", "alpha"]
    beta = rows[0]
    assert beta["run"] == "4444dddd0000" and beta["best_hour"] == "03:00 UTC"
    assert beta["best_hour_change_pct"] < -50
    # alpha's largest run is in USA/CA, with no series: said so, not invented
    assert rows[1]["best_hour"] is None and "no average intensity series" in rows[1]["note"]


def test_when_where_page(db_with_series: Path, monkeypatch) -> None:
    at = _app(db_with_series, monkeypatch, "views/when_where.py")
    hours = _df(at, "hour", "co2_kg", "g_per_kwh")
    assert len(hours) == 24
    assert hours.set_index("hour")["g_per_kwh"][4] == pytest.approx(30)
    advice = _df(at, "project", "best_hour")
    # the page's default period is the last 30 days: r4 (40 days ago) is out of it
    assert list(advice["project"]) == ["alpha", "beta"]
    assert list(advice["best_hour"])[1] == "03:00 UTC"  # beta's r3, in FRA
    assert "assumes the job is flexible" in " ".join(c.value for c in at.caption)
