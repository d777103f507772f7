"""Predicting a run's totals at completion from its progress so far.

Two sources of "how far along":

- progress reports (``run.progress(step, total)`` or epochs from the callbacks): the rate of
  steps is measured between the first and the latest report, so start-up before the first
  step (data loading, compilation) does not distort it; the power is the mean power over the
  same window. Predicted energy = energy now + mean power x time left.
- ``--expected-duration``: time left = expected - elapsed, at the mean power so far.

A prediction is only made after a warm-up: at least ``warmup_s`` seconds of run (default 60,
``ECOTRAIN_PREDICT_WARMUP_S``) and, with progress reports, at least two of them (a rate needs
two points). CO2e and cost are scaled from the run's own accounting so far (both are linear
in facility energy, or in time for GPU-hour pricing): no second accounting formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_WARMUP_S = 60.0


@dataclass
class ProgressPoint:
    """One progress report: elapsed seconds, IT energy (J) at that moment, step, total."""

    t_s: float
    energy_j: float
    step: float
    total: float


class Progress:
    """The progress reports of one run."""

    def __init__(self) -> None:
        self.first: ProgressPoint | None = None
        self.last: ProgressPoint | None = None
        self.count = 0
        self.kind = "step"
        self.work: dict[str, float] = {}  # units of work done so far: tokens, samples

    def report(self, t_s: float, energy_j: float, step: float, total: float, kind: str) -> None:
        """Record that ``step`` of ``total`` was reached at ``t_s`` with ``energy_j`` spent."""
        if total <= 0 or step < 0:
            return
        point = ProgressPoint(t_s, energy_j, float(step), float(total))
        if self.first is None or kind != self.kind or step < (self.last.step if self.last else 0):
            # a new kind of progress or a restart: measure the rate afresh
            self.first, self.count, self.kind = point, 0, kind
        self.last = point
        self.count += 1

    def note_work(self, **units: Any) -> None:
        """Keep the latest cumulative count of each unit of work (tokens, samples)."""
        for unit, value in units.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                self.work[unit] = float(value)

    def as_dict(self) -> dict[str, Any] | None:
        """For the record's ``progress`` column."""
        if self.last is None:
            return None
        return {
            "kind": self.kind,
            "step": self.last.step,
            "total": self.last.total,
            "fraction": round(min(1.0, self.last.step / self.last.total), 4),
            "reports": self.count,
            **self.work,
        }


def predict(
    elapsed_s: float,
    energy_j: float,
    progress: Progress,
    expected_duration_s: float | None,
    run: dict[str, Any],
    warmup_s: float = DEFAULT_WARMUP_S,
) -> dict[str, Any] | None:
    """Predicted totals at completion, or None before the warm-up or without progress.

    ``run`` holds the accounting so far (facility_energy_kwh, co2_kg, cost_usd, cost_method).
    """
    if elapsed_s < warmup_s or elapsed_s <= 0:
        return None
    first, last = progress.first, progress.last
    if first is not None and last is not None and progress.count >= 2 and last.t_s > first.t_s:
        rate = (last.step - first.step) / (last.t_s - first.t_s)
        if rate <= 0:
            return None
        left_s = max(0.0, (last.total - last.step) / rate - (elapsed_s - last.t_s))
        window = elapsed_s - first.t_s
        power_w = (energy_j - first.energy_j) / window if window > 0 else 0.0
        method = f"{progress.kind} rate since first report"
    elif expected_duration_s:
        left_s = max(0.0, expected_duration_s - elapsed_s)
        power_w = energy_j / elapsed_s
        method = "expected duration"
    else:
        return None
    total_s = elapsed_s + left_s
    total_j = energy_j + power_w * left_s
    energy_ratio = total_j / energy_j if energy_j > 0 else None
    time_ratio = total_s / elapsed_s

    def scaled(value: Any, ratio: float | None) -> float | None:
        return None if value is None or ratio is None else value * ratio

    cost_ratio = time_ratio if run.get("cost_method") == "gpu_hour" else energy_ratio
    return {
        "method": method,
        "duration_s": round(total_s, 1),
        "remaining_s": round(left_s, 1),
        "it_energy_kwh": total_j / 3.6e6,
        "facility_energy_kwh": scaled(run.get("facility_energy_kwh"), energy_ratio),
        "co2_kg": scaled(run.get("co2_kg"), energy_ratio),
        "cost_usd": scaled(run.get("cost_usd"), cost_ratio),
    }
