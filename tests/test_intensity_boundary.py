"""A run's record keeps its grid figure's boundary (lifecycle / direct), and old databases
gain the column (migration 3) on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from ecotrain.store.schema import SCHEMA_VERSION, meta, metadata, runs
from tests.conftest import run_cli, wait_synced
from tests.store_helpers import make_record


@pytest.mark.parametrize(
    ("region", "boundary", "words"),
    [
        ("USA/CA", "direct", "eGRID"),
        ("FRA", "lifecycle", "Ember"),
        ("gcp:europe-west9", "direct", "Google"),
    ],
)
def test_run_records_the_boundary(db_path: Path, region: str, boundary: str, words: str) -> None:
    out = run_cli("run", "-q", "--region", region, "--", "true")
    assert out.returncode == 0, out.stderr
    (row,) = wait_synced(db_path)
    assert row["region"] == region and row["intensity_boundary"] == boundary
    assert boundary in row["intensity_source"] and words in row["intensity_source"]


def test_user_supplied_intensity_keeps_the_region(db_path: Path) -> None:
    out = run_cli("run", "-q", "--region", "USA/CA", "--intensity", "20", "--", "true")
    assert out.returncode == 0, out.stderr
    (row,) = wait_synced(db_path)
    assert row["intensity_g_per_kwh"] == 20 and row["intensity_source"] == "user-supplied"
    assert row["region"] == "USA/CA" and row["intensity_boundary"] is None


def _make_v2(url: str) -> None:
    """A database as the previous ecotrain left it: schema 2, no intensity_boundary."""
    eng = create_engine(url)
    with eng.begin() as conn:
        metadata.create_all(conn)
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN intensity_boundary")
        conn.execute(meta.insert().values(key="schema_version", value="2"))
        from ecotrain.store.db import RUN_COLUMNS, _clean

        record = make_record("old", beat=2, status="finished")["run"]
        row = _clean({**record, "region": "FRA"}, RUN_COLUMNS - {"intensity_boundary"})
        conn.execute(runs.insert().values(**row))
    eng.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_upgrade_from_version_2_adds_the_boundary(backend: str, request, tmp_path) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'v2.db'}"
    )
    _make_v2(url)
    up = run_cli("db", "upgrade", "--db", url)
    assert up.returncode == 0, up.stderr
    assert f"schema 2 -> {SCHEMA_VERSION}" in up.stdout
    eng = create_engine(url)
    assert "intensity_boundary" in {c["name"] for c in inspect(eng).get_columns("runs")}
    with eng.connect() as conn:
        old = conn.execute(text("SELECT region, intensity_boundary FROM runs")).one()
    assert tuple(old) == ("FRA", None)  # an old run is not given a boundary it never had
    eng.dispose()
    again = run_cli("db", "upgrade", "--db", url)  # idempotent
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("runs_args", "says", "never"),
    [
        ([("--region", "FRA")], "location-based lifecycle grid intensity", "direct"),
        ([("--region", "USA/CA")], "location-based grid intensity (direct emissions only)", None),
        (
            [("--region", "FRA"), ("--region", "USA/CA")],
            "grid intensity (lifecycle for some regions, direct emissions for others)",
            None,
        ),
        (
            [("--region", "FRA"), ("--intensity", "20")],
            "location-based lifecycle grid intensity and user-supplied figures (basis not stated)",
            None,
        ),
        ([("--intensity", "20")], "user-supplied grid intensity (basis not stated)", "location"),
    ],
)
def test_report_method_says_which_grid_figures_were_used(
    db_path: Path, runs_args: list, says: str, never: str | None
) -> None:
    """The report's method paragraph follows the boundary each run stored (it used to say
    "location-based" whatever the runs were computed with)."""
    for args in runs_args:
        assert run_cli("run", "-q", *args, "--", "true").returncode == 0
    wait_synced(db_path)
    out = run_cli("report", "--format", "md")
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert says in text
    if never:
        method = text[text.index("We report") :]
        assert never not in method.split("Cost:")[0]
