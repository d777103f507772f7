"""Jobs across ranks: a GPU is measured by one process per node, never counted twice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ecotrain.context import job_context
from ecotrain.sensors.base import SensorError
from ecotrain.sensors.nvidia import probe
from tests.conftest import run_cli
from tests.fakes import FakeClock, FakeGPU, FakeNVML

UUIDS = [f"GPU-{i:04d}aaaa-0000-0000-0000-000000000000" for i in range(8)]


def test_eight_ranks_seeing_eight_gpus_count_each_gpu_once(tmp_path: Path) -> None:
    env = {"ECOTRAIN_LOCK_DIR": str(tmp_path / "locks")}
    clock = FakeClock()
    nvml = FakeNVML(clock, [FakeGPU(u, power_w=300.0) for u in UUIDS])
    sensors, refused = [], []
    for _rank in range(8):  # 8 srun tasks on one node, each sees all 8 GPUs
        try:
            sensors.append(probe(env, nvml))
        except SensorError as e:
            refused.append(str(e))
    assert len(sensors) == 1 and len(refused) == 7
    assert "measured by another ecotrain process" in refused[0]
    sensor = sensors[0]
    sensor.start(clock.t)
    clock.t = 10.0
    sensor.sample(clock.t)
    # 8 GPUs x 300 W x 10 s, once in the whole job
    assert sensor.energy_j == pytest.approx(8 * 300.0 * 10.0)
    sensor.close()
    # Locks are released with the sensor: the next run on the node measures again.
    again = probe(env, nvml)
    assert again.hardware()["count"] == 8
    again.close()


def test_ranks_split_devices_when_each_sees_its_own(tmp_path: Path) -> None:
    env = {"ECOTRAIN_LOCK_DIR": str(tmp_path / "locks")}
    nvml = FakeNVML(FakeClock(), [FakeGPU(u) for u in UUIDS[:2]])
    first = probe({**env, "CUDA_VISIBLE_DEVICES": "0"}, nvml)
    second = probe({**env, "CUDA_VISIBLE_DEVICES": "0,1"}, nvml)
    assert first.hardware()["uuids"] == [UUIDS[0]]
    assert second.hardware()["uuids"] == [UUIDS[1]]
    assert any("measured by another" in n for n in second.notes)
    first.close()
    second.close()


def test_job_context_from_slurm_and_torchrun() -> None:
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1",
        "SLURMD_NODENAME": "gpu07",
    }
    assert job_context(slurm) == {"job_id": "4242", "rank": 5, "local_rank": 1, "node": "gpu07"}
    torch = {"TORCHELASTIC_RUN_ID": "abc", "RANK": "3", "LOCAL_RANK": "3"}
    ctx = job_context(torch)
    assert (ctx["job_id"], ctx["rank"], ctx["local_rank"]) == ("abc", 3, 3)
    assert job_context({}, job="sweep-1")["job_id"] == "sweep-1"


def test_runs_of_a_job_show_as_one_row_with_ranks(db_path: Path) -> None:
    for rank in range(3):
        env = {"SLURM_JOB_ID": "777", "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)}
        result = run_cli("run", "-q", "--", sys.executable, "-c", "pass", env=env)
        assert result.returncode == 0, result.stderr
    out = run_cli("runs", "--job", "777")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "job 777: 3 runs" in lines[0]
    assert sum("rank" in line for line in lines) >= 1
    data = json.loads(run_cli("runs", "--job", "777", "--json").stdout)
    assert sorted(r["rank"] for r in data) == [0, 1, 2]
