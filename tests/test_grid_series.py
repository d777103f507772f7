"""Grid intensity series: each export shape, dedup, bad files, and a run's time-resolved CO2e."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from conftest import run_cli
from sqlalchemy import func, select

from ecotrain.grid_formats import LBS_PER_MWH_TO_G_PER_KWH, GridFileError, read_series_file
from ecotrain.grid_series import PowerCurve, make_series, time_resolved, weighted_intensity
from ecotrain.store.db import Store
from ecotrain.store.schema import grid_points, grid_series

DATA = Path(__file__).parent / "data" / "grid"


def points(path: str, **kw) -> dict:
    fmt, series = read_series_file(DATA / path, **kw)
    return fmt, {(s.zone, s.signal): s for s in series}


def test_electricity_maps_lifecycle_and_direct_columns() -> None:
    fmt, series = points("electricitymaps_FR_hourly.csv")
    assert fmt == "electricitymaps"
    fr = series[("FR", "average")]
    assert fr.points[datetime(2024, 1, 2, 0)] == 100.0  # the (LCA) column
    assert fr.region_hint == "France" and "lifecycle" in fr.source
    _, direct = points("electricitymaps_FR_hourly.csv", basis="direct")
    assert direct[("FR", "average")].points[datetime(2024, 1, 2, 0)] == 79.0


def test_electricity_maps_resaved_with_ascii_co2(tmp_path: Path) -> None:
    text = (DATA / "electricitymaps_FR_hourly.csv").read_text().replace("₂", "2")
    (tmp_path / "fr.csv").write_text(text)
    fmt, series = read_series_file(tmp_path / "fr.csv")
    assert fmt == "electricitymaps" and len(series[0].points) == 6


def test_entsoe_generation_mix_gives_derived_intensity() -> None:
    fmt, series = points("entsoe_generation_DE_LU.csv")
    assert fmt == "entsoe"
    de = series[("DE-LU", "average")]
    # gas 1000 x 743 + hard coal 1000 x 995 + wind 2000 x 26, over 4000 MW; pumped storage
    # (500 MW) is storage and left out; "n/e" nuclear is missing, not zero.
    assert de.points[datetime(2024, 1, 1, 0)] == pytest.approx(1_790_000 / 4000)
    # biomass 1000 x 230 + wind 3000 x 26; solar "" missing
    assert de.points[datetime(2024, 1, 1, 1)] == pytest.approx(308_000 / 4000)
    assert "ENTSO-E" in de.source


def test_entsoe_local_time_across_the_autumn_clock_change() -> None:
    _, series = points("entsoe_generation_DE_LU_cet.csv")
    # 01:00 CEST, 02:00 CEST, 02:00 CET (the repeated hour), 03:00 CET -> 23, 00, 01, 02 UTC
    assert sorted(series[("DE-LU", "average")].points.items()) == [
        (datetime(2024, 10, 26, 23), pytest.approx((743 + 26) / 2)),
        (datetime(2024, 10, 27, 0), pytest.approx(743)),
        (datetime(2024, 10, 27, 1), pytest.approx(26)),
        (datetime(2024, 10, 27, 2), pytest.approx((743 + 3 * 26) / 4)),
    ]


def test_eia_hour_ending_periods_and_storage_left_out() -> None:
    fmt, series = points("eia_fuel_type_CISO.csv")
    assert fmt == "eia"
    ciso = series[("CISO", "average")]
    # period T01 is the hour ending 01:00 UTC: it starts at 00:00
    first = (5000 * 743 + 3000 * 48 + 1000 * 26 + 1000 * 29) / 10_000  # battery excluded
    assert ciso.points[datetime(2024, 1, 1, 0)] == pytest.approx(first)
    assert ciso.points[datetime(2024, 1, 1, 1)] == pytest.approx((2000 * 743 + 2000 * 26) / 4000)


def test_watttime_moer_is_marginal_in_g_per_kwh() -> None:
    with pytest.raises(GridFileError, match="pass --zone"):
        read_series_file(DATA / "watttime_CAISO_NORTH_moer.csv")
    fmt, series = points("watttime_CAISO_NORTH_moer.csv", zone="CAISO_NORTH")
    assert fmt == "watttime"
    moer = series[("CAISO_NORTH", "marginal")]
    assert moer.points[datetime(2024, 1, 1, 0, 5)] == pytest.approx(800 * LBS_PER_MWH_TO_G_PER_KWH)
    assert len(moer.points) == 3


def test_bad_file_is_one_line_naming_the_line(db_path: Path) -> None:
    out = run_cli("grid", "import", str(DATA / "plain_bad_value.csv"))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert lines[0].startswith("ecotrain: error: ") and "plain_bad_value.csv:4:" in lines[0]
    assert "lots" in lines[0]
    unknown = run_cli("grid", "import", str(DATA.parent / "codecarbon_emissions.csv"))
    assert unknown.returncode == 2 and "unrecognised grid series file" in unknown.stderr


def test_import_is_deduplicated_with_source_and_licence(db_path: Path) -> None:
    first = run_cli("grid", "import", str(DATA / "electricitymaps_FR_hourly.csv"), "--json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["format"] == "electricitymaps"
    assert data["series"][0]["region"] == "FRA" and data["series"][0]["new"] == 6
    again = run_cli(
        "grid", "import", str(DATA / "electricitymaps_FR_hourly.csv"), "--licence", "ODbL"
    )
    assert again.returncode == 0, again.stderr
    assert "6 points (0 new)" in again.stdout and "region FRA" in again.stdout
    engine = Store(db_path).engine
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(grid_points)).scalar() == 6
        row = conn.execute(select(grid_series)).one()
    assert row.licence == "ODbL" and "Electricity Maps" in row.source and row.region == "FRA"
    shown = run_cli("grid", "show", "FRA")
    assert shown.returncode == 0, shown.stderr
    assert "FR average (region FRA): 6 points every 60 min" in shown.stdout
    assert "lowest 21:00 (40" in shown.stdout and "highest 00:00 (100" in shown.stdout
    missing = run_cli("grid", "show", "DEU")
    assert missing.returncode == 2 and "imported: FR" in missing.stderr


def test_plain_and_entsoe_need_region_to_apply(db_path: Path) -> None:
    out = run_cli("grid", "import", str(DATA / "entsoe_generation_DE_LU.csv"))
    assert out.returncode == 0, out.stderr
    assert "not tied to a region: pass --region" in out.stdout
    tied = run_cli("grid", "import", str(DATA / "entsoe_generation_DE_LU.csv"), "--region", "DEU")
    assert "for region DEU" in tied.stdout
    plain = run_cli("grid", "import", str(DATA / "plain_series.csv"))
    assert "SWE average: 3 points (3 new)" in plain.stdout and "region SWE" in plain.stdout


# -- the time-resolved figure ----------------------------------------------------------------


def _run(run_id: str, started: str, duration: float, kwh: float, samples: list) -> dict:
    return {
        "run": {
            "run_id": run_id,
            "project": "p",
            "started_at": started,
            "ended_at": started,  # only "is final" matters here
            "duration_s": duration,
            "status": "finished",
            "region": "FRA",
            "facility_energy_kwh": kwh,
            "intensity_g_per_kwh": 56.0,
            "co2_kg": kwh * 56.0 / 1000,
        },
        "samples": samples,
    }


def test_run_across_midnight_gets_hand_computed_co2(db_path: Path, tmp_path: Path) -> None:
    """23:30 -> 00:30 UTC, power ramping linearly 0 -> 2000 W. Energy before midnight:
    the triangle 0..1000 W over 1800 s = 0.9 MJ; after: 3.6 MJ - 0.9 MJ = 2.7 MJ. Series:
    60 g/kWh in the 23:00 hour, 100 g/kWh in the 00:00 hour. Energy-weighted:
    (0.9 x 60 + 2.7 x 100) / 3.6 = 90 g/kWh; x 2.0 kWh facility = 0.180 kg."""
    store = Store(db_path)
    store.write_record(
        _run("ramp", "2024-01-01T23:30:00", 3600, 2.0, [[0, 0, 0, 0], [3600, 1500, 400, 100]])
    )
    out = run_cli("grid", "import", str(DATA / "electricitymaps_FR_hourly.csv"))
    assert "1 run(s) got a time-resolved CO2e" in out.stdout
    with store.engine.connect() as conn:
        row = conn.execute(select(Store_runs()).where(Store_runs().c.run_id == "ramp")).one()
    assert row.intensity_series_g_per_kwh == pytest.approx(90.0)
    assert row.co2_series_kg == pytest.approx(0.180)
    assert row.co2_kg == pytest.approx(0.112)  # the annual figure stays as it was
    assert "time-resolved" in row.co2_series_method and "FR average series" in row.co2_series_method
    assert "2 period(s)" in row.co2_series_method and "coverage 100%" in row.co2_series_method
    shown = run_cli("show", "ramp")
    assert shown.returncode == 0, shown.stderr
    assert "CO2e time-resolved" in shown.stdout and "90 g CO2e/kWh" in shown.stdout
    report = run_cli("report", "--project", "p", "--format", "json")
    assert report.returncode == 0, report.stderr
    method = json.loads(report.stdout)["methodology"]
    assert "Time-resolved CO2e" in method and "1 of 1 runs covered" in method
    assert "use the annual figure for comparability" in method
    # LaTeX with --bib re-renders the paragraph with \cite keys: the sentence stays.
    tex = run_cli("report", "--project", "p", "--format", "latex", "--bib", str(tmp_path / "r.bib"))
    assert tex.returncode == 0 and "112 g on the annual figure" in tex.stdout, tex.stderr
    chosen = run_cli(
        "report", "--project", "p", "--format", "json", env={"ECOTRAIN_CO2_BASIS": "time-resolved"}
    )
    assert "quote this figure" in json.loads(chosen.stdout)["methodology"]


def Store_runs():  # noqa: N802 - the runs table, imported late like the store does
    from ecotrain.store.schema import runs

    return runs


def test_run_written_after_import_is_accounted_on_write(db_path: Path) -> None:
    assert run_cli("grid", "import", str(DATA / "electricitymaps_FR_hourly.csv")).returncode == 0
    store = Store(db_path)
    # 21:30 -> 23:30, flat power: half an hour at 40, an hour at 40, half an hour at 60
    store.write_record(_run("flat", "2024-01-01T21:30:00", 7200, 1.0, [[1, 100, 0, 0]]))
    # 01:30 -> 03:30: the series ends at 03:00, so only half the energy is covered: none
    store.write_record(_run("late", "2024-01-02T01:30:00", 7200, 1.0, []))
    with store.engine.connect() as conn:
        rows = {
            r.run_id: r
            for r in conn.execute(
                select(Store_runs().c.run_id, Store_runs().c.intensity_series_g_per_kwh)
            )
        }
    assert rows["flat"].intensity_series_g_per_kwh == pytest.approx((0.5 * 40 + 40 + 0.5 * 60) / 2)
    assert rows["late"].intensity_series_g_per_kwh is None


def test_weighting_splits_at_gaps_and_finer_steps() -> None:
    # 30-minute series with a missing point: 10:00 -> 100, 10:30 -> (missing), 11:00 -> 300
    t0 = (
        datetime(2024, 5, 1, 10).timestamp()
        - datetime(2024, 5, 1, 10).astimezone().utcoffset().total_seconds()
    )  # noqa: E501
    series = make_series([(t0, 100.0), (t0 + 3600, 300.0)], step_s=1800)
    flat = PowerCurve([], 5400)  # 10:00 -> 11:30 at constant power
    w = weighted_intensity(flat, t0, series)
    assert w.coverage == pytest.approx(2 / 3)  # 10:30-11:00 falls in the gap
    assert w.g_per_kwh == pytest.approx(200.0)
    assert w.points == 2
    run = {"started_at": datetime(2024, 5, 1, 10), "duration_s": 5400, "facility_energy_kwh": 1}
    assert time_resolved(run, [], series) is None  # below 99% coverage: no figure


def test_series_and_time_resolved_figure_on_postgresql(pg_url: str) -> None:
    store = Store(pg_url)
    store.write_record(
        _run("pgramp", "2024-01-01T23:30:00", 3600, 2.0, [[0, 0, 0, 0], [3600, 2000, 0, 0]])
    )
    out = run_cli("grid", "import", str(DATA / "electricitymaps_FR_hourly.csv"), "--db", pg_url)
    assert out.returncode == 0, out.stderr
    again = run_cli("grid", "import", str(DATA / "electricitymaps_FR_hourly.csv"), "--db", pg_url)
    assert "6 points (0 new)" in again.stdout
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(grid_points)).scalar() == 6
        row = conn.execute(select(Store_runs()).where(Store_runs().c.run_id == "pgramp")).one()
    assert row.co2_series_kg == pytest.approx(0.180)
    shown = run_cli("grid", "show", "fra", "--db", pg_url)
    assert shown.returncode == 0 and "6 points every 60 min" in shown.stdout
    advice = run_cli("advise", "pgramp", "--db", pg_url, "--json")
    assert advice.returncode == 0, advice.stderr
    assert json.loads(advice.stdout)["when"]["actual_co2_kg"] == pytest.approx(0.180)
    store.engine.dispose()
