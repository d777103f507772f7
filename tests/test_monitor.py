"""The Recorder's timeline: bounded however long the run, strictly increasing in time."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecotrain import monitor
from ecotrain.monitor import Recorder, RunOptions, Timeline
from ecotrain.sensors.base import Reading


def test_timeline_stays_bounded_and_keeps_the_whole_run() -> None:
    tl = Timeline(max_points=100)
    for i in range(100_000):
        tl.add([float(i), 200.0, 50.0, 5.0])
    points = tl.export()
    assert len(points) <= 100
    assert points[0][0] < 1000 and points[-1][0] > 99_000  # first and last stretch kept
    assert all(p[1:] == [200.0, 50.0, 5.0] for p in points)  # averages of equal powers


class _Flat:
    component, name, method = "cpu", "flat", "modelled"
    notes: list[str] = []

    def sample(self, now: float) -> Reading:
        return Reading(energy_j=0.0, power_w=0.0, utilisation=None)


def test_two_ticks_in_one_millisecond_make_one_point(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecotrain.accounting import site_from_settings
    from ecotrain.config import load_settings

    settings = load_settings(cli={})
    rec = Recorder(
        RunOptions(argv=["true"], settings=settings), site_from_settings(settings.flat())
    )
    rec.sensors = [_Flat()]
    clock = [rec.t0 + 1.0]
    monkeypatch.setattr(monitor.time, "monotonic", lambda: clock[0])
    rec._tick()
    rec._tick()  # stop()'s final tick overlapping the sampler's last one
    clock[0] += 0.0004  # same millisecond once rounded
    rec._tick()
    assert [p[0] for p in rec.timeline.export()] == [1.0]
    clock[0] += 0.5
    rec._tick()
    assert [p[0] for p in rec.timeline.export()] == [1.0, 1.5]
