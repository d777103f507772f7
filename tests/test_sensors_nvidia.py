"""NVIDIA sensor on a fake NVML: methods, device selection, lost GPUs."""

from __future__ import annotations

import pytest
from fakes import NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_UNKNOWN, FakeClock, FakeGPU, FakeNVML

from ecotrain.sensors import SensorError
from ecotrain.sensors.nvidia import NvidiaGPUSensor, probe, select_devices

A = "GPU-abcd1234-0000-0000-0000-000000000000"
B = "GPU-beef5678-0000-0000-0000-000000000000"
C = "GPU-abce9999-0000-0000-0000-000000000000"
MIG = "MIG-7f3e2c1a-1111-2222-3333-444455556666"


def make(*gpus: FakeGPU) -> tuple[FakeClock, FakeNVML]:
    clock = FakeClock()
    nvml = FakeNVML(clock, list(gpus))
    nvml.nvmlInit()
    return clock, nvml


def run(sensor: NvidiaGPUSensor, clock: FakeClock, until: float, step: float = 1.0) -> None:
    sensor.start(clock.t)
    while clock.t < until - 1e-9:
        clock.t = round(clock.t + step, 9)
        sensor.sample(clock.t)


def uuids(devices) -> list[str]:
    return [d.uuid for d in devices]


# -- energy ----------------------------------------------------------------------------


def test_counter_gpu_is_measured():
    # 360 W for 10 s: the counter rises 3,600,000 mJ
    clock, nvml = make(FakeGPU(A, power_w=360.0))
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml)
    run(sensor, clock, 10)
    s = sensor.summary()
    assert s.method == "measured"
    assert s.energy_j == pytest.approx(3600.0)
    assert s.hardware["mean_power_w"] == pytest.approx(360.0)
    assert s.hardware["max_power_w"] == pytest.approx(360.0)
    assert s.hardware["gpu_hours"] == pytest.approx(10 / 3600)
    assert s.hardware["mean_utilisation"] == 50
    assert s.hardware["uuids"] == [A]
    # power came from the counter: no power queries were needed
    assert nvml.calls.get("nvmlDeviceGetPowerUsage", 0) == 0


def test_power_only_gpu_is_integrated():
    clock, nvml = make(FakeGPU(A, name="Tesla P100", power_w=250.0, has_counter=False))
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml)
    run(sensor, clock, 10)
    s = sensor.summary()
    assert s.method == "integrated"
    assert s.energy_j == pytest.approx(2500.0)
    assert any("no energy counter" in n for n in s.notes)
    assert s.hardware["model"] == "Tesla P100"


def test_trapezoid_on_a_ramp():
    # power 100, 200, 300 W at t = 0, 1, 2 (sampled every 1 s) then flat 300 to t=4:
    # trapezoid = (100+200)/2 + (200+300)/2 + 300 + 300 = 150 + 250 + 600 = 1000 J
    def power(t: float) -> float:
        return 100.0 + 100.0 * min(t, 2.0)

    clock, nvml = make(FakeGPU(A, power_w=power, has_counter=False))
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml)
    run(sensor, clock, 4)
    assert sensor.summary().energy_j == pytest.approx(1000.0)
    assert sensor.hardware()["max_power_w"] == pytest.approx(300.0)


def test_gpu_with_no_energy_source_is_not_a_silent_zero():
    clock, nvml = make(FakeGPU(A, has_counter=False, has_power=False))
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml)
    run(sensor, clock, 3)
    s = sensor.summary()
    assert s.method == "none"
    assert any("neither energy counter nor power" in n for n in s.notes)


def test_mixed_devices_sum_and_weakest_method_wins():
    clock, nvml = make(FakeGPU(A, power_w=300.0), FakeGPU(B, power_w=100.0, has_counter=False))
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml)
    run(sensor, clock, 5)
    s = sensor.summary()
    assert s.method == "integrated"
    assert s.energy_j == pytest.approx(1500.0 + 500.0)
    assert [d["method"] for d in s.hardware["devices"]] == ["measured", "integrated"]
    assert s.hardware["count"] == 2
    assert s.hardware["gpu_hours"] == pytest.approx(2 * 5 / 3600)
    assert s.hardware["max_power_w"] == pytest.approx(400.0)


@pytest.mark.parametrize("has_counter", [True, False])
def test_gpu_lost_mid_run_keeps_its_energy(has_counter):
    clock, nvml = make(
        FakeGPU(A, power_w=100.0, has_counter=has_counter, lost_at=5.0),
        FakeGPU(B, power_w=200.0),
    )
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml)
    run(sensor, clock, 10)
    s = sensor.summary()
    # A counted to its last good read at t=4 (lost at 5), B the whole 10 s
    assert s.hardware["devices"][0]["energy_j"] == pytest.approx(400.0)
    assert s.hardware["devices"][0]["lost"] is True
    assert s.energy_j == pytest.approx(400.0 + 2000.0)
    assert any("lost at 5.0 s" in n for n in s.notes)


def test_unknown_error_also_counts_as_lost_and_sample_never_raises():
    clock, nvml = make(FakeGPU(A, power_w=100.0, lost_at=2.0, lost_code=NVML_ERROR_UNKNOWN))
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml)
    run(sensor, clock, 4)
    assert sensor.energy_j == pytest.approx(100.0)
    assert len([n for n in sensor.notes if "lost" in n]) == 1


# -- device selection ------------------------------------------------------------------


@pytest.fixture
def four():
    return make(
        FakeGPU(A),
        FakeGPU(B, name="NVIDIA H100 80GB HBM3"),
        FakeGPU(C),
        FakeGPU("GPU-dddd0000-0000-0000-0000-000000000000", mig=[MIG]),
    )[1]


def test_no_variable_means_all(four):
    assert [d.index for d in select_devices({}, four)] == [0, 1, 2, 3]


def test_indices(four):
    assert [d.index for d in select_devices({"CUDA_VISIBLE_DEVICES": "0,2"}, four)] == [0, 2]
    assert [d.index for d in select_devices({"CUDA_VISIBLE_DEVICES": "2, 1"}, four)] == [2, 1]


def test_uuid_prefix_and_index_mixed(four):
    chosen = select_devices({"CUDA_VISIBLE_DEVICES": "GPU-abcd,1"}, four)
    assert uuids(chosen) == [A, B]


def test_ambiguous_uuid_prefix_ends_the_list(four):
    notes: list[str] = []
    # GPU-abc matches A and C: CUDA stops there
    chosen = select_devices({"CUDA_VISIBLE_DEVICES": "1,GPU-abc,0"}, four, notes)
    assert uuids(chosen) == [B]
    assert any("ambiguous" in n for n in notes)


@pytest.mark.parametrize("value", ["", "-1", "NoDevFiles", " "])
def test_no_gpus(four, value):
    assert select_devices({"CUDA_VISIBLE_DEVICES": value}, four) == []


def test_invalid_entry_stops_the_list(four):
    assert [d.index for d in select_devices({"CUDA_VISIBLE_DEVICES": "1,7,0"}, four)] == [1]
    assert [d.index for d in select_devices({"CUDA_VISIBLE_DEVICES": "2,-1,0"}, four)] == [2]
    assert uuids(select_devices({"CUDA_VISIBLE_DEVICES": "GPU-beef,GPU-ffff,0"}, four)) == [B]


def test_repeated_entry_means_no_gpu(four):
    assert select_devices({"CUDA_VISIBLE_DEVICES": "0,1,0"}, four) == []


def test_mig_maps_to_parent(four):
    notes: list[str] = []
    chosen = select_devices({"CUDA_VISIBLE_DEVICES": MIG[:12]}, four, notes)
    assert [d.index for d in chosen] == [3]
    assert chosen[0].mig == [MIG[:12]]
    assert any("MIG slice" in n and "parent" in n for n in notes)


def test_old_style_mig_maps_to_parent(four):
    chosen = select_devices({"CUDA_VISIBLE_DEVICES": f"MIG-{B}/1/0"}, four)
    assert uuids(chosen) == [B]


def test_slurm_step_then_job(four):
    assert [d.index for d in select_devices({"SLURM_STEP_GPUS": "1,3"}, four)] == [1, 3]
    assert [d.index for d in select_devices({"SLURM_JOB_GPUS": "0-2"}, four)] == [0, 1, 2]
    env = {"SLURM_STEP_GPUS": "2", "SLURM_JOB_GPUS": "0,1,2,3"}
    assert [d.index for d in select_devices(env, four)] == [2]
    # CUDA_VISIBLE_DEVICES wins over SLURM
    env["CUDA_VISIBLE_DEVICES"] = "0"
    assert [d.index for d in select_devices(env, four)] == [0]


# -- probe -----------------------------------------------------------------------------


def test_probe_without_driver_says_why():
    nvml = FakeNVML(FakeClock(), [], init_error=NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(SensorError, match="no NVIDIA driver"):
        probe({}, nvml)


def test_probe_with_no_visible_gpu_shuts_nvml_down():
    nvml = FakeNVML(FakeClock(), [FakeGPU(A)])
    with pytest.raises(SensorError, match="no GPU visible.*CUDA_VISIBLE_DEVICES=''"):
        probe({"CUDA_VISIBLE_DEVICES": ""}, nvml)
    assert nvml.initialised == 0


def test_probe_returns_a_sensor_that_closes_nvml():
    clock = FakeClock()
    nvml = FakeNVML(clock, [FakeGPU(A), FakeGPU(B)])
    sensor = probe({"CUDA_VISIBLE_DEVICES": "1"}, nvml)
    assert sensor.hardware()["uuids"] == [B]
    assert sensor.hardware()["count"] == 1
    sensor.close()
    sensor.close()
    assert nvml.initialised == 0
