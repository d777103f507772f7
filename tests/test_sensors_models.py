"""CPU and RAM models, the shared process tree, and discover()."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecotrain.context import ranks_on_node
from ecotrain.sensors import discover
from ecotrain.sensors.cpu_model import (
    CPUModelSensor,
    load_cpu_table,
    match_cpu,
    normalise_cpu_name,
    resolve_tdp,
)
from ecotrain.sensors.memory import GB, RAMModelSensor
from ecotrain.sensors.proctree import ProcessTree


class FakeTree:
    """Stands in for ProcessTree: the test sets cpu_seconds and rss_bytes."""

    def __init__(self) -> None:
        self.cpu_seconds = 0.0
        self.rss_bytes = 0
        self.updates = 0

    def update(self, now: float) -> None:
        self.updates += 1


# -- TDP lookup -------------------------------------------------------------------------


def test_codecarbon_table_is_read_from_disk():
    assert len(load_cpu_table()) > 4000
    # in a fresh interpreter: discover() must not import codecarbon, pandas or psutil
    code = (
        "import os, sys\n"
        "from ecotrain.sensors import discover\n"
        "sensors, _ = discover(os.getpid(), {'ECOTRAIN_NO_GPU': '1'}, None)\n"
        "[s.sample(1.0) for s in sensors]\n"
        "print(sorted(m for m in ('codecarbon', 'pandas', 'psutil') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize(
    ("brand", "tdp"),
    [
        ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", 65.0),
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", 95.0),
        ("AMD EPYC 7282 16-Core Processor", 120.0),
        ("Intel(R) Xeon(R) Gold 6222V CPU @ 1.80GHz", 115.0),
    ],
)
def test_known_cpus(brand, tdp):
    found, source = resolve_tdp(brand, 16)
    assert found == tdp
    assert source.startswith("codecarbon cpu_power.csv")


def test_normalise():
    assert normalise_cpu_name("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz") == (
        "intel xeon e5-2690 v4"
    )


def test_longest_contained_name_wins():
    table = {"amd epyc 7282": 120.0, "amd epyc": 999.0, "7282": 1.0}
    assert match_cpu("AMD EPYC 7282 16-Core Processor", table) == ("amd epyc 7282", 120.0)


def test_ambiguous_match_is_no_match():
    table = {"xeon gold 6248": 150.0, "xeon gold 6248r": 205.0, "intel 6248r": 205.0}
    assert match_cpu("Intel Xeon Gold 6248 6248R", table) is None


def test_unknown_cpu_falls_back_to_4w_per_thread():
    tdp, source = resolve_tdp("Imaginary Chip 9000", 12)
    assert tdp == 48.0
    assert "fallback 4 W x 12 threads" in source
    sensor = CPUModelSensor(FakeTree(), cpu_model="Imaginary Chip 9000", n_logical=12)
    assert sensor.tdp_w == 48.0
    assert sensor.hardware()["tdp_source"].startswith("fallback")
    assert any("4 W x 12" in n for n in sensor.notes)


# -- CPU model --------------------------------------------------------------------------


def test_cpu_model_energy_from_sampled_cpu_seconds():
    tree = FakeTree()
    sensor = CPUModelSensor(tree, tdp_w=100.0, n_logical=4, cpu_model="Test CPU")
    tree.cpu_seconds = 3.0  # used before start: not this sensor's
    sensor.start(0.0)
    tree.cpu_seconds = 3.0 + 4.0  # 4 CPU-seconds in 2 s on 4 CPUs: 50 %
    r = sensor.sample(2.0)
    assert r.energy_j == pytest.approx(100.0 * 4.0 / 4)
    assert r.power_w == pytest.approx(50.0)
    assert r.utilisation == pytest.approx(50.0)
    assert sensor.summary().method == "modelled"


def test_cpu_model_finish_uses_rusage_when_larger():
    tree = FakeTree()
    sensor = CPUModelSensor(tree, tdp_w=65.0, n_logical=8, cpu_model="Test CPU")
    sensor.start(0.0)
    tree.cpu_seconds = 6.0
    sensor.sample(5.0)
    sensor.finish(10.0, 20.0)
    s = sensor.summary()
    assert s.energy_j == pytest.approx(65.0 * 10.0 / 8)
    assert s.hardware["cpu_seconds"] == 10.0
    assert s.hardware["mean_utilisation"] == pytest.approx(100 * 10 / (20 * 8))
    # rusage smaller than what was sampled (descendants never waited for): sampled kept
    sensor.finish(2.0, 20.0)
    assert sensor.energy_j == pytest.approx(65.0 * 10.0 / 8)


# -- RAM model --------------------------------------------------------------------------


def test_ram_model_trapezoid():
    tree = FakeTree()
    sensor = RAMModelSensor(tree)
    tree.rss_bytes = 2 * GB
    sensor.start(0.0)
    tree.rss_bytes = 6 * GB
    sensor.sample(10.0)
    # 0.375 W/GB: 0.75 W -> 2.25 W over 10 s, trapezoid = 15 J
    assert sensor.energy_j == pytest.approx(15.0)
    tree.rss_bytes = 6 * GB
    r = sensor.sample(20.0)
    assert r.energy_j == pytest.approx(15.0 + 22.5)
    assert r.power_w == pytest.approx(2.25)
    hw = sensor.hardware()
    assert hw["w_per_gb"] == 0.375
    assert hw["max_rss_gb"] == 6.0
    assert hw["mean_rss_gb"] == pytest.approx(37.5 / 0.375 / 20)
    assert "codecarbon" in hw["source"] and "Green Algorithms" in hw["source"]


def test_cpu_and_ram_share_one_tree_read_per_tick():
    tree = ProcessTree(os.getpid())
    cpu = CPUModelSensor(tree, tdp_w=10.0, n_logical=1, cpu_model="x")
    ram = RAMModelSensor(tree)
    cpu.start(1.0)
    ram.start(1.0)
    reads = []
    original = tree._read_all
    tree._read_all = lambda: (reads.append(1), original())[1]
    cpu.sample(2.0)
    ram.sample(2.0)
    assert len(reads) == 1
    assert tree.rss_bytes > 10 * 2**20


# -- process tree on real processes ------------------------------------------------------

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def test_proctree_measures_a_busy_child():
    child = subprocess.Popen([sys.executable, "-c", BUSY.format(s=0.5)])
    tree = ProcessTree(child.pid)
    t0 = time.monotonic()
    tree.update(t0)
    while child.poll() is None:
        time.sleep(0.05)
        tree.update(time.monotonic())
    assert tree.cpu_seconds > 0.3
    assert tree.max_rss_bytes > 1_000_000
    assert not tree.root_alive


def test_proctree_finds_grandchildren():
    # a shell that starts a busy python: the python is a grandchild
    script = BUSY.format(s=0.6)
    child = subprocess.Popen(
        ["/bin/sh", "-c", f'{sys.executable} -c "$0"; true', script],
    )
    tree = ProcessTree(child.pid)
    tree.update(time.monotonic())
    while child.poll() is None:
        time.sleep(0.05)
        tree.update(time.monotonic())
    assert tree.processes_seen >= 2
    assert tree.cpu_seconds > 0.3


# -- discover ---------------------------------------------------------------------------


def test_discover_without_gpu_or_rapl(tmp_path: Path):
    env = {"ECOTRAIN_NO_GPU": "1"}
    sensors, reasons = discover(os.getpid(), env, {"powercap_root": str(tmp_path / "none")})
    assert sorted((s.component, s.method) for s in sensors) == [
        ("cpu", "modelled"),
        ("ram", "modelled"),
    ]
    assert reasons[0] == "gpu: disabled by ECOTRAIN_NO_GPU"
    assert any(r.startswith("cpu/ram: RAPL: no powercap") for r in reasons)
    assert sensors[0].tree is sensors[1].tree


def test_discover_prefers_rapl(tmp_path: Path):
    for entry, name in [("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram")]:
        (tmp_path / entry).mkdir()
        (tmp_path / entry / "name").write_text(name)
        (tmp_path / entry / "energy_uj").write_text("5")
    sensors, _ = discover(1, {"ECOTRAIN_NO_GPU": "1"}, {"powercap_root": str(tmp_path)})
    assert [(s.component, s.method) for s in sensors] == [("cpu", "measured"), ("ram", "measured")]


@pytest.mark.parametrize(
    ("env", "ranks"),
    [
        ({"LOCAL_WORLD_SIZE": "8"}, 8),
        ({"SLURM_STEP_TASKS_PER_NODE": "4"}, 4),
        ({"SLURM_STEP_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "3"}, 1),
        ({"SLURM_STEP_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "1"}, 2),
    ],
)
def test_rapl_is_not_counted_once_per_rank_on_a_shared_node(tmp_path: Path, env, ranks):
    for entry, name in [("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram")]:
        (tmp_path / entry).mkdir()
        (tmp_path / entry / "name").write_text(name)
        (tmp_path / entry / "energy_uj").write_text("5")
    assert ranks_on_node(env) == ranks
    sensors, reasons = discover(
        os.getpid(), {"ECOTRAIN_NO_GPU": "1", **env}, {"powercap_root": str(tmp_path)}
    )
    expected = "measured" if ranks == 1 else "modelled"
    assert [(s.component, s.method) for s in sensors] == [("cpu", expected), ("ram", expected)]
    if ranks > 1:
        assert f"cpu/ram: RAPL not used: {ranks} ranks of this job share the node" in reasons[1]


def test_ranks_on_node_outside_a_launch():
    assert ranks_on_node({}) == 1
    assert ranks_on_node({"SLURM_STEP_TASKS_PER_NODE": "garbage"}) == 1
    assert ranks_on_node({"SLURM_TASKS_PER_NODE": "8"}) == 1  # a batch script runs once


def test_discover_with_no_child_has_no_models():
    sensors, reasons = discover(None, {"ECOTRAIN_NO_GPU": "1"}, {"powercap_root": "/nonexistent"})
    assert sensors == []
    assert "cpu: no process to model (no child pid)" in reasons


def test_discover_gpu_reason_on_this_machine():
    # no NVIDIA driver on the test machines: the reason says so, nothing raises
    sensors, reasons = discover(os.getpid(), {}, None)
    gpu = [s for s in sensors if s.component == "gpu"]
    if not gpu:
        assert any(r.startswith("gpu: ") for r in reasons)
    for s in sensors:
        s.close()
