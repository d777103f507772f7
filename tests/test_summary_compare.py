"""`ecotrain summary` and `ecotrain compare` on the dashboard fixture's hand-known values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import dashboard_fixture
from tests.conftest import run_cli

R1, R2, R3 = (dashboard_fixture.RUN_IDS[k] for k in ("r1", "r2", "r3"))


@pytest.fixture
def fx(db_path: Path) -> Path:
    dashboard_fixture.build(db_path)
    return db_path


def test_summary_by_project_json(fx: Path) -> None:
    result = run_cli("summary", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["by"] == ["project"]
    groups = {g["project"]: g for g in data["groups"]}
    assert groups["alpha"]["runs"] == 2 and groups["alpha"]["energy_kwh"] == 30.0
    assert groups["alpha"]["co2_kg"] == 13.0 and groups["alpha"]["cost_usd"] == 5.0
    assert groups["beta"]["gpu_hours"] == 21.0
    assert data["total"] == {
        "runs": 4, "energy_kwh": 135.0, "it_energy_kwh": pytest.approx(90.0),
        "co2_kg": 64.0, "cost_usd": 15.5, "gpu_hours": 31.0,
        "per_unit": {},  # no run reported tokens or samples: no per-unit figures
    }  # fmt: skip
    assert groups["alpha"]["per_unit"] == {}
    # largest CO2e first
    assert [g["project"] for g in data["groups"]] == ["beta", "alpha"]


def test_summary_by_user_and_gpu_with_filters(fx: Path) -> None:
    result = run_cli("summary", "--by", "user,gpu", "--since", "30d", "--json")
    data = json.loads(result.stdout)
    assert data["by"] == ["user", "gpu"]
    got = {(g["user"], g["gpu"]): g["energy_kwh"] for g in data["groups"]}
    assert got == {
        ("ana", "NVIDIA A100-SXM4-40GB"): 15.0,
        ("bob", "NVIDIA H100"): 20.0,
    }  # r4 (bob, 40 days ago) is outside --since 30d
    assert data["total"]["energy_kwh"] == 35.0
    tagged = json.loads(run_cli("summary", "--tag", "lr=3e-4", "--json").stdout)
    assert tagged["total"]["runs"] == 1 and tagged["total"]["co2_kg"] == 5.0


def test_summary_table_has_a_totals_row(fx: Path) -> None:
    result = run_cli("summary")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1].split()
    assert last[0] == "total" and "4" in last and "64.0" in " ".join(last)


def test_summary_errors_are_one_line(fx: Path) -> None:
    bad = run_cli("summary", "--by", "colour")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "ecotrain: error: bad --by 'colour': use one or more of project, user, gpu, host, "
        "region, status (comma-separated)"
    ]
    # An empty selection is an empty listing, as with `ecotrain runs`: exit 0, said on stdout.
    none = run_cli("summary", "--project", "nope")
    assert none.returncode == 0 and none.stderr == ""
    assert none.stdout.splitlines() == ["no runs match these filters"]
    listed = run_cli("runs", "--project", "nope")
    assert listed.returncode == 0 and listed.stdout.startswith("no runs match these filters")
    assert run_cli("report", "--project", "nope").returncode == 2


def test_compare_two_runs(fx: Path) -> None:
    result = run_cli("compare", R1[:8], R2[:8], "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    a, b = data["runs"]
    assert (a["run_id"], b["run_id"]) == (R1, R2)
    assert (a["facility_energy_kwh"], b["facility_energy_kwh"]) == (10.0, 20.0)
    assert a["gpu_energy_kwh"] == pytest.approx(10 / 1.5 * 0.75)
    assert data["diff"]["facility_energy_kwh"] == [{"delta": 10.0, "ratio": 2.0}]
    assert data["diff"]["co2_kg"] == [{"delta": 3.0, "ratio": 1.6}]
    assert data["diff"]["cost_usd"][0]["ratio"] == pytest.approx(1.5)
    # r1 has 3 samples at 0, 60, 120 s of its 2 h: at most 350 W, while its energy means
    # 3.33 kW on average; a peak below the mean is not a peak: unknown
    assert a["peak_power_w"] is None
    profile = [p for p in a["profile_w"] if p is not None]
    assert profile == [295.0, 350.0, 327.0]
    assert b["profile_w"] == [] and b["peak_power_w"] is None
    assert a["mean_power_w"] == pytest.approx(10 / 1.5 * 3.6e6 / 7200)


def test_compare_table_and_errors(fx: Path) -> None:
    result = run_cli("compare", R1[:8], R3[:8])
    assert result.returncode == 0, result.stderr
    assert "facility energy" in result.stdout and "-50%" in result.stdout
    assert "power profile" in result.stdout
    one = run_cli("compare", R1[:8])
    assert one.returncode == 2 and len(one.stderr.splitlines()) == 1
    missing = run_cli("compare", R1[:8], "ffff")
    assert missing.returncode == 2
    assert missing.stderr.startswith("ecotrain: error: ") and "ffff" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


def test_peak_power_is_the_sampled_maximum_unless_the_samples_missed_the_work() -> None:
    from ecotrain.compare import run_figures

    run = {"duration_s": 100.0, "it_energy_kwh": 300 * 100 / 3.6e6}  # 300 W on average
    covered = [{"t_s": t, "gpu_w": w, "cpu_w": 20.0} for t, w in ((0, 250.0), (50, 310.0))]
    assert run_figures(run, covered)["peak_power_w"] == 330.0
    steady = [{"t_s": 0, "gpu_w": 275.0}, {"t_s": 50, "gpu_w": 276.0}]  # within 10 % of 300
    assert run_figures(run, steady)["peak_power_w"] == 276.0
    missed = [{"t_s": 0, "cpu_w": 4.0}]  # one idle sample of a busy run
    assert run_figures(run, missed)["peak_power_w"] is None
    assert run_figures(run, [])["peak_power_w"] is None


def test_a_cpu_only_run_has_zero_gpu_hours_in_compare_as_in_summary() -> None:
    from ecotrain.compare import run_figures

    assert run_figures({"gpu_model": None, "gpu_hours": None}, [])["gpu_hours"] == 0.0
    # a GPU run whose GPU-hours were not recorded stays unknown
    assert run_figures({"gpu_model": "H100", "gpu_hours": None}, [])["gpu_hours"] is None
