"""Embodied emissions of the hardware, as an optional and labelled add-on.

Off by default (and said to be off). When on (``embodied = "on"`` in config or
``ECOTRAIN_EMBODIED=on``), a run's GPU-hours x an amortised manufacturing footprint per
GPU-hour is reported **beside** its operational CO2e, never added to it.

Default factor: Luccioni, Viguier & Ligozat, "Estimating the Carbon Footprint of BLOOM, a
176B Parameter Language Model" (JMLR 24(253), 2023; arXiv 2211.02001), who amortise the
manufacturing of the servers and GPUs used over their service life and put BLOOM's training
share at 11.2 t CO2e for 1,082,990 A100 GPU-hours: 11,200 / 1,082,990 = 0.0103 kg CO2e per
GPU-hour (servers included). Override with ``embodied_kg_per_gpu_hour`` and say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BLOOM_EMBODIED_KG = 11_200.0
BLOOM_GPU_HOURS = 1_082_990.0
DEFAULT_KG_PER_GPU_HOUR = BLOOM_EMBODIED_KG / BLOOM_GPU_HOURS  # 0.01034
DEFAULT_SOURCE = (
    "Luccioni, Viguier & Ligozat 2023 (JMLR 24(253); arXiv 2211.02001): BLOOM's amortised "
    "server and GPU manufacturing, 11.2 t CO2e over 1,082,990 A100 GPU-hours = "
    f"{DEFAULT_KG_PER_GPU_HOUR:.4f} kg CO2e per GPU-hour"
)
OFF = (
    "Embodied emissions of the hardware are not included (off by default; set "
    'embodied = "on" to report them beside the operational figure).'
)


@dataclass(frozen=True)
class Embodied:
    """An embodied-emissions figure and its basis; never part of operational CO2e."""

    kg: float
    gpu_hours: float
    kg_per_gpu_hour: float
    source: str

    def sentence(self, cite: str = "") -> str:
        """The figure in words, labelled as apart from operational emissions; ``cite``: a
        report's citation marker, standing for the source (kept short: a report's
        methodology is bounded in words)."""
        from ecotrain.units import fmt_co2, fmt_number

        return (
            f"Embodied emissions (reported beside, not included in, the operational CO2e): "
            f"{fmt_co2(self.kg)} for {fmt_number(self.gpu_hours)} GPU-hours at "
            f"{self.kg_per_gpu_hour:.4g} kg CO2e per GPU-hour {cite or f'({self.source})'}."
        )


def enabled(settings: Mapping[str, Any]) -> bool:
    """Whether embodied emissions are switched on (``embodied`` = on/true/yes/1)."""
    return str(settings.get("embodied") or "off").strip().lower() in ("on", "true", "yes", "1")


def embodied(gpu_hours: float | None, settings: Mapping[str, Any]) -> Embodied | None:
    """The embodied figure for ``gpu_hours``, or None when switched off. Switched on, runs
    that used no GPU get a stated zero (nothing to amortise), not the "off" sentence."""
    if not enabled(settings):
        return None
    gpu_hours = float(gpu_hours or 0.0)
    factor = settings.get("embodied_kg_per_gpu_hour")
    if factor is None:
        return Embodied(gpu_hours * DEFAULT_KG_PER_GPU_HOUR, gpu_hours, DEFAULT_KG_PER_GPU_HOUR,
                        DEFAULT_SOURCE)  # fmt: skip
    value = float(factor)
    return Embodied(gpu_hours * value, gpu_hours, value, f"configured: {value:g} kg/GPU-hour")


def statement(gpu_hours: float | None, settings: Mapping[str, Any]) -> str:
    """The sentence a report carries: the figure when on, else that it is off."""
    figure = embodied(gpu_hours, settings)
    return figure.sentence() if figure else OFF
