"""The what-if calculator: what would training on these GPUs for this long cost?

    gpu_hours = gpus x hours                      (or given directly)
              = 6 x params x tokens / (peak FLOP/s x MFU) / 3600     (compute estimate)
    IT energy = gpu_hours x board power x power_fraction

then :func:`ecotrain.accounting.account` for facility energy, CO2e and cost, like any run.
GPU energy only: CPUs, memory and networking of the training cluster are not included (the
method says so). ``power_fraction`` defaults to 1.0 (board power as an upper bound); measured
training runs typically draw 60-90 % of it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ecotrain.accounting import Accounting, Energy, Site, account
from ecotrain.prices import normalise_gpu

GPUS_FILE = Path(__file__).parent / "data" / "gpus.toml"
DEFAULT_MFU = 0.4  # large runs reach ~38-46 % model FLOPs utilisation (REFERENCES.md)
DEFAULT_POWER_FRACTION = 1.0


class UnknownGPU(ValueError):
    """A GPU name the calculator has no data for; the message lists the known ones."""


@dataclass(frozen=True)
class GPU:
    """Datasheet facts of one GPU model."""

    key: str
    name: str
    power_w: float
    peak_tflops: float
    memory_gb: float
    source: str


@cache
def known_gpus() -> dict[str, GPU]:
    """The GPU table from data/gpus.toml."""
    with GPUS_FILE.open("rb") as f:
        data = tomllib.load(f)
    return {key: GPU(key=key, **entry) for key, entry in data.items()}


def find_gpu(name: str) -> GPU:
    """A GPU by table key or by the name NVML reports ('NVIDIA A100-SXM4-80GB')."""
    gpus = known_gpus()
    candidates = [name, name.upper(), normalise_gpu(name), name.upper().replace(" ", "-")]
    for key in candidates:
        if key in gpus:
            return gpus[key]
    if name.upper() == "A100":
        return gpus["A100-80GB"]
    raise UnknownGPU(f"unknown GPU {name!r}; known: {', '.join(gpus)}")


@dataclass
class Estimate:
    """An estimate with the assumptions it rests on."""

    gpu: GPU
    gpu_hours: float
    flops: float | None
    mfu: float | None
    power_fraction: float
    accounting: Accounting
    basis: str  # how gpu_hours was obtained, in words


def estimate(
    gpu: str,
    site: Site,
    gpus: int = 1,
    hours: float | None = None,
    gpu_hours: float | None = None,
    params: float | None = None,
    tokens: float | None = None,
    mfu: float = DEFAULT_MFU,
    power_fraction: float = DEFAULT_POWER_FRACTION,
) -> Estimate:
    """Estimate energy, CO2e and cost of training on ``gpu`` (see the module docstring)."""
    spec = find_gpu(gpu)
    flops = None
    if gpu_hours is not None:
        basis = f"{gpu_hours:g} GPU-hours as given"
    elif hours is not None:
        gpu_hours = gpus * hours
        basis = f"{gpus} x {spec.key} for {hours:g} h"
    elif params is not None and tokens is not None:
        if not 0 < mfu <= 1:
            raise UnknownGPU(f"MFU must be in (0, 1], got {mfu}")
        flops = 6.0 * params * tokens
        gpu_hours = flops / (spec.peak_tflops * 1e12 * mfu) / 3600.0
        basis = (
            f"6 x {params:.3g} params x {tokens:.3g} tokens = {flops:.3g} FLOPs at "
            f"{spec.peak_tflops:g} TFLOP/s peak x {mfu:.0%} MFU"
        )
    else:
        raise UnknownGPU("give --hours (with --gpus), --gpu-hours, or --params and --tokens")
    if gpu_hours < 0 or power_fraction <= 0:
        raise UnknownGPU("GPU-hours and power fraction must be positive")
    energy_j = gpu_hours * spec.power_w * power_fraction * 3600.0
    acc = account(
        Energy(gpu_j=energy_j, gpu_method="estimated"),
        site,
        gpu_hours=gpu_hours,
        gpu_model=spec.key,
    )
    return Estimate(spec, gpu_hours, flops, mfu if flops else None, power_fraction, acc, basis)
