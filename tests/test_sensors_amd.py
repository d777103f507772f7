"""AMD GPUs through a recorded fake amdsmi: counter, power, device masks, shares."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeAMDGPU, FakeAMDSMI, FakeClock

from ecotrain.sensors import SensorError
from ecotrain.sensors.amd import AMDGPUSensor, probe, select_devices

GB = 1 << 30


def uid(i: int) -> str:
    return f"{i}fff74a1-0000-1000-80e9-b4a4d2e4de4e"


def make(*gpus: FakeAMDGPU) -> tuple[FakeClock, FakeAMDSMI]:
    clock = FakeClock()
    smi = FakeAMDSMI(clock, list(gpus))
    smi.amdsmi_init(2)
    return clock, smi


def run(sensor: AMDGPUSensor, clock: FakeClock, until: float) -> None:
    sensor.start(clock.t)
    while clock.t < until - 1e-9:
        clock.t = round(clock.t + 1.0, 9)
        sensor.sample(clock.t)


def test_energy_counter_is_measured():
    # 500 W for 10 s; the accumulator counts 15.3 µJ steps
    clock, smi = make(FakeAMDGPU(uid(0), 0, power_w=500.0))
    sensor = AMDGPUSensor(select_devices({}, smi), smi)
    run(sensor, clock, 10)
    s = sensor.summary()
    assert s.method == "measured"
    assert s.energy_j == pytest.approx(5000.0, abs=15.3e-6 * 2)
    assert s.hardware["model"] == "AMD Instinct MI250X"
    assert s.hardware["devices"][0]["vendor"] == "AMD"
    assert s.hardware["gpu_hours"] == pytest.approx(10 / 3600)


def test_without_counter_power_is_integrated_from_the_average_when_current_is_na():
    # MI200-style: no energy counter here, current_socket_power "N/A", the average given
    def power(t: float) -> float:
        return 100.0 + 100.0 * min(t, 2.0)  # 100, 200, 300 W then flat

    clock, smi = make(FakeAMDGPU(uid(0), 0, power_w=power, has_counter=False, current_power=False))
    sensor = AMDGPUSensor(select_devices({}, smi), smi)
    run(sensor, clock, 4)
    s = sensor.summary()
    assert s.method == "integrated"
    assert s.energy_j == pytest.approx(150 + 250 + 300 + 300)  # trapezoid
    assert s.hardware["devices"][0]["power_source"] == "average_socket_power"
    assert any("no energy counter" in n and "average_socket_power" in n for n in s.notes)


def test_no_counter_and_no_power_is_not_a_silent_zero():
    clock, smi = make(
        FakeAMDGPU(uid(0), 0, has_counter=False, current_power=False, average_power=False)
    )
    sensor = AMDGPUSensor(select_devices({}, smi), smi)
    run(sensor, clock, 3)
    assert sensor.summary().method == "none"
    assert any("neither energy counter nor power" in n for n in sensor.notes)


def test_lost_gpu_keeps_its_energy():
    clock, smi = make(FakeAMDGPU(uid(0), 0, power_w=100.0, lost_at=5.0))
    sensor = AMDGPUSensor(select_devices({}, smi), smi)
    run(sensor, clock, 8)
    assert sensor.energy_j == pytest.approx(400.0, abs=1e-3)
    assert sensor.hardware()["devices"][0]["lost"] is True


@pytest.fixture
def four() -> FakeAMDSMI:
    # amd-smi lists by PCI address; HIP enumerates in another order (as on MI300X nodes)
    gpus = [
        FakeAMDGPU(uid(i), hip, serial=f"0x5C7D6D5F4A7B000{i}")
        for i, hip in enumerate([3, 2, 1, 0])
    ]
    return make(*gpus)[1]


def hips(devices) -> list[int]:
    return [d.hip_index for d in devices]


def test_hip_order_not_pci_order(four):
    assert hips(select_devices({}, four)) == [0, 1, 2, 3]
    assert [d.uuid for d in select_devices({"HIP_VISIBLE_DEVICES": "0"}, four)] == [uid(3)]


def test_rocr_then_hip_visible_devices(four):
    # ROCr keeps HIP 3 (by its unique id) and 1; HIP_VISIBLE_DEVICES=1 is the second of those
    env = {"ROCR_VISIBLE_DEVICES": "GPU-5C7D6D5F4A7B0000,1", "HIP_VISIBLE_DEVICES": "1"}
    assert hips(select_devices(env, four)) == [1]
    env = {"ROCR_VISIBLE_DEVICES": "2,0"}
    assert hips(select_devices(env, four)) == [2, 0]


def test_cuda_visible_devices_when_hip_is_unset(four):
    assert hips(select_devices({"CUDA_VISIBLE_DEVICES": "2,3"}, four)) == [2, 3]
    env = {"HIP_VISIBLE_DEVICES": "1", "CUDA_VISIBLE_DEVICES": "2,3"}
    assert hips(select_devices(env, four)) == [1]


def test_bad_entries_end_the_list(four):
    notes: list[str] = []
    assert hips(select_devices({"HIP_VISIBLE_DEVICES": "1,9,0"}, four, notes)) == [1]
    assert any("out of range" in n for n in notes)
    assert select_devices({"ROCR_VISIBLE_DEVICES": ""}, four) == []


def test_probe_with_no_visible_gpu_says_why_and_shuts_down(four, tmp_path: Path):
    with pytest.raises(SensorError, match="no AMD GPU visible"):
        probe({"HIP_VISIBLE_DEVICES": "", "ECOTRAIN_LOCK_DIR": str(tmp_path)}, four)
    assert four.initialised == 1  # the fixture's own init only


def test_probe_measures_and_closes(tmp_path: Path):
    clock = FakeClock()
    smi = FakeAMDSMI(clock, [FakeAMDGPU(uid(0), 0), FakeAMDGPU(uid(1), 1)])
    sensor = probe({"ROCR_VISIBLE_DEVICES": "1", "ECOTRAIN_LOCK_DIR": str(tmp_path)}, smi)
    assert smi.init_flags == [2]  # INIT_AMD_GPUS only: no CPU/HSMP probing
    assert sensor.hardware()["uuids"] == [uid(1)]
    sensor.close()
    assert smi.initialised == 0


def test_shared_amd_gpu_is_split_by_memory():
    procs = {11: 6 * GB, 22: 2 * GB}
    clock, smi = make(FakeAMDGPU(uid(0), 0, power_w=400.0, processes=lambda t: procs))
    mine = AMDGPUSensor(select_devices({}, smi), smi, pids=lambda now: [11])
    theirs = AMDGPUSensor(select_devices({}, smi), smi, pids=lambda now: [22])
    mine.start(0.0)
    theirs.start(0.0)
    for t in range(1, 6):
        clock.t = float(t)
        mine.sample(clock.t)
        theirs.sample(clock.t)
    assert mine.energy_j == pytest.approx(1500.0, abs=1e-3)
    assert theirs.energy_j == pytest.approx(500.0, abs=1e-3)
    d = mine.hardware()["devices"][0]
    assert d["share_method"] == "memory" and d["other_processes"] == 1


def test_two_runs_on_one_amd_gpu_each_measure_their_share(tmp_path: Path):
    clock = FakeClock()
    procs = {11: 3 * GB, 22: 1 * GB}
    smi = FakeAMDSMI(clock, [FakeAMDGPU(uid(0), 0, power_w=200.0, processes=lambda t: procs)])
    env = {"ECOTRAIN_LOCK_DIR": str(tmp_path)}
    first = probe(env, smi, pids=lambda now: [11])
    second = probe(env, smi, pids=lambda now: [22])
    for s in (first, second):
        s.start(0.0)
    clock.t = 4.0
    assert first.sample(4.0).energy_j + second.sample(4.0).energy_j == pytest.approx(800.0)
    assert second.energy_j == pytest.approx(200.0)
    first.close()
    second.close()


@pytest.mark.parametrize("code", [31, 45])  # NOT_FOUND, NO_ENERGY_DRV
def test_a_counter_error_at_start_falls_back_to_power_not_lost(monkeypatch, code):
    from fakes import AmdSmiLibraryException

    clock, smi = make(FakeAMDGPU(uid(0), 0, power_w=250.0))

    def no_counter(gpu):
        raise AmdSmiLibraryException(code)

    monkeypatch.setattr(smi, "amdsmi_get_energy_count", no_counter)
    sensor = AMDGPUSensor(select_devices({}, smi), smi)
    run(sensor, clock, 4)
    assert sensor.summary().method == "integrated"
    assert sensor.energy_j == pytest.approx(1000.0)
    assert "lost" not in sensor.hardware()["devices"][0]


def test_discover_names_the_missing_vendor_only_when_no_gpu_was_found(monkeypatch):
    from ecotrain import sensors
    from ecotrain.sensors import amd, nvidia

    clock, smi = make(FakeAMDGPU(uid(0), 0))

    def no_nvidia(env, pids=None):
        raise SensorError("no NVIDIA driver: libnvidia-ml.so.1 not found")

    monkeypatch.setattr(nvidia, "probe", no_nvidia)
    monkeypatch.setattr(amd, "probe", lambda env, pids=None: AMDGPUSensor([], smi))
    found, reasons = sensors.discover(None, {"ECOTRAIN_LOCK_DIR": "/tmp"}, None)
    assert any("no NVIDIA driver" in r for r in reasons)  # AMD probe failed too: both said

    monkeypatch.setattr(
        amd, "probe", lambda env, pids=None: AMDGPUSensor(select_devices({}, smi), smi, pids=pids)
    )
    found, reasons = sensors.discover(None, {}, None)
    assert [s.name for s in found if s.component == "gpu"] == ["AMD Instinct MI250X x1"]
    assert not any("NVIDIA" in r for r in reasons)
