"""Shared GPUs and MIG slices on a fake NVML: every joule charged once, with the method stated."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import NVML_ERROR_GPU_IS_LOST, FakeClock, FakeGPU, FakeNVML, NVMLError

from ecotrain.accounting import account_summaries
from ecotrain.sensors import SensorError
from ecotrain.sensors.gpushare import ProcessUse, split
from ecotrain.sensors.nvidia import NvidiaGPUSensor, probe, select_devices

A = "GPU-abcd1234-0000-0000-0000-000000000000"
MIG_A = "MIG-aaaa1111-0000-0000-0000-000000000000"
MIG_B = "MIG-bbbb2222-0000-0000-0000-000000000000"
GB = 1 << 30
ALICE, BOB = 101, 202  # the processes of two runs (two students) on one GPU


def make(*gpus: FakeGPU) -> tuple[FakeClock, FakeNVML]:
    clock = FakeClock()
    nvml = FakeNVML(clock, list(gpus))
    nvml.nvmlInit()
    return clock, nvml


def tick_all(sensors: list[NvidiaGPUSensor], clock: FakeClock, until: float) -> None:
    for s in sensors:
        s.start(clock.t)
    while clock.t < until - 1e-9:
        clock.t = round(clock.t + 1.0, 9)
        for s in sensors:
            s.sample(clock.t)


def pids_of(*pids: int):
    return lambda now: list(pids)


def shared_gpu() -> FakeGPU:
    """Two students' processes on one GPU, 10 s:

    (0, 2]  both listed, no SM samples, 3 GB : 1 GB  -> memory 75 : 25, GPU at 100 W
    (2, 6]  SM 60 : 20                               -> SM utilisation 75 : 25, 300 W
    (6, 10] Alice SM 50, Bob listed with SM 0        -> 100 : 0, 300 W
    """

    def energy_mj(t: float) -> float:
        return 1000 * (100 * min(t, 2) + 300 * max(0.0, t - 2))

    def processes(t: float) -> dict[int, int | None]:
        return {ALICE: 3 * GB, BOB: 1 * GB}

    def proc_util(t: float) -> dict[int, int]:
        if t <= 2:
            return {}
        if t <= 6:
            return {ALICE: 60, BOB: 20}
        return {ALICE: 50, BOB: 0}

    return FakeGPU(A, energy_mj=energy_mj, processes=processes, proc_util=proc_util)


def test_two_runs_on_one_gpu_are_charged_shares_that_sum_to_the_measured_energy():
    clock, nvml = make(shared_gpu())
    alice = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(ALICE))
    bob = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(BOB))
    tick_all([alice, bob], clock, 10)
    # measured: 2 s x 100 W + 8 s x 300 W = 2600 J
    # Alice: 0.75 x 200 + 0.75 x 1200 + 1 x 1200 = 2250 J; Bob: 0.25 x 200 + 0.25 x 1200 = 350 J
    assert alice.energy_j == pytest.approx(2250.0)
    assert bob.energy_j == pytest.approx(350.0)
    assert alice.energy_j + bob.energy_j == pytest.approx(2600.0)
    a = alice.summary().hardware["devices"][0]
    b = bob.summary().hardware["devices"][0]
    assert a["device_energy_j"] == b["device_energy_j"] == pytest.approx(2600.0)
    assert a["share"] == pytest.approx(2250 / 2600, abs=1e-4)
    assert a["share_method"] == b["share_method"] == "sm_utilisation"
    # Bob's idle process stays listed after 6 s: Alice's 100 % is still a split, not exclusive
    assert a["share_method_s"] == b["share_method_s"] == {"memory": 2.0, "sm_utilisation": 8.0}
    assert a["other_processes"] == b["other_processes"] == 1  # a count, never names
    # idle: the lowest tick power, 100 W; Alice's charged device-seconds 8.5, Bob's 1.5
    assert a["idle_power_w"] == b["idle_power_w"] == pytest.approx(100.0)
    assert a["idle_energy_j"] == pytest.approx(850.0)
    assert a["above_idle_energy_j"] == pytest.approx(1400.0)
    assert b["idle_energy_j"] == pytest.approx(150.0)
    assert b["above_idle_energy_j"] == pytest.approx(200.0)
    # above idle and idle each sum to the GPU's own
    assert a["device_idle_energy_j"] == pytest.approx(1000.0)
    assert a["above_idle_energy_j"] + b["above_idle_energy_j"] == pytest.approx(2600 - 1000)
    # the run's GPU-hours are its share of device time too
    assert alice.hardware()["gpu_hours"] == pytest.approx(8.5 / 3600)
    note = next(n for n in bob.summary().notes if "shared with" in n)
    assert "13.5% of its 2600 J by sm_utilisation" in note
    assert "idle 100 W: 200 J above idle of 350 J charged" in note


def test_the_split_reaches_the_run_record():
    clock, nvml = make(shared_gpu())
    bob = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(BOB))
    tick_all([bob], clock, 10)
    from ecotrain.accounting import site_from_settings

    record, hardware = account_summaries([bob.summary()], site_from_settings({"pue": 1.0}), 10)
    assert record["gpu_energy_j"] == pytest.approx(350.0)
    assert record["gpu_method"] == "measured"
    device = hardware["gpu_devices"][0]
    assert device["share_method"] == "sm_utilisation" and device["other_processes"] == 1
    assert device["device_energy_j"] == pytest.approx(2600.0)


def test_idle_gaps_carry_the_last_split_and_nothing_before_first_use():
    # 200 W throughout. Nobody on the GPU for 2 s, then Alice alone for 3 s, then nobody
    # (she is writing a checkpoint) for 5 s: the gap is hers, the start nobody's.
    def processes(t: float) -> dict[int, int | None]:
        return {ALICE: GB} if 2 < t <= 5 else {}

    clock, nvml = make(FakeGPU(A, power_w=200.0, processes=processes, proc_util=lambda t: {}))
    alice = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(ALICE))
    tick_all([alice], clock, 10)
    assert alice.energy_j == pytest.approx(8 * 200.0)
    d = alice.hardware()["devices"][0]
    assert d["share_method_s"] == {"before_first_use": 2.0, "carried": 5.0, "exclusive": 3.0}
    assert d["share_method"] == "exclusive"
    assert d["device_energy_j"] == pytest.approx(2000.0)
    assert d["before_first_use_j"] == pytest.approx(400.0)
    assert any("400 J in the 2 s before any process used it" in n for n in alice.summary().notes)


def test_a_gpu_only_others_use_charges_nothing():
    # Five students see all GPUs; Bob's job runs on this one and Alice's run never touches it.
    clock, nvml = make(FakeGPU(A, power_w=250.0, processes=lambda t: {BOB: GB}))
    alice = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(ALICE))
    tick_all([alice], clock, 4)
    assert alice.energy_j == 0.0
    assert alice.hardware()["gpu_hours"] == 0.0
    assert alice.hardware()["devices"][0]["other_processes"] == 1


def test_without_process_list_the_gpu_is_charged_whole_and_said():
    clock, nvml = make(FakeGPU(A, power_w=250.0))  # processes=None: NOT_SUPPORTED
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(ALICE))
    tick_all([sensor], clock, 4)
    assert sensor.energy_j == pytest.approx(1000.0)
    assert sensor.hardware()["devices"][0]["share_method"] == "whole_gpu"
    assert any("no process list" in n and "charged whole" in n for n in sensor.notes)


def test_in_a_container_host_pids_cannot_be_split():
    # NVML lists host PIDs; none is visible in this PID namespace: charged whole, stated
    clock, nvml = make(FakeGPU(A, power_w=100.0, processes=lambda t: {48213: GB}))
    sensor = NvidiaGPUSensor(
        select_devices({}, nvml),
        nvml,
        pids=pids_of(7),
        in_container=True,
        pid_visible=lambda pid: False,
    )
    tick_all([sensor], clock, 3)
    assert sensor.energy_j == pytest.approx(300.0)
    assert any("host PIDs this container cannot see" in n for n in sensor.notes)


def test_memory_split_when_no_utilisation_samples_are_supported():
    procs = {ALICE: 6 * GB, BOB: 2 * GB, 303: None}
    clock, nvml = make(FakeGPU(A, power_w=400.0, processes=lambda t: procs))
    alice = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(ALICE))
    tick_all([alice], clock, 2)
    # one process with unknown memory: memory can't split fairly, so per process (1 of 3)
    assert alice.energy_j == pytest.approx(800.0 / 3)
    assert alice.hardware()["devices"][0]["share_method"] == "process_count"
    assert alice.hardware()["devices"][0]["max_other_processes"] == 2


def test_split_rules():
    assert split([ProcessUse(1, 30.0, GB), ProcessUse(2, 10.0, GB)], {1}) == (
        0.75,
        "sm_utilisation",
    )
    assert split([ProcessUse(1, 0.0, 3 * GB), ProcessUse(2, None, GB)], {1}) == (0.75, "memory")
    assert split([ProcessUse(1), ProcessUse(2), ProcessUse(3)], {1, 3}) == (2 / 3, "process_count")
    assert split([ProcessUse(1, 5.0, GB)], {1}) == (1.0, "exclusive")
    assert split([ProcessUse(2, 5.0, GB)], {1}) == (0.0, "sm_utilisation")


# -- MIG ---------------------------------------------------------------------------------


def mig_gpu(**kw) -> FakeGPU:
    """An A100 at 280 W split into a 1g slice (Alice) and a 3g slice (Bob)."""
    return FakeGPU(
        A,
        power_w=280.0,
        mig=[MIG_A, MIG_B],
        mig_mode=True,
        mig_slices={MIG_A: 1, MIG_B: 3},
        mig_processes={MIG_A: lambda t: {ALICE: GB}, MIG_B: lambda t: {BOB: GB}},
        **kw,
    )


def test_two_runs_on_two_mig_slices_sum_to_at_most_the_gpu(tmp_path: Path):
    clock, nvml = make(mig_gpu())
    env = {"ECOTRAIN_LOCK_DIR": str(tmp_path)}
    # both runs measure the same parent: the measurer lock is per slice, not per GPU
    alice = probe({**env, "CUDA_VISIBLE_DEVICES": MIG_A}, nvml, pids=pids_of(ALICE))
    bob = probe({**env, "CUDA_VISIBLE_DEVICES": MIG_B}, nvml, pids=pids_of(BOB))
    tick_all([alice, bob], clock, 10)
    # 2800 J on the parent: Alice 1/7, Bob 3/7
    assert alice.energy_j == pytest.approx(400.0)
    assert bob.energy_j == pytest.approx(1200.0)
    assert alice.energy_j + bob.energy_j <= 2800.0
    d = bob.hardware()["devices"][0]
    assert d["mig_fraction"] == pytest.approx(3 / 7, abs=1e-4)
    assert d["mig_slices"] == f"{MIG_B}: 3/7 compute slices"
    assert d["device_energy_j"] == pytest.approx(2800.0)
    assert any("MIG" in n and "3/7 compute slices" in n for n in bob.summary().notes)
    alice.close()
    bob.close()


def test_mig_fraction_from_the_profile_name_when_attributes_are_missing():
    clock, nvml = make(mig_gpu(mig_attributes=False))
    sensor = NvidiaGPUSensor(
        select_devices({"CUDA_VISIBLE_DEVICES": MIG_B}, nvml), nvml, pids=pids_of(BOB)
    )
    tick_all([sensor], clock, 7)
    assert sensor.energy_j == pytest.approx(280.0 * 7 * 3 / 7)


def test_parent_chosen_with_mig_on_charges_the_slices_the_run_is_on():
    # CUDA_VISIBLE_DEVICES unset: the run could be on any slice; Alice's process is on 1g
    clock, nvml = make(mig_gpu())
    alice = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(ALICE))
    tick_all([alice], clock, 7)
    assert alice.energy_j == pytest.approx(280.0)  # 1960 J x 1/7
    assert alice.hardware()["devices"][0]["mig_fraction"] == pytest.approx(4 / 7, abs=1e-4)


def test_mig_slice_without_process_list_is_still_its_fraction():
    # no pids (tree unknown): the slice's fraction still applies, charged whole within it
    clock, nvml = make(mig_gpu())
    sensor = NvidiaGPUSensor(select_devices({"CUDA_VISIBLE_DEVICES": MIG_A}, nvml), nvml)
    tick_all([sensor], clock, 7)
    assert sensor.energy_j == pytest.approx(280.0)


def test_two_runs_of_one_user_both_measure_a_gpu_that_lists_its_processes(tmp_path: Path):
    # same lock dir (same user, same node): the GPU lists processes, so both runs measure it
    # and each is charged its own share; without a process list the lock refuses the second
    clock, nvml = make(shared_gpu())
    env = {"ECOTRAIN_LOCK_DIR": str(tmp_path)}
    alice = probe(env, nvml, pids=pids_of(ALICE))
    bob = probe(env, nvml, pids=pids_of(BOB))
    assert any("also measured by another ecotrain run" in n for n in bob.notes)
    tick_all([alice, bob], clock, 10)
    assert alice.energy_j + bob.energy_j == pytest.approx(2600.0)
    assert bob.energy_j == pytest.approx(350.0)
    alice.close()
    bob.close()
    _, plain = make(FakeGPU(A))
    first = probe(env, plain, pids=pids_of(ALICE))
    with pytest.raises(SensorError, match="measured by another ecotrain process"):
        probe(env, plain, pids=pids_of(BOB))
    first.close()


def test_old_style_mig_entry_without_ids_is_charged_as_its_parent_and_said():
    clock, nvml = make(mig_gpu())
    sensor = NvidiaGPUSensor(
        select_devices({"CUDA_VISIBLE_DEVICES": f"MIG-{A}/1/0"}, nvml), nvml, pids=pids_of(ALICE)
    )
    tick_all([sensor], clock, 2)
    assert sensor.energy_j == pytest.approx(560.0)  # no GI/CI ids in this driver: whole
    assert any("not identified; charged the whole parent GPU" in n for n in sensor.notes)


def test_a_failure_while_setting_up_the_split_does_not_stop_the_sensor(monkeypatch):
    clock, nvml = make(FakeGPU(A, power_w=100.0, processes=lambda t: {}, proc_util=lambda t: {}))

    def lost(handle, ts):
        raise NVMLError(NVML_ERROR_GPU_IS_LOST)

    monkeypatch.setattr(nvml, "nvmlDeviceGetProcessUtilization", lost)
    sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml, pids=pids_of(ALICE))
    sensor.start(clock.t)  # must not raise: the run would lose every sensor
    assert any("process split not set up" in n for n in sensor.notes)


def test_discover_hands_the_childs_process_tree_to_the_gpu_sensor(monkeypatch, tmp_path: Path):
    import subprocess
    import sys
    import time

    from ecotrain import sensors
    from ecotrain.sensors import amd, nvidia

    seen = {}

    def fake_probe(env, pids=None):
        seen["pids"] = pids
        raise SensorError("no NVIDIA driver (test)")

    monkeypatch.setattr(nvidia, "probe", fake_probe)
    monkeypatch.setattr(amd, "probe", fake_probe)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        no_rapl = {"powercap_root": str(tmp_path)}  # the CPU model, whatever this host has
        found, _ = sensors.discover(child.pid, {"ECOTRAIN_LOCK_DIR": "/tmp"}, no_rapl)
        assert child.pid in seen["pids"](time.monotonic())
        # the CPU model reads the same tree: one read per tick, not two
        cpu = next(s for s in found if s.component == "cpu")
        assert seen["pids"].__closure__[0].cell_contents is cpu.tree
    finally:
        child.kill()
        child.wait()
