"""ecotrain.track: in-process runs on replayed sensors, the decorator, nesting in `ecotrain run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils

import ecotrain
from ecotrain.sensors.replay import write_trace
from tests.conftest import run_cli, wait_synced

PY = sys.executable
GPU_W, CPU_W, RAM_W = 300.0, 50.0, 10.0


@pytest.fixture
def replay(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant-power traces for all three components: the energy is power x time."""
    paths = []
    for component, watts in (("gpu", GPU_W), ("cpu", CPU_W), ("ram", RAM_W)):
        path = isolated / f"{component}.json"
        write_trace(
            path, component=component, method="integrated", points=[(0, watts), (3600, watts)]
        )
        paths.append(str(path))
    monkeypatch.setenv("ECOTRAIN_REPLAY", os.pathsep.join(paths))


def test_plain_training_loop(replay: None, db_path: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "final.safetensors"
    with ecotrain.track(project="bert-distill", tags={"lr": 3e-4}, quiet=True) as run:
        assert run.energy_kwh is None  # known once the block ends
        for step in range(1, 9):
            time.sleep(0.05)
            run.progress(step, 8)
        ckpt.write_bytes(b"weights")
        run.log_checkpoint(ckpt, role="produced")
    assert run.status == "finished"
    (row,) = sqlite_utils.Database(db_path)["runs"].rows
    assert row["run_id"] == run.run_id
    assert (row["source"], row["status"], row["project"]) == ("api", "finished", "bert-distill")
    assert json.loads(row["tags"]) == {"lr": "0.0003"}
    # every sensor replays constant power over the same window: energies are in power ratio
    assert row["gpu_energy_j"] / row["cpu_energy_j"] == pytest.approx(GPU_W / CPU_W, rel=1e-9)
    assert row["gpu_energy_j"] / row["ram_energy_j"] == pytest.approx(GPU_W / RAM_W, rel=1e-9)
    # ... and that window lies within the block (sensors start a little after it opens)
    assert 0.2 * 8 * 0.05 * GPU_W < row["gpu_energy_j"] <= GPU_W * row["duration_s"]
    total_j = row["gpu_energy_j"] + row["cpu_energy_j"] + row["ram_energy_j"]
    assert row["it_energy_kwh"] == pytest.approx(total_j / 3.6e6)
    # energy_kwh is facility energy, as in the CLI, the tables and CO2e; IT energy by name
    assert run.energy_kwh == row["facility_energy_kwh"] > row["it_energy_kwh"]
    assert run.it_energy_kwh == row["it_energy_kwh"]
    assert run.co2_kg == row["co2_kg"] and run.cost_usd == row["cost_usd"]
    assert json.loads(row["progress"])["fraction"] == 1.0
    (link,) = sqlite_utils.Database(db_path)["run_checkpoints"].rows
    assert (link["run_id"], link["role"], link["path"]) == (run.run_id, "produced", str(ckpt))
    assert link["detected_by"] == "api"


def test_decorator_each_call_is_a_run(replay: None, db_path: Path) -> None:
    @ecotrain.track(project="deco", quiet=True)
    def train(n: int) -> int:
        time.sleep(0.05)
        return n * 2

    assert train(2) == 4
    first = train.last_run
    assert train(3) == 6
    assert train.last_run.run_id != first.run_id
    rows = list(sqlite_utils.Database(db_path)["runs"].rows)
    assert sorted(r["run_id"] for r in rows) == sorted([first.run_id, train.last_run.run_id])


def test_exception_marks_run_failed_and_propagates(replay: None, db_path: Path) -> None:
    with pytest.raises(ValueError, match="diverged"), ecotrain.track(quiet=True) as run:
        raise ValueError("loss diverged")
    (row,) = sqlite_utils.Database(db_path)["runs"].rows
    assert (row["status"], row["run_id"]) == ("failed", run.run_id)
    assert row["end_reason"] == "exception: ValueError: loss diverged"


def test_nested_track_in_process_attaches(replay: None, db_path: Path) -> None:
    with ecotrain.track(quiet=True) as outer, ecotrain.track() as inner:
        inner.progress(1, 4)
    assert inner.attached_to == outer.run_id and inner.energy_kwh is None
    assert "counted there" in inner.unavailable_reason
    assert len(list(sqlite_utils.Database(db_path)["runs"].rows)) == 1


def test_import_ecotrain_stays_cheap() -> None:
    code = "import sys, ecotrain; print(sorted(m for m in sys.modules if m.startswith('ecotrain')))"
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['ecotrain']"


CHILD = """
import json, pathlib, time, ecotrain
ckpt = pathlib.Path("model.safetensors")
with ecotrain.track(project="inner") as run:
    for step in range(1, 6):
        time.sleep(0.1)
        run.progress(step, 10)
    ckpt.write_bytes(b"w")
    run.log_checkpoint(ckpt)
    time.sleep(0.3)
print(json.dumps({"id": run.run_id, "kwh": run.energy_kwh, "why": run.unavailable_reason}))
"""


def test_nested_under_ecotrain_run_attaches_to_outer(db_path: Path, isolated: Path) -> None:
    result = run_cli("run", "--project", "outer", "--", PY, "-c", CHILD)
    assert result.returncode == 0, result.stderr
    inner = json.loads(result.stdout)
    assert inner["kwh"] is None and "attached to the enclosing `ecotrain run`" in inner["why"]
    (row,) = wait_synced(db_path)  # one run: the outer one, not counted twice
    assert row["run_id"] == inner["id"] and row["source"] == "run"
    progress = json.loads(row["progress"])
    assert (progress["step"], progress["total"], progress["fraction"]) == (5, 10, 0.5)
    (link,) = sqlite_utils.Database(db_path)["run_checkpoints"].rows
    assert link["path"].endswith("model.safetensors") and link["role"] == "produced"
    # the events file is gone with the run
    assert not (isolated / "home" / "data" / "events" / f"{row['run_id']}.jsonl").exists()
