"""`ecotrain import codecarbon` with a CSV written by the real codecarbon 3.3, and exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlite_utils

from tests.conftest import ROOT, run_cli

DATA = ROOT / "tests" / "data"
GOOD = DATA / "codecarbon_emissions.csv"  # `codecarbon monitor --offline --country-iso-code FRA`
BAD = DATA / "codecarbon_emissions_malformed.csv"


def csv_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def imported(db: Path) -> dict[str, dict]:
    return {r["external_id"]: r for r in sqlite_utils.Database(db)["runs"].rows}


def test_import_keeps_codecarbons_figures(db_path: Path) -> None:
    result = run_cli("import", "codecarbon", str(GOOD), "--project", "legacy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 run(s) imported, 0 already there, 0 row(s) skipped"
    rows = imported(db_path)
    for src in csv_rows(GOOD):
        row = rows[src["run_id"]]
        assert (row["source"], row["status"], row["project"]) == (
            "import:codecarbon",
            "imported",
            "legacy",
        )
        assert row["co2_kg"] == float(src["emissions"])
        assert row["facility_energy_kwh"] == float(src["energy_consumed"])
        assert row["pue"] == float(src["pue"]) == 1.0
        assert row["it_energy_kwh"] == pytest.approx(float(src["energy_consumed"]))
        assert row["ram_energy_j"] == pytest.approx(float(src["ram_energy"]) * 3.6e6)
        assert row["ram_method"] == "imported" and row["cpu_method"] == "imported"
        assert row["region"] == "FRA" and row["duration_s"] == float(src["duration"])
        assert row["pue_source"] == "codecarbon 3.3.2 (as recorded)"
        # the intensity codecarbon used for France (~56 g/kWh), as implied by its own figures
        assert row["intensity_g_per_kwh"] == pytest.approx(
            float(src["emissions"]) * 1000 / float(src["energy_consumed"])
        )
        assert 50 < row["intensity_g_per_kwh"] < 60
        assert row["cost_usd"] is None
        assert row["ended_at"].startswith(src["timestamp"].replace("T", " "))


def test_import_is_idempotent(db_path: Path) -> None:
    assert run_cli("import", "codecarbon", str(GOOD)).returncode == 0
    again = run_cli("import", "codecarbon", str(GOOD), "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["already_imported"] == 2
    assert len(imported(db_path)) == 2
    assert {r["project"] for r in imported(db_path).values()} == {"codecarbon"}


def test_malformed_rows_reported_by_line_and_good_rows_import(db_path: Path) -> None:
    result = run_cli("import", "codecarbon", str(BAD), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["imported"] == 2
    assert [e["line"] for e in summary["errors"]] == [3, 4, 5, 7]
    errors = {e["line"]: e["error"] for e in summary["errors"]}
    assert errors[3] == "duration is not a number: 'not-a-number'"
    assert errors[4].startswith("timestamp is not ISO-8601")
    assert errors[5].startswith("expected 38 columns")
    assert errors[7] == "run_id is empty"
    assert f"{BAD}:3: skipped: duration is not a number" in result.stderr
    assert set(imported(db_path)) == {r["run_id"] for r in csv_rows(GOOD)}


def test_not_a_codecarbon_file_is_exit_2(isolated: Path) -> None:
    other = isolated / "other.csv"
    other.write_text("a,b\n1,2\n")
    result = run_cli("import", "codecarbon", str(other))
    assert result.returncode == 2
    assert "not a codecarbon emissions CSV (missing columns: timestamp" in result.stderr
    missing = run_cli("import", "codecarbon", str(isolated / "nope.csv"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def _two_runs(db_path: Path) -> list[dict]:
    assert run_cli("import", "codecarbon", str(GOOD)).returncode == 0
    result = run_cli("run", "--project", "mine", "--tag", "lr=3e-4", "--", "true")
    assert result.returncode == 0, result.stderr
    assert run_cli("sync", "--quiet").returncode == 0
    return list(sqlite_utils.Database(db_path)["runs"].rows)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_round_trips_through_pandas(db_path: Path, isolated: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    rows = _two_runs(db_path)
    out = isolated / f"runs.{fmt}"
    result = run_cli("export", "--format", fmt, "-o", str(out), "--with-samples")
    assert result.returncode == 0, result.stderr
    if fmt == "csv":
        frame = pd.read_csv(out)
        samples = pd.read_csv(isolated / "runs.samples.csv")
    elif fmt == "parquet":
        frame = pd.read_parquet(out)
        samples = pd.read_parquet(isolated / "runs.samples.parquet")
    else:
        data = json.loads(out.read_text())
        frame, samples = pd.DataFrame(data["runs"]), pd.DataFrame(data["samples"])
    assert sorted(frame["run_id"]) == sorted(r["run_id"] for r in rows)
    by_id = frame.set_index("run_id")
    for row in rows:
        assert by_id.loc[row["run_id"], "co2_kg"] == pytest.approx(row["co2_kg"])
        assert by_id.loc[row["run_id"], "status"] == row["status"]
    mine = next(r for r in rows if r["project"] == "mine")
    tags = by_id.loc[mine["run_id"], "tags"]
    assert (json.loads(tags) if isinstance(tags, str) else tags) == {"lr": "3e-4"}
    db_samples = list(sqlite_utils.Database(db_path)["samples"].rows)
    assert len(samples) == len(db_samples)


def test_export_filters_by_project(db_path: Path, isolated: Path) -> None:
    _two_runs(db_path)
    out = isolated / "legacy.csv"
    assert run_cli("export", "--project", "codecarbon", "-o", str(out)).returncode == 0
    assert set(pd.read_csv(out)["source"]) == {"import:codecarbon"}
    bad = run_cli("export", "--format", "xlsx", "-o", str(out))
    assert bad.returncode == 2 and "bad --format 'xlsx'" in bad.stderr
