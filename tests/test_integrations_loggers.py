"""MLflow (real file store) and Weights & Biases (real package, offline mode) receive a run's
figures: per step while it runs, final values and the ecotrain run id at the end."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

import ecotrain
from ecotrain.sensors.replay import write_trace
from tests.conftest import run_cli, wait_synced

PY = sys.executable


@pytest.fixture
def replay(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant 360 W in all: 0.1 Wh per second of run."""
    paths = []
    for component, watts in (("gpu", 300.0), ("cpu", 50.0), ("ram", 10.0)):
        path = isolated / f"{component}.json"
        write_trace(
            path, component=component, method="integrated", points=[(0, watts), (3600, watts)]
        )
        paths.append(str(path))
    monkeypatch.setenv("ECOTRAIN_REPLAY", os.pathsep.join(paths))
    monkeypatch.setenv("ECOTRAIN_LOG_EVERY_S", "0")  # every progress report is logged


@pytest.fixture
def mlflow_store(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps file: behind this
    uri = (isolated / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    mlflow.set_tracking_uri(uri)
    return uri


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_track_inside_an_active_mlflow_run(replay: None, mlflow_store: str) -> None:
    import mlflow

    with mlflow.start_run() as active, ecotrain.track(project="bert", quiet=True) as run:
        for step in range(1, 5):
            time.sleep(0.05)
            run.progress(step, 4)
    client = _client(mlflow_store)
    got = client.get_run(active.info.run_id)
    assert got.data.tags["ecotrain.run_id"] == run.run_id
    # the final values are the run's record, to the float
    assert got.data.metrics["ecotrain/energy_kwh"] == pytest.approx(run.facility_energy_kwh)
    assert got.data.metrics["ecotrain/co2_kg"] == pytest.approx(run.co2_kg)
    # energy_kwh is facility energy everywhere (issue 12), in the API as in the metrics
    assert run.energy_kwh == pytest.approx(run.facility_energy_kwh)
    assert got.data.metrics["ecotrain/it_energy_kwh"] == pytest.approx(run.it_energy_kwh)
    assert got.data.metrics["ecotrain/cost_usd"] == pytest.approx(run.cost_usd)
    power = got.data.metrics["ecotrain/power_w"]
    assert power == pytest.approx(run.it_energy_kwh * 3.6e6 / run.duration_s)
    history = client.get_metric_history(active.info.run_id, "ecotrain/energy_kwh")
    steps = [m.step for m in history]
    assert {1, 2, 3, 4} <= set(steps)  # per step, then the final at the last step
    values = [m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))]
    assert values == sorted(values) and values[0] < values[-1]  # energy only grows


def test_no_active_run_logs_nothing_and_imports_nothing(replay: None) -> None:
    code = (
        "import sys, ecotrain\n"
        "with ecotrain.track(quiet=True) as r:\n"
        "    r.progress(1, 2)\n"
        "print(sorted(m for m in ('mlflow', 'wandb', 'ecotrain.integrations.mlflow') "
        "if m in sys.modules))\n"
    )
    import subprocess

    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ecotrain_run_mlflow_flag_creates_one_run_shared_with_the_child(
    replay: None, mlflow_store: str, db_path: Path
) -> None:
    child = (
        "import os, mlflow\n"
        "given = os.environ['MLFLOW_RUN_ID']\n"
        "with mlflow.start_run() as r:\n"  # resumes the run ecotrain made: MLFLOW_RUN_ID
        "    mlflow.log_metric('loss', 0.5)\n"
        "    print(r.info.run_id, given)\n"
    )
    result = run_cli("run", "--mlflow", "--project", "abl", "--", PY, "-c", child)
    assert result.returncode == 0, result.stderr
    child_run, env_run = result.stdout.split()
    assert child_run == env_run
    (row,) = wait_synced(db_path)
    runs = _client(mlflow_store).search_runs(["0"])
    assert [r.info.run_id for r in runs] == [child_run]  # one MLflow run, not two
    got = runs[0]
    assert got.data.tags["ecotrain.run_id"] == row["run_id"]
    assert got.data.tags["mlflow.runName"] == "abl"
    assert got.data.metrics["loss"] == 0.5
    assert got.data.metrics["ecotrain/energy_kwh"] == pytest.approx(row["facility_energy_kwh"])
    assert got.data.metrics["ecotrain/co2_kg"] == pytest.approx(row["co2_kg"])
    assert got.info.status == "FINISHED"


def test_ecotrain_run_under_mlflow_run_logs_per_step(
    replay: None, mlflow_store: str, db_path: Path
) -> None:
    # `mlflow run` hands its run to the entry point through MLFLOW_RUN_ID
    existing = _client(mlflow_store).create_run("0").info.run_id
    child = (
        "import time, ecotrain\n"
        "with ecotrain.track() as run:\n"  # attached to the wrapper: progress goes there
        "    for s in range(1, 4):\n"
        "        time.sleep(0.4); run.progress(s, 3)\n"
        "    time.sleep(0.4)\n"
    )
    result = run_cli("run", "--", PY, "-c", child, env={"MLFLOW_RUN_ID": existing})
    assert result.returncode == 0, result.stderr
    (row,) = wait_synced(db_path)
    client = _client(mlflow_store)
    got = client.get_run(existing)
    assert got.data.tags["ecotrain.run_id"] == row["run_id"]
    assert got.data.metrics["ecotrain/energy_kwh"] == pytest.approx(row["facility_energy_kwh"])
    steps = {m.step for m in client.get_metric_history(existing, "ecotrain/energy_kwh")}
    assert {1, 2, 3} <= steps
    assert got.info.status == "RUNNING"  # not ours to end: `mlflow run` ends it


def test_mlflow_run_active_in_the_child_is_found(
    replay: None, mlflow_store: str, db_path: Path
) -> None:
    child = (
        "import time, mlflow, ecotrain\n"
        "with mlflow.start_run() as r:\n"
        "    print(r.info.run_id, flush=True)\n"
        "    with ecotrain.track() as run:\n"
        "        run.progress(1, 2); time.sleep(0.5); run.progress(2, 2); time.sleep(0.5)\n"
    )
    result = run_cli("run", "--", PY, "-c", child)
    assert result.returncode == 0, result.stderr
    (row,) = wait_synced(db_path)
    got = _client(mlflow_store).get_run(result.stdout.strip())
    assert got.data.tags["ecotrain.run_id"] == row["run_id"]
    assert got.data.metrics["ecotrain/energy_kwh"] == pytest.approx(row["facility_energy_kwh"])


def test_mlflow_flag_without_the_extra_is_one_line(tmp_path: Path) -> None:
    # a Python that cannot import mlflow: an empty module shadows nothing, so hide it
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\nsys.modules['mlflow'] = None\n"  # import mlflow -> ImportError
    )
    result = run_cli(
        "run", "--mlflow", "--", PY, "-c", "pass",
        env={"PYTHONPATH": str(hide) + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ecotrain: error: ecotrain run --mlflow needs the [mlflow] extra (mlflow not installed): "
        "pip install 'ecotrain[mlflow]'"
    ]


def test_mlflow_run_id_without_mlflow_installed_is_a_note(tmp_path: Path, db_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['mlflow'] = None\n")
    env = {
        "PYTHONPATH": str(hide) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "MLFLOW_RUN_ID": "0123abcd",
    }
    result = run_cli("run", "--", PY, "-c", "pass", env=env)
    assert result.returncode == 0, result.stderr
    (row,) = wait_synced(db_path)
    assert "mlflow: not installed, no metrics logged (pip install 'ecotrain[mlflow]')" in (
        json.loads(row["notes"])
    )


def test_wandb_offline_run_gets_history_and_summary(
    replay: None, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(isolated))
    wb = wandb.init(project="ecotrain-test", dir=str(isolated))
    rows: list[dict] = []
    real_log = wb.log

    def log(data: dict, *args, **kwargs):  # records what reaches the real run.log
        if "ecotrain/step" in data:
            rows.append(dict(data))
        return real_log(data, *args, **kwargs)

    monkeypatch.setattr(wb, "log", log)
    try:
        with ecotrain.track(project="bert", quiet=True) as run:
            for step in range(1, 4):
                time.sleep(0.05)
                wb.log({"loss": 1.0 / step})  # the user's own step counter runs on
                run.progress(step, 3)
        summary = dict(wb.summary)
    finally:
        wb.finish()
    assert summary["ecotrain.run_id"] == run.run_id
    assert summary["ecotrain/energy_kwh"] == pytest.approx(run.facility_energy_kwh)
    assert summary["ecotrain/co2_kg"] == pytest.approx(run.co2_kg)
    assert summary["loss"] == pytest.approx(1 / 3)  # the user's metrics are untouched
    # per-step rows carry their own x-axis (declared with define_metric), not wandb's step
    assert [r["ecotrain/step"] for r in rows] == [1, 2, 3]
    energies = [r["ecotrain/energy_kwh"] for r in rows]
    assert energies == sorted(energies) and energies[-1] <= run.facility_energy_kwh
    assert (Path(wb.dir).parent / f"run-{wb.id}.wandb").stat().st_size > 0


def test_callbacks_find_a_run_the_trainer_started_later(replay: None, mlflow_store: str) -> None:
    # HF's MLflowCallback starts its run at train begin, after ecotrain's run has started
    import mlflow

    from ecotrain.callbacks import ProgressReporter

    with ecotrain.track(quiet=True) as run:
        reporter = ProgressReporter(run)
        with mlflow.start_run() as active:
            for step in range(1, 4):
                time.sleep(0.05)
                reporter.step(step, 3)
    client = _client(mlflow_store)
    steps = {m.step for m in client.get_metric_history(active.info.run_id, "ecotrain/co2_kg")}
    assert {1, 2, 3} <= steps
    got = client.get_run(active.info.run_id)
    assert got.data.tags["ecotrain.run_id"] == run.run_id
    assert got.data.metrics["ecotrain/co2_kg"] == pytest.approx(run.co2_kg)


WANDB_CHILD = """
import json, os, sys, time
import wandb, ecotrain
wb = wandb.init(project="ecotrain-test", dir=os.environ["WANDB_DIR"])
rows = []
real_log = wb.log
def log(data, *a, **k):
    if "ecotrain/step" in data:
        rows.append(dict(data))
    return real_log(data, *a, **k)
wb.log = log
with ecotrain.track() as run:  # attached to the wrapper
    for step in range(1, 5):
        time.sleep(0.5)
        run.progress(step, 4)
summary = {k: v for k, v in dict(wb.summary).items() if k.startswith("ecotrain")}
wb.finish()
print(json.dumps({"rows": rows, "summary": summary}))
"""


def test_wandb_inside_ecotrain_run_gets_the_wrappers_figures(
    replay: None, isolated: Path, db_path: Path
) -> None:
    pytest.importorskip("wandb")
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(isolated)}
    result = run_cli("run", "--", PY, "-c", WANDB_CHILD, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    (row,) = wait_synced(db_path)
    steps = [r["ecotrain/step"] for r in out["rows"]]
    assert steps and steps == sorted(steps) and set(steps) <= {1, 2, 3, 4}
    assert len(steps) >= 2  # per step, as the wrapper saw the progress
    energies = [r["ecotrain/energy_kwh"] for r in out["rows"]]
    assert energies == sorted(energies) and energies[0] > 0
    assert energies[-1] <= row["facility_energy_kwh"]  # figures so far, never beyond the end
    assert out["summary"]["ecotrain.run_id"] == row["run_id"]
    # the shared figures file goes with the run
    events = Path(os.environ["ECOTRAIN_DATA_DIR"]) / "events"
    assert not list(events.glob("*.figures.json"))
