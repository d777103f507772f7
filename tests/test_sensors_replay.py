"""Replaying recorded traces, and ECOTRAIN_REPLAY in discover()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import FakeClock, FakeGPU, FakeNVML

from ecotrain.sensors import Reading, SensorError, discover
from ecotrain.sensors.nvidia import NvidiaGPUSensor, select_devices
from ecotrain.sensors.replay import ReplaySensor, load_trace, record_trace, write_trace


def test_measured_trace_interpolates_energy():
    sensor = ReplaySensor(
        {
            "component": "gpu",
            "method": "measured",
            "name": "A100 x1",
            "hardware": {"model": "NVIDIA A100", "count": 1},
            "points": [[0, 1000], [10, 3000], [20, 3000]],
        }
    )
    sensor.start(100.0)
    r = sensor.sample(105.0)
    assert r.energy_j == pytest.approx(1000.0)  # energy counts from the trace's t=0
    assert r.power_w == pytest.approx(200.0)
    assert sensor.sample(115.0).power_w == pytest.approx(0.0)
    s = sensor.summary()
    assert (s.component, s.method, s.name) == ("gpu", "replayed", "A100 x1")
    assert s.hardware["trace_method"] == "measured"
    assert s.hardware["model"] == "NVIDIA A100"


def test_power_trace_is_integrated_exactly():
    # 100 W -> 300 W ramp over 2 s, then 300 W flat to 4 s: 400 + 600 = 1000 J
    sensor = ReplaySensor(
        {"component": "gpu", "method": "integrated", "points": [[0, 100], [2, 300], [4, 300]]}
    )
    sensor.start(0.0)
    assert sensor.sample(1.0).energy_j == pytest.approx(150.0)  # (100 + 200) / 2
    assert sensor.sample(1.0).power_w == pytest.approx(200.0)
    assert sensor.sample(4.0).energy_j == pytest.approx(1000.0)


def test_past_the_end_adds_nothing_and_notes_it():
    sensor = ReplaySensor(
        {"component": "cpu", "method": "integrated", "points": [[0, 10], [1, 10]]}
    )
    sensor.start(0.0)
    assert sensor.sample(5.0).energy_j == pytest.approx(10.0)
    sensor.sample(6.0)
    assert sensor.notes == ["trace ended at 1 s; no energy replayed after"]


@pytest.mark.parametrize(
    ("trace", "message"),
    [
        ({"component": "tpu", "method": "measured", "points": [[0, 0]]}, "component"),
        ({"component": "gpu", "method": "guessed", "points": [[0, 0]]}, "method"),
        ({"component": "gpu", "method": "measured", "points": []}, "no points"),
        ({"component": "gpu", "method": "measured", "points": [[1, 0], [1, 2]]}, "increase"),
        ({"component": "gpu", "method": "measured", "points": [["a", 0]]}, "pairs"),
    ],
)
def test_bad_traces(trace, message):
    with pytest.raises(SensorError, match=message):
        load_trace(trace)


def test_missing_and_malformed_files(tmp_path: Path):
    with pytest.raises(SensorError, match="cannot read"):
        ReplaySensor(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SensorError, match="not JSON"):
        ReplaySensor(bad)


def test_record_a_fake_gpu_and_replay_it(tmp_path: Path):
    clock = FakeClock()
    nvml = FakeNVML(clock, [FakeGPU("GPU-1", power_w=300.0)])
    nvml.nvmlInit()
    gpu = NvidiaGPUSensor(select_devices({}, nvml), nvml)
    gpu.start(0.0)
    readings = [(0.0, Reading(0.0, 0.0))]
    for t in range(1, 6):
        clock.t = float(t)
        readings.append((float(t), gpu.sample(clock.t)))
    path = write_trace(tmp_path / "gpu.json", **record_trace(gpu, readings))
    replay = ReplaySensor(path)
    replay.start(50.0)
    assert replay.sample(55.0).energy_j == pytest.approx(1500.0)
    assert replay.hardware()["count"] == 1


def test_discover_replays_instead_of_nvml(tmp_path: Path):
    gpu = write_trace(
        tmp_path / "gpu.json", component="gpu", method="measured", points=[[0, 0], [10, 2500]]
    )
    gpu2 = write_trace(
        tmp_path / "gpu2.json", component="gpu", method="integrated", points=[[0, 100], [10, 100]]
    )
    env = {"ECOTRAIN_REPLAY": f"{gpu}{os.pathsep}{gpu2}"}
    sensors, reasons = discover(os.getpid(), env, {"powercap_root": str(tmp_path / "no")})
    assert [(s.component, s.method) for s in sensors] == [
        ("gpu", "replayed"),
        ("gpu", "replayed"),
        ("cpu", "modelled"),
        ("ram", "modelled"),
    ]
    assert "gpu: NVML not used (ECOTRAIN_REPLAY is set)" in reasons
    for s in sensors[:2]:
        s.start(0.0)
    assert sensors[0].sample(10.0).energy_j + sensors[1].sample(10.0).energy_j == 3500.0


def test_discover_replay_of_cpu_replaces_the_model(tmp_path: Path):
    cpu = write_trace(
        tmp_path / "cpu.json", component="cpu", method="integrated", points=[[0, 40], [1, 40]]
    )
    sensors, reasons = discover(
        os.getpid(),
        {"ECOTRAIN_REPLAY": f"{cpu}{os.pathsep}{tmp_path / 'missing.json'}"},
        {"powercap_root": str(tmp_path / "no")},
    )
    assert [(s.component, s.method) for s in sensors] == [("cpu", "replayed"), ("ram", "modelled")]
    assert any(r.startswith("gpu: replay: cannot read") for r in reasons)
