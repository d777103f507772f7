"""`ecotrain doctor`: each GPU with what ecotrain can and cannot read; the container's effect."""

from __future__ import annotations

import json
from pathlib import Path

from fakes import FakeAMDGPU, FakeAMDSMI, FakeClock, FakeGPU, FakeNVML

from ecotrain.doctor import container_report, gpu_inventory
from ecotrain.sensors import cgroups
from tests.conftest import run_cli

A = "GPU-abcd1234-0000-0000-0000-000000000000"
B = "GPU-beef5678-0000-0000-0000-000000000000"
MIG_A = "MIG-aaaa1111-0000-0000-0000-000000000000"


def test_each_gpu_says_what_can_and_cannot_be_read():
    clock = FakeClock()
    nvml = FakeNVML(
        clock,
        [
            FakeGPU(A, power_w=61.0, processes=lambda t: {1: 1, 2: 2}, proc_util=lambda t: {}),
            FakeGPU(B, name="Tesla P100", has_counter=False, mig=[MIG_A], mig_slices={MIG_A: 3}),
        ],
    )
    nvml.gpus[1].mig_mode = True
    smi = FakeAMDSMI(clock, [FakeAMDGPU("amd-0", 0, has_counter=False, current_power=False)])
    gpus = gpu_inventory({"CUDA_VISIBLE_DEVICES": "1", "HIP_VISIBLE_DEVICES": "0"}, nvml, smi)
    a, b, amd = gpus
    assert (a["vendor"], a["index"], a["uuid"]) == ("NVIDIA", 0, A)
    assert a["visible to runs here"] == "no" and b["visible to runs here"] == "yes"
    assert a["energy counter"] == "yes (measured)"
    assert a["power"] == "yes (61 W now)"
    assert a["processes"] == "yes (2 running now)"
    assert a["per-process utilisation"] == "yes (split by SM utilisation)"
    assert a["MIG"] == "not supported"
    assert b["energy counter"].startswith("no (nvmlDeviceGetTotalEnergyConsumption")
    assert b["processes"].startswith("no (")
    assert b["MIG"] == f"on: 1 slice(s): {MIG_A} (3/7 compute slices)"
    assert amd["vendor"] == "AMD" and amd["visible to runs here"] == "yes"
    assert amd["energy counter"].startswith("no (amdsmi_get_energy_count")
    assert amd["power"] == "yes (average_socket_power)"
    assert amd["processes"].startswith("no (")
    assert nvml.initialised == 0 and smi.initialised == 0  # both shut down again


def test_no_gpu_probing_when_disabled():
    assert gpu_inventory({"ECOTRAIN_NO_GPU": "1"}, FakeNVML(FakeClock(), [FakeGPU(A)])) == []


def test_container_report_says_what_the_quota_changes(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(cgroups, "affinity_cpus", lambda: None)
    monkeypatch.setattr(cgroups.os, "cpu_count", lambda: 64)
    monkeypatch.setattr("ecotrain.doctor.os.cpu_count", lambda: 64)
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text("0::/\n")
    (tmp_path / "sys/fs/cgroup").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/cpu.max").write_text("400000 100000\n")
    (tmp_path / ".dockerenv").write_text("")
    report = container_report(tmp_path, env={})
    assert report["in container"] == "/.dockerenv exists (Docker)"
    assert report["cpu quota"].startswith("4 CPUs (cgroup v2 cpu.max (400000 100000)")
    assert report["usable cpus"].startswith("4 (")
    changes = " ".join(report["what changes"])
    assert "against 4 CPU(s)" in changes and "TDP / 64" in changes
    assert "RAPL is not used" in changes and "host PIDs" in changes


def test_not_in_a_container(tmp_path: Path):
    report = container_report(tmp_path, env={})
    assert report["in container"] == "no"
    assert report["cpu quota"] == "none"


def test_doctor_cli_lists_gpus_and_container():
    out = run_cli("doctor", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["gpus"] == []  # tests run with ECOTRAIN_NO_GPU=1
    assert set(report["container"]) == {"in container", "cpu quota", "usable cpus", "what changes"}
    text = run_cli("doctor")
    assert text.returncode == 0, text.stderr
    assert "Container" in text.stdout and "usable cpus" in text.stdout
