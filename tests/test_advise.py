"""Carbon-aware advice on synthetic series whose best hour and day are known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_cli

from ecotrain.advise import Profile, profile_from_run, when
from ecotrain.grid_series import make_series

MONDAY = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday, 00:00 UTC


def hourly(values) -> list[tuple[float, float]]:
    return [((MONDAY + timedelta(hours=i)).timestamp(), v) for i, v in enumerate(values)]


def by_hour_of_day(i: int) -> float:
    """Clean hours 03:00-05:59 UTC (100 g/kWh), 400 g/kWh otherwise."""
    return 100.0 if 3 <= i % 24 <= 5 else 400.0


def flat(hours: int, kwh_per_hour: float = 1.0) -> Profile:
    return Profile([kwh_per_hour] * hours, kwh_per_hour * hours, kwh_per_hour * hours, 0, None,
                   "SWE", "test")  # fmt: skip


def test_best_hour_of_day_is_the_clean_window() -> None:
    series = make_series(hourly([by_hour_of_day(i) for i in range(7 * 24)]))
    advice = when(flat(3), series)
    assert advice.best_hour.label == "03:00 UTC"
    assert advice.best_hour.co2_kg == pytest.approx(3 * 100 / 1000)  # 3 kWh at 100 g/kWh
    assert advice.worst_hour.co2_kg == pytest.approx(3 * 400 / 1000)
    # 166 possible starts (a 3-hour job cannot start in the last two hours of the week)
    starts = [sum(by_hour_of_day(s + k) for k in range(3)) / 1000 for s in range(7 * 24 - 2)]
    assert advice.starts == 166
    assert advice.reference_co2_kg == pytest.approx(sum(starts) / len(starts))
    assert advice.best_hour.change_pct == pytest.approx(
        (0.3 - advice.reference_co2_kg) / advice.reference_co2_kg * 100
    )
    assert advice.best_start == "2024-03-04 03:00 UTC"
    paris = when(flat(3), series, tz="Europe/Paris")  # UTC+1 in March
    assert paris.best_hour.label == "04:00 Europe/Paris"
    assert paris.best_hour.co2_kg == pytest.approx(0.3)


def test_best_day_of_week() -> None:
    # Sunday (the 7th day) 50 g/kWh, every other day 200: a 1-hour job
    series = make_series(hourly([50.0 if i // 24 == 6 else 200.0 for i in range(7 * 24)]))
    advice = when(flat(1), series)
    assert advice.best_day.label == "Sunday"
    mean = (24 * 50 + 144 * 200) / 168 / 1000
    assert advice.reference_co2_kg == pytest.approx(mean)
    assert advice.best_day.change_pct == pytest.approx((0.05 - mean) / mean * 100)
    assert round(advice.best_day.change_pct) == -72


def test_recorded_profile_keeps_its_shape() -> None:
    # 2 h run: 100 W for the first hour, 300 W for the second (step at 3600 s)
    run = {"run_id": "r1", "facility_energy_kwh": 4.0, "duration_s": 7200, "region": "SWE"}
    profile = profile_from_run(run, [(0, 100), (3600, 100), (3600.001, 300), (7200, 300)])
    assert profile.hourly_kwh == pytest.approx([1.0, 3.0], rel=1e-3)
    # clean hour first then dirty: the best start puts the heavy hour in the clean one
    series = make_series(hourly([400.0 if i % 24 != 4 else 100.0 for i in range(48)]))
    advice = when(profile, series)
    assert advice.best_hour.label == "03:00 UTC"
    assert advice.best_hour.co2_kg == pytest.approx((1 * 400 + 3 * 100) / 1000, rel=1e-3)


def test_advise_cli_planned_job_with_sites(tmp_path: Path, db_path: Path) -> None:
    csv = tmp_path / "swe.csv"
    rows = ["timestamp,zone,g_per_kwh"] + [
        f"{(MONDAY + timedelta(hours=i)).isoformat()},SWE,{by_hour_of_day(i)}"
        for i in range(7 * 24)
    ]
    csv.write_text("\n".join(rows) + "\n")
    assert run_cli("grid", "import", str(csv)).returncode == 0
    (tmp_path / "home" / "config.toml").write_text(
        'region = "SWE"\npue = 1.2\nprice_per_kwh = 0.1\n\n'
        '[site.paris]\nregion = "FRA"\npue = 1.5\nprice_per_kwh = 0.2\n'
    )
    out = run_cli("advise", "--gpu", "A100-80GB", "--hours", "3", "--gpus", "2", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    # 2 x 400 W x 3 h = 2.4 kWh IT, x PUE 1.2 = 2.88 kWh facility
    assert data["facility_kwh"] == pytest.approx(2.88)
    assert data["when"]["best_hour"]["label"] == "03:00 UTC"
    assert data["when"]["best_hour"]["co2_kg"] == pytest.approx(2.88 * 100 / 1000)
    home, paris = data["where"]
    assert home["region"] == "SWE" and home["intensity_basis"].startswith("series:")
    assert paris["site"] == "paris" and paris["intensity_basis"].startswith("annual:")
    assert paris["co2_kg"] == pytest.approx(2.4 * 1.5 * paris["g_per_kwh"] / 1000)
    assert paris["cost_usd"] == pytest.approx(2.4 * 1.5 * 0.2)
    text = run_cli("advise", "--gpu", "A100-80GB", "--hours", "3")
    assert "best hour of day: 03:00 UTC" in text.stdout
    assert "assumes the job is flexible" in text.stdout and "paris [FRA, PUE 1.5]" in text.stdout
    bad = run_cli("advise")
    assert bad.returncode == 2 and "give a RUN id, or --gpu and --hours" in bad.stderr
    none = run_cli("advise", "nosuchrun")
    assert none.returncode == 2 and "no run 'nosuchrun'" in none.stderr
