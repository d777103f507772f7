"""Budgets (units, warnings, stopping the child), prediction, `ecotrain status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecotrain.budget import Budget, BudgetWatch, parse_co2_kg, parse_duration_s, parse_kwh
from ecotrain.errors import UserError
from ecotrain.predict import Progress, predict
from tests.conftest import ECOTRAIN, run_cli, wait_synced

PY = sys.executable


@pytest.mark.parametrize(
    ("text", "kg"), [("50kg", 50.0), ("500g", 0.5), ("1.5t", 1500.0), ("2", 2.0), ("3 kgCO2e", 3.0)]
)
def test_co2_units(text: str, kg: float) -> None:
    assert parse_co2_kg(text) == pytest.approx(kg)


def test_other_units() -> None:
    assert parse_kwh("500Wh") == pytest.approx(0.5)
    assert parse_kwh("1e-9") == pytest.approx(1e-9)
    assert parse_duration_s("2h") == 7200 and parse_duration_s("90m") == 5400


@pytest.mark.parametrize("bad", ["50kgs", "-3kg", "kg", "0", "fifty"])
def test_bad_units_are_user_errors(bad: str) -> None:
    with pytest.raises(UserError):
        parse_co2_kg(bad)


def test_bad_budget_on_the_command_line_is_exit_2() -> None:
    result = run_cli("run", "--budget-co2", "5 parsecs", "--", PY, "-c", "pass")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ecotrain: error: bad CO2 budget '5 parsecs': use e.g. 50kg or 500g "
        "(units: kg, g, t, tonne, tonnes)"
    ]


def test_budget_watch_warns_once_at_80_then_at_100() -> None:
    watch = BudgetWatch(Budget(limits={"co2": 10.0}))
    assert watch.check({"co2_kg": 7.9}) == []
    (warning,) = watch.check({"co2_kg": 8.0})
    assert warning.startswith("budget warning: co2 at 80%")
    assert watch.check({"co2_kg": 9.0}) == []
    (exceeded,) = watch.check({"co2_kg": 10.5})
    assert exceeded == "budget exceeded: co2 10.5 kg CO2e >= limit 10 kg CO2e"
    assert watch.check({"co2_kg": 20.0}) == [] and watch.exceeded == exceeded


def test_prediction_from_progress() -> None:
    # 60 s of start-up, then 10 steps/s at 200 W: step 100 at t=70 s (2,000 J since step 0)
    progress = Progress()
    progress.report(60.0, 12_000.0, 0, 1000, "step")
    progress.report(70.0, 14_000.0, 100, 1000, "step")
    run = {"facility_energy_kwh": 14_000 / 3.6e6 * 1.5, "co2_kg": 1.0, "cost_usd": 2.0}
    pred = predict(70.0, 14_000.0, progress, None, run, warmup_s=60)
    # 900 steps left at 10 steps/s = 90 s at 200 W = 18,000 J more: 32,000 J in all
    assert pred["remaining_s"] == 90.0 and pred["duration_s"] == 160.0
    assert pred["it_energy_kwh"] == pytest.approx(32_000 / 3.6e6)
    assert pred["co2_kg"] == pytest.approx(32 / 14) and pred["cost_usd"] == pytest.approx(64 / 14)
    # before the warm-up, nothing
    assert predict(50.0, 14_000.0, progress, None, run, warmup_s=60) is None


def test_prediction_from_expected_duration() -> None:
    run = {"facility_energy_kwh": 1.0, "co2_kg": 0.1, "cost_usd": 0.2, "cost_method": "gpu_hour"}
    pred = predict(600.0, 3.6e6, Progress(), 3600.0, run, warmup_s=60)
    assert pred["it_energy_kwh"] == pytest.approx(6.0) and pred["co2_kg"] == pytest.approx(0.6)
    assert pred["cost_usd"] == pytest.approx(1.2)  # GPU-hour pricing scales with time


def test_budget_stop_kills_the_child_on_time(db_path: Path) -> None:
    start = time.monotonic()
    result = run_cli(
        "run",
        "--budget-kwh",
        "1e-9",
        "--on-budget",
        "stop",
        "--",
        PY,
        "-c",
        "import time; time.sleep(30)",
        env={"ECOTRAIN_SAMPLE_INTERVAL_S": "0.1"},
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 128 + 15, result.stderr
    assert elapsed < 6, elapsed
    assert "budget exceeded: kwh" in result.stderr
    (row,) = wait_synced(db_path)
    assert row["status"] == "killed" and row["exit_code"] == 143
    assert row["end_reason"].startswith("budget exceeded: kwh")
    assert row["end_reason"].endswith("(killed by SIGTERM)")


def test_budget_stop_escalates_to_sigkill(db_path: Path) -> None:
    child = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(30)"
    )
    start = time.monotonic()
    result = run_cli(
        "run", "--budget-kwh", "1e-9", "--on-budget", "stop", "--budget-grace", "1s",
        "--", PY, "-c", child,
    )  # fmt: skip
    assert result.returncode == 128 + 9, result.stderr
    assert time.monotonic() - start < 8
    (row,) = wait_synced(db_path)
    assert "budget exceeded" in row["end_reason"] and "SIGKILL" in row["end_reason"]


def test_budget_warn_lets_the_run_finish(db_path: Path, isolated: Path) -> None:
    # a per-project budget from config; the default action only warns
    (isolated / "home" / "config.toml").write_text('[budget.projects.small]\nkwh = "1e-9"\n')
    result = run_cli("run", "--project", "small", "--", PY, "-c", "import time; time.sleep(1)")
    assert result.returncode == 0
    assert result.stderr.count("budget exceeded: kwh") == 1
    assert "continuing" in result.stderr
    (row,) = wait_synced(db_path)
    assert row["status"] == "finished" and row["end_reason"] is None


STATUS_CHILD = """
import os, time, ecotrain
with ecotrain.track() as run:
    for step in range(1, 31):
        time.sleep(0.1)
        run.progress(step, 60)
    # Stay in progress until the test has looked (a loaded machine can be slow to start).
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["STOP_FILE"]) and time.monotonic() < deadline:
        time.sleep(0.1)
"""


def test_status_lists_running_runs_with_prediction(db_path: Path, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    env = {"ECOTRAIN_HEARTBEAT_S": "0.5", "ECOTRAIN_PREDICT_WARMUP_S": "0", "STOP_FILE": str(stop)}
    proc = subprocess.Popen(
        [ECOTRAIN, "run", "--project", "live", "--", PY, "-c", STATUS_CHILD],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        rows: list = []
        while time.monotonic() < deadline:
            time.sleep(0.5)
            out = run_cli("status", "--json")
            assert out.returncode == 0, out.stderr
            rows = json.loads(out.stdout) if out.stdout.strip().startswith("[") else []
            if rows and rows[0].get("prediction"):
                break
        (row,) = rows
        assert row["project"] == "live" and row["status"] == "running"
        assert row["progress"]["total"] == 60 and 0 < row["progress"]["fraction"] <= 0.5
        assert row["prediction"]["method"] == "progress rate since first report"
        assert row["prediction"]["it_energy_kwh"] >= row["it_energy_kwh"]
        text = run_cli("status", env={"COLUMNS": "250"}).stdout
        assert "Runs in progress" in text and row["run_id"][:12] in text
    finally:
        stop.write_text("done")
        proc.wait(timeout=60)
    assert run_cli("status").stdout.strip() == "no runs in progress"
