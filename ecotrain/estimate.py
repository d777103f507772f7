"""The what-if calculator: what would training on these GPUs for this long cost?

    gpu_hours = gpus x hours                      (or given directly)
              = 6 x params x tokens / (peak FLOP/s x MFU) / 3600     (compute estimate)
    IT energy = gpu_hours x board power x power_fraction

then :func:`ecotrain.accounting.account` for facility energy, CO2e and cost, like any run.
GPU energy only: CPUs, memory and networking of the training cluster are not included (the
method says so). ``power_fraction`` defaults to 1.0: the board power (TDP) is an upper
bound, so an estimate errs high rather than low; measured training runs typically draw
60-90 % of it (pass e.g. 0.8 for a central guess). MFU defaults to 0.4: large runs reach
about 38-46 % model FLOPs utilisation. The GPU table is ecotrain/data/gpus.toml.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ecotrain.accounting import Accounting, Energy, Site, account
from ecotrain.errors import UserError
from ecotrain.prices import normalise_gpu

GPUS_FILE = Path(__file__).parent / "data" / "gpus.toml"
DEFAULT_MFU = 0.4  # large runs reach ~38-46 % model FLOPs utilisation (REFERENCES.md)
DEFAULT_POWER_FRACTION = 1.0  # board power as an upper bound; stated in every estimate
FLOPS_PER_PARAM_TOKEN = 6.0  # forward + backward pass of a dense transformer (Kaplan 2020)


class EstimateError(UserError, ValueError):
    """Bad calculator input (missing hours, MFU out of range); one line."""


class UnknownGPU(EstimateError):
    """A GPU name the calculator has no data for; the message lists the known ones."""


@dataclass(frozen=True)
class GPU:
    """Datasheet facts of one GPU model."""

    key: str  # table key: "A100-80GB", "H100", "RTX-4090", ...
    name: str  # full name
    power_w: float  # board power / TDP
    peak_tflops: float  # peak dense BF16/FP16 tensor TFLOP/s
    memory_gb: float
    source: str

    @property
    def approximate(self) -> bool:
        """Whether the figures were not checked against the datasheet."""
        return "approximate" in self.source


@cache
def known_gpus() -> dict[str, GPU]:
    """The GPU table from data/gpus.toml, by key."""
    with GPUS_FILE.open("rb") as f:
        data = tomllib.load(f)
    return {key: GPU(key=key, **entry) for key, entry in data.items()}


def find_gpu(name: str) -> GPU:
    """A GPU by table key or by the name NVML reports ('NVIDIA A100-SXM4-80GB').

    Raises :class:`UnknownGPU` with the known names (and close matches) otherwise.
    """
    gpus = known_gpus()
    text = " ".join(name.split())
    key = normalise_gpu(text)
    candidates = [text, text.upper(), text.upper().replace(" ", "-"), key]
    if "PCIE" in text.upper():
        candidates.insert(0, f"{key}-PCIe")
    folded = {k.upper(): k for k in gpus}
    for candidate in candidates:
        if candidate in gpus:
            return gpus[candidate]
        if candidate.upper() in folded:
            return gpus[folded[candidate.upper()]]
    close = difflib.get_close_matches(text.upper(), list(folded), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(folded[c] for c in close)}?)" if close else ""
    raise UnknownGPU(f"unknown GPU {name!r}{hint}; known: {', '.join(gpus)}")


@dataclass
class Estimate:
    """An estimate with the assumptions it rests on."""

    gpu: GPU
    gpu_hours: float
    flops: float | None  # the 6ND compute, when the GPU-hours came from it
    mfu: float | None
    power_fraction: float
    accounting: Accounting
    basis: str  # how gpu_hours was obtained, in words


def _positive(value: float | None, what: str, allow_zero: bool = True) -> None:
    if value is None:
        return
    if not (value >= 0 if allow_zero else value > 0):  # also rejects NaN
        raise EstimateError(f"{what} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


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
    """Estimate energy, CO2e and cost of training on ``gpu`` at ``site``.

    GPU-hours come from ``gpu_hours``, else ``gpus x hours``, else 6 x ``params`` x
    ``tokens`` FLOPs at the GPU's peak x ``mfu``. See the module docstring for the method.
    """
    spec = find_gpu(gpu)
    _positive(gpus, "gpus", allow_zero=False)
    _positive(hours, "hours")
    _positive(gpu_hours, "gpu_hours")
    _positive(params, "params", allow_zero=False)
    _positive(tokens, "tokens", allow_zero=False)
    if not 0 < power_fraction <= 1.5:
        raise EstimateError(f"power fraction must be in (0, 1.5], got {power_fraction}")
    flops = None
    if gpu_hours is not None:
        basis = f"{gpu_hours:g} {spec.key} GPU-hours as given"
    elif hours is not None:
        gpu_hours = gpus * hours
        basis = f"{gpus} x {spec.key} for {hours:g} h"
    elif params is not None and tokens is not None:
        if not 0 < mfu <= 1:
            raise EstimateError(f"MFU must be in (0, 1], got {mfu}")
        flops = FLOPS_PER_PARAM_TOKEN * params * tokens
        gpu_hours = flops / (spec.peak_tflops * 1e12 * mfu) / 3600.0
        basis = (
            f"6 x {params:.3g} params x {tokens:.3g} tokens = {flops:.3g} FLOPs at "
            f"{spec.peak_tflops:g} TFLOP/s peak x {mfu:.0%} MFU"
        )
    else:
        raise EstimateError("give --hours (with --gpus), --gpu-hours, or --params and --tokens")
    energy_j = gpu_hours * spec.power_w * power_fraction * 3600.0
    energy = Energy(
        gpu_j=energy_j,
        gpu_method="estimated",
        gpu_count=gpus if hours is not None else None,
        gpu_hours=gpu_hours,
        gpu_model=spec.key,
    )
    acc = account(energy, site, gpu_hours=gpu_hours, gpu_model=spec.key)
    return Estimate(spec, gpu_hours, flops, mfu if flops else None, power_fraction, acc, basis)
