"""A sensor that plays back a recorded trace: how tests and demos run without hardware.

Trace format (JSON)::

    {"component": "gpu", "method": "measured", "name": "NVIDIA A100-SXM4-80GB x1",
     "hardware": {"model": "...", "count": 1},
     "points": [[0, 0], [1.0, 251.3], [2.0, 503.0], ...]}

``points`` are ``[t_s, value]`` with ``t_s`` seconds from the trace's start, increasing.
For a ``measured`` trace the value is cumulative energy (J); for ``integrated`` it is power
(W). ``sample(now)`` replays at ``now - start``, interpolating linearly; power traces are
integrated exactly for that interpolation (trapezoid between points). Past the last point
the trace adds no energy (noted once). The sensor's method is ``replayed``; how the trace
itself was obtained stays in ``hardware()["trace_method"]``.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from pathlib import Path
from typing import Any

from ecotrain.sensors.base import Reading, Sensor, SensorError

_COMPONENTS = ("gpu", "cpu", "ram")
_METHODS = ("measured", "integrated")


def load_trace(source: str | Path | dict) -> dict:
    """Read and check a trace; raises SensorError with a one-line reason."""
    if isinstance(source, dict):
        trace = source
        where = "trace"
    else:
        where = str(source)
        try:
            trace = json.loads(Path(source).read_text())
        except OSError as e:
            raise SensorError(f"replay: cannot read {where}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise SensorError(f"replay: {where} is not JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(trace, dict):
        raise SensorError(f"replay: {where} is not a JSON object")
    if trace.get("component") not in _COMPONENTS:
        raise SensorError(f"replay: {where}: component must be one of {', '.join(_COMPONENTS)}")
    if trace.get("method") not in _METHODS:
        raise SensorError(f"replay: {where}: method must be 'measured' or 'integrated'")
    try:
        points = [(float(t), float(v)) for t, v in trace.get("points", [])]
    except (TypeError, ValueError):
        raise SensorError(f"replay: {where}: points must be [t_s, value] pairs") from None
    if not points:
        raise SensorError(f"replay: {where} has no points")
    if any(b[0] <= a[0] for a, b in zip(points, points[1:], strict=False)):
        raise SensorError(f"replay: {where}: point times must increase")
    return {**trace, "points": points}


def write_trace(
    path: str | Path,
    *,
    component: str,
    method: str,
    points: list[tuple[float, float]] | list[list[float]],
    name: str = "",
    hardware: dict | None = None,
) -> Path:
    """Write a trace file (checked by the same rules as :func:`load_trace`)."""
    trace = {
        "component": component,
        "method": method,
        "name": name or f"replayed {component}",
        "hardware": hardware or {},
        "points": [[float(t), float(v)] for t, v in points],
    }
    load_trace(trace)
    path = Path(path)
    path.write_text(json.dumps(trace, indent=1) + "\n")
    return path


def record_trace(sensor: Sensor, readings: list[tuple[float, Reading]]) -> dict:
    """A measured trace (cumulative energy) from a sensor's ``(t_s, Reading)`` pairs."""
    return {
        "component": sensor.component,
        "method": "measured",
        "name": sensor.name,
        "hardware": sensor.hardware(),
        "points": [[t, r.energy_j] for t, r in readings],
    }


class ReplaySensor(Sensor):
    """Replays one trace (component from the trace, method "replayed")."""

    method = "replayed"

    def __init__(self, trace: str | Path | dict, *, source: str = "") -> None:
        super().__init__()
        data = load_trace(trace)
        self.component = data["component"]
        self.trace_method = data["method"]
        self.name = data.get("name") or f"replayed {self.component}"
        self._hardware: dict[str, Any] = dict(data.get("hardware") or {})
        self.source = source or (str(trace) if not isinstance(trace, dict) else "dict")
        self._t = [p[0] for p in data["points"]]
        values = [p[1] for p in data["points"]]
        if self.trace_method == "measured":
            self._energy = values
            self._power = None
        else:
            # cumulative energy at each point, exact for linear interpolation of power
            cum = [0.0]
            for i in range(1, len(values)):
                cum.append(
                    cum[-1] + (values[i] + values[i - 1]) / 2 * (self._t[i] - self._t[i - 1])
                )
            self._energy = cum
            self._power = values
        self._e0 = self._energy_at(0.0)
        self._t0: float | None = None
        self._max_power = 0.0

    def start(self, now: float) -> None:
        """The trace's t=0 is ``now``."""
        self._t0 = now

    def sample(self, now: float) -> Reading:
        """Energy and power of the trace at ``now - start``."""
        if self._t0 is None:
            self.start(now)
        t = now - self._t0  # type: ignore[operator]
        if t > self._t[-1] and not any(n.startswith("trace ended") for n in self.notes):
            self.notes.append(f"trace ended at {self._t[-1]:g} s; no energy replayed after")
        self.energy_j = self._energy_at(t) - self._e0
        self.last_power_w = self._power_at(t)
        self._max_power = max(self._max_power, self.last_power_w)
        return Reading(self.energy_j, self.last_power_w)

    def _energy_at(self, t: float) -> float:
        ts, es = self._t, self._energy
        if t <= ts[0]:
            return es[0] if self._power is None else 0.0
        if t >= ts[-1]:
            return es[-1]
        i = bisect_right(ts, t) - 1
        frac = (t - ts[i]) / (ts[i + 1] - ts[i])
        if self._power is None:
            return es[i] + frac * (es[i + 1] - es[i])
        p0, p1 = self._power[i], self._power[i + 1]
        pt = p0 + frac * (p1 - p0)
        return es[i] + (p0 + pt) / 2 * (t - ts[i])

    def _power_at(self, t: float) -> float:
        ts = self._t
        if t < ts[0] or t > ts[-1] or len(ts) == 1:
            return 0.0
        i = min(bisect_right(ts, t) - 1, len(ts) - 2)
        if self._power is not None:
            p0, p1 = self._power[i], self._power[i + 1]
            return p0 + (t - ts[i]) / (ts[i + 1] - ts[i]) * (p1 - p0)
        return (self._energy[i + 1] - self._energy[i]) / (ts[i + 1] - ts[i])

    def hardware(self) -> dict:
        """The trace's hardware facts, plus where the trace came from."""
        return {
            **self._hardware,
            "trace_method": self.trace_method,
            "trace": self.source,
            "trace_duration_s": self._t[-1] - self._t[0],
        }
