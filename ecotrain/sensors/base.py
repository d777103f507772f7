"""The one interface every energy source implements.

A sensor reports cumulative energy in joules for one component (gpu, cpu, ram) and how it
got the number (its method tag). The sampler calls :meth:`Sensor.sample` once per tick; a
sensor that reads a hardware counter does the subtraction itself, one that only sees power
integrates it. Sensors never raise out of ``sample``: a fault is recorded in ``notes`` and the
sensor keeps its last good total (see :class:`SensorFault`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

Component = Literal["gpu", "cpu", "ram"]
# measured: a hardware energy counter (NVML total energy, RAPL)
# integrated: power samples integrated over time (trapezoid)
# modelled: a power model (TDP x utilisation, W/GB x resident memory)
# replayed: read back from a recorded trace (tests, demos)
Method = Literal["measured", "integrated", "modelled", "replayed", "imported", "none"]


class SensorError(Exception):
    """A sensor cannot be used on this machine (the message says why, for `ecotrain doctor`)."""


@dataclass
class Reading:
    """What one tick of one sensor saw."""

    energy_j: float  # cumulative since start()
    power_w: float  # current power, for the timeline
    utilisation: float | None = None  # percent, where the source knows it


@dataclass
class SensorSummary:
    """The end-of-run totals of one sensor, as stored in the run record."""

    component: Component
    method: Method
    energy_j: float
    name: str
    hardware: dict = field(default_factory=dict)  # model, count, gpu_hours, mean/max power...
    notes: list[str] = field(default_factory=list)


class Sensor(ABC):
    """Base class: one energy source for one component.

    Subclasses implement ``start``, ``sample`` and optionally ``close`` and ``hardware``.
    """

    component: Component = "cpu"
    method: Method = "none"
    name: str = "sensor"

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.energy_j = 0.0
        self.last_power_w = 0.0

    def start(self, now: float) -> None:
        """Take the baseline reading at time ``now`` (monotonic seconds)."""

    @abstractmethod
    def sample(self, now: float) -> Reading:
        """Read the source at ``now``; returns the cumulative energy and current power."""

    def hardware(self) -> dict:
        """Facts about the hardware for the record (model, count, power stats...)."""
        return {}

    def close(self) -> None:
        """Release handles (NVML shutdown, file descriptors)."""

    def summary(self) -> SensorSummary:
        """Totals for the run record."""
        return SensorSummary(
            component=self.component,
            method=self.method,
            energy_j=self.energy_j,
            name=self.name,
            hardware=self.hardware(),
            notes=list(self.notes),
        )
