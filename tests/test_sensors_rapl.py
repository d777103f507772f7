"""RAPL on a fake powercap tree in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecotrain.sensors import SensorError
from ecotrain.sensors.rapl import RaplCPUSensor, RaplDomain, delta_uj, find_domains, rapl_sensors


def domain(root: Path, entry: str, name: str, energy: int, max_uj: int = 10**12) -> Path:
    d = root / entry
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_energy(d: Path, value: int) -> None:
    (d / "energy_uj").write_text(f"{value}\n")


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "powercap"
    return {
        "root": root,
        "pkg0": domain(root, "intel-rapl:0", "package-0", 1_000_000),
        "core0": domain(root, "intel-rapl:0:0", "core", 5),
        "dram0": domain(root, "intel-rapl:0:1", "dram", 2_000_000),
        "pkg1": domain(root, "intel-rapl:1", "package-1", 0),
        "psys": domain(root, "intel-rapl:2", "psys", 0),
    }


def test_wraparound():
    assert delta_uj(900, 100, 1000) == 200
    assert delta_uj(100, 900, 1000) == 800


def test_domains_found(tree):
    packages, drams = find_domains(tree["root"])
    assert [d.name for d in packages] == ["package-0 (intel-rapl:0)", "package-1 (intel-rapl:1)"]
    assert [d.name for d in drams] == ["dram (intel-rapl:0:1)"]


def test_package_and_dram_energy(tree):
    found, reasons = rapl_sensors(tree["root"])
    assert reasons == []
    cpu, ram = found["cpu"], found["ram"]
    assert (cpu.component, cpu.method, ram.component, ram.method) == (
        "cpu",
        "measured",
        "ram",
        "measured",
    )
    cpu.start(0.0)
    ram.start(0.0)
    set_energy(tree["pkg0"], 1_000_000 + 30_000_000)  # +30 J
    set_energy(tree["pkg1"], 20_000_000)  # +20 J
    set_energy(tree["dram0"], 2_000_000 + 4_000_000)  # +4 J
    r = cpu.sample(2.0)
    assert r.energy_j == pytest.approx(50.0)
    assert r.power_w == pytest.approx(25.0)
    assert ram.sample(2.0).energy_j == pytest.approx(4.0)
    assert "whole socket" in cpu.summary().notes[0]
    assert "whole socket" in cpu.hardware()["scope"]


def test_wrap_in_sensor(tmp_path):
    d = domain(tmp_path, "intel-rapl:0", "package-0", 900, max_uj=1000)
    sensor = RaplCPUSensor(find_domains(tmp_path)[0])
    sensor.start(0.0)
    set_energy(d, 100)
    assert sensor.sample(1.0).energy_j == pytest.approx(200e-6)


def test_read_failure_keeps_last_total(tree):
    cpu = rapl_sensors(tree["root"])[0]["cpu"]
    cpu.start(0.0)
    set_energy(tree["pkg0"], 3_000_000)
    assert cpu.sample(1.0).energy_j == pytest.approx(2.0)
    (tree["pkg0"] / "energy_uj").unlink()
    assert cpu.sample(2.0).energy_j == pytest.approx(2.0)
    assert any("read failed" in n for n in cpu.notes)


def test_no_dram_is_a_reason(tmp_path):
    domain(tmp_path, "intel-rapl:0", "package-0", 1)
    found, reasons = rapl_sensors(tmp_path)
    assert list(found) == ["cpu"]
    assert reasons == ["ram: RAPL has no dram domain on this CPU"]


def test_missing_powercap(tmp_path):
    with pytest.raises(SensorError, match="no powercap"):
        find_domains(tmp_path / "nope")


def test_unreadable_energy_is_a_sensor_error(tmp_path, monkeypatch):
    domain(tmp_path, "intel-rapl:0", "package-0", 1)

    def denied(self):
        # what a non-root user gets on Linux >= 5.10 (a chmod 000 would not stop root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(RaplDomain, "read_uj", denied)
    with pytest.raises(SensorError, match="permission denied.*root-only"):
        rapl_sensors(tmp_path)
