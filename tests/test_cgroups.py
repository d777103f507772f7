"""Containers: CPU quota from cgroup v2/v1 files in a fake tree, and the CPU model's count."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecotrain.sensors import cgroups
from ecotrain.sensors.cgroups import cpu_quota, in_container, usable_cpus
from ecotrain.sensors.cpu_model import CPUModelSensor


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_cpu_max_smallest_along_the_path(tmp_path: Path):
    write(tmp_path, "proc/self/cgroup", "0::/kubepods/pod7/c1\n")
    write(tmp_path, "sys/fs/cgroup/kubepods/pod7/c1/cpu.max", "max 100000\n")
    write(tmp_path, "sys/fs/cgroup/kubepods/pod7/cpu.max", "250000 100000\n")
    write(tmp_path, "sys/fs/cgroup/kubepods/cpu.max", "800000 100000\n")
    q = cpu_quota(tmp_path)
    assert q is not None and q.cpus == 2.5
    assert "cgroup v2 cpu.max (250000 100000)" in q.source


def test_v2_namespaced_root_and_unlimited(tmp_path: Path):
    # inside a container the cgroup namespace shows "/" and the files sit at the mount
    write(tmp_path, "proc/self/cgroup", "0::/\n")
    write(tmp_path, "sys/fs/cgroup/cpu.max", "50000 100000\n")
    assert cpu_quota(tmp_path).cpus == 0.5
    write(tmp_path, "sys/fs/cgroup/cpu.max", "max 100000\n")
    assert cpu_quota(tmp_path) is None


def test_v1_cfs_quota(tmp_path: Path):
    write(tmp_path, "proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    q = cpu_quota(tmp_path)
    assert q.cpus == 1.5 and "cgroup v1" in q.source
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n")
    assert cpu_quota(tmp_path) is None


def test_no_cgroup_files_is_no_limit(tmp_path: Path):
    assert cpu_quota(tmp_path) is None


def test_usable_cpus_rounds_the_quota_up_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(cgroups, "affinity_cpus", lambda: 64)
    write(tmp_path, "proc/self/cgroup", "0::/\n")
    write(tmp_path, "sys/fs/cgroup/cpu.max", "150000 100000\n")
    n, source = usable_cpus(tmp_path)
    assert n == 2
    assert "1.5 CPUs" in source
    # a CPU set smaller than the quota wins
    monkeypatch.setattr(cgroups, "affinity_cpus", lambda: 1)
    assert usable_cpus(tmp_path) == (1, "CPU affinity: 1 of 64 CPUs")


def test_container_detection(tmp_path: Path):
    assert in_container(tmp_path, env={}) is None
    write(tmp_path, "proc/1/cgroup", "0::/system.slice/containerd.service/kubepods-x\n")
    assert in_container(tmp_path, env={}) == "/proc/1/cgroup names kubepods"
    write(tmp_path, ".dockerenv", "")
    assert "Docker" in in_container(tmp_path, env={})
    assert "Kubernetes" in in_container(Path("/nonexistent"), env={"KUBERNETES_SERVICE_HOST": "x"})


class Tree:
    cpu_seconds = 0.0
    rss_bytes = 0

    def update(self, now: float) -> None:
        pass


def test_cpu_model_counts_utilisation_against_the_quota_and_energy_against_the_host():
    # 2-CPU quota on a 64-thread, 320 W host: the run keeps its 2 CPUs busy for 10 s
    tree = Tree()
    sensor = CPUModelSensor(
        tree, tdp_w=320.0, n_logical=64, cpu_model="x", usable=(2, "cgroup v2 cpu.max: 2 CPUs")
    )
    sensor.start(0.0)
    tree.cpu_seconds = 20.0
    r = sensor.sample(10.0)
    assert r.utilisation == pytest.approx(100.0)  # all of what it may use
    assert r.power_w == pytest.approx(320.0 * 2 / 64)  # 10 W, not the socket's 320 W
    assert r.energy_j == pytest.approx(100.0)
    sensor.finish(20.0, 10.0)
    hw = sensor.hardware()
    assert hw["cpu_count"] == 2 and hw["host_cpu_count"] == 64
    assert hw["mean_utilisation"] == pytest.approx(100.0)
    assert hw["cpu_count_source"] == "cgroup v2 cpu.max: 2 CPUs"
