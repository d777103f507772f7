"""The what-if calculator: what would training on these accelerators for this long cost?

    gpu_hours = gpus x hours  (hours = days x 24)  (or GPU-hours given directly)
              = 6 x params x tokens / (peak FLOP/s x MFU) / 3600     (compute estimate)
    IT energy = gpu_hours x per-chip power x power_fraction
              = total system power x hours       (a measured whole-system figure, e.g.
                                                  Strubell et al. 2019: CPU+DRAM+GPUs)

then :func:`ecotrain.accounting.account` for facility energy (PUE), CO2e (intensity) and
cost, like any run. The per-chip power is what the user states (``power_w``: a paper's
per-GPU average or power cap, e.g. 350 W for Llama 2 34B) or else the table's figure
(ecotrain/data/gpus.toml: TDP, an upper bound, so an estimate errs high; or a published
measured average where no TDP is public). With per-chip power the energy is the
accelerators' only: CPUs, memory and networking are not included (the method says so).
MFU defaults to 0.4: large runs reach about 38-46 % model FLOPs utilisation.

Every estimate lists its inputs and whether each was given or a default
(:attr:`Estimate.inputs`), so a reader can tell an estimate from a reproduction.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
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
    """An accelerator the calculator has no data for; the message lists the known ones."""


@dataclass(frozen=True)
class GPU:
    """Published facts of one accelerator model (GPU or TPU), each row cited."""

    key: str  # table key: "A100-80GB", "H100", "TPUv3", ...
    name: str  # full name
    power_w: float  # per-chip power an estimate uses by default
    peak_tflops: float  # peak dense BF16/FP16 tensor TFLOP/s
    memory_gb: float
    source: str
    power_kind: str = "tdp"  # "tdp" | "measured-average"
    measured_w: float | None = None  # a published measured average beside the TDP
    measured_source: str | None = None

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
    import difflib  # only on the error path: keep it off the run path's imports

    close = difflib.get_close_matches(text.upper(), list(folded), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(folded[c] for c in close)}?)" if close else ""
    raise UnknownGPU(f"unknown accelerator {name!r}{hint}; known: {', '.join(gpus)}")


@dataclass(frozen=True)
class Input:
    """One input of an estimate: its value, unit, and whether the user gave it."""

    name: str
    value: float | str | None
    unit: str
    given: bool
    source: str  # where a default comes from, or "given"


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
    power_w: float | None = None  # per-chip power used; None with a total system power
    power_basis: str = ""  # how the IT energy was obtained, in words
    inputs: list[Input] = field(default_factory=list)

    @property
    def defaults(self) -> list[str]:
        """Names of the inputs that were defaults, not given: empty for a reproduction."""
        return [i.name for i in self.inputs if not i.given]


def check_number(
    value: float | None, what: str, *, low: float = 0.0, strict: bool = True, high: float = math.inf
) -> None:
    """One-line :class:`EstimateError` unless ``value`` is None or a finite number in range.

    ``strict``: ``value`` must exceed ``low`` (counts, hours, power), else may equal it.
    NaN and infinities are always refused: they would print as "nan kWh" or "inf t".
    """
    if value is None:
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EstimateError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise EstimateError(f"{what} must be a finite number, got {value}")
    if (number <= low) if strict else (number < low):
        raise EstimateError(f"{what} must be {'>' if strict else '>='} {low:g}, got {value:g}")
    if number > high:
        raise EstimateError(f"{what} must be <= {high:g}, got {value:g}")


def site_inputs(site: Site) -> list[Input]:
    """The PUE and grid intensity of ``site`` as estimate inputs, given or default."""
    pue_given = not site.pue_source.startswith("default")
    intensity = site.intensity
    # site_from_settings marks what it chose itself: the world average or a guessed region.
    defaulted = "no region is configured" in intensity.source or "guessed" in intensity.source
    where = intensity.where
    return [
        Input("pue", site.pue, "", pue_given, site.pue_source),
        Input(
            "intensity",
            intensity.g_per_kwh,
            "g CO2e/kWh",
            not defaulted,
            f"{intensity.source} ({where})",
        ),
    ]


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
    *,
    days: float | None = None,
    power_w: float | None = None,
    system_power_w: float | None = None,
) -> Estimate:
    """Estimate energy, CO2e and cost of training on ``gpu`` at ``site``.

    GPU-hours come from ``gpu_hours``, else ``gpus x hours`` (or ``gpus x days x 24``),
    else 6 x ``params`` x ``tokens`` FLOPs at the chip's peak x ``mfu``. IT energy is
    GPU-hours x ``power_w`` (the stated per-chip average; default: the table's) x
    ``power_fraction``, or ``system_power_w`` x hours for a measured whole-system power.
    Bad input raises a one-line :class:`EstimateError`. See the module docstring.
    """
    spec = find_gpu(gpu)
    check_number(gpus, "gpus")
    if gpus != int(gpus):
        raise EstimateError(f"gpus must be a whole number, got {gpus:g}")
    check_number(hours, "hours")
    check_number(days, "days")
    check_number(gpu_hours, "GPU-hours")
    check_number(params, "params")
    check_number(tokens, "tokens")
    check_number(power_w, "power (W per accelerator)", high=5000)
    check_number(system_power_w, "total system power (W)")
    check_number(power_fraction, "power fraction", high=1.5)
    if hours is not None and days is not None:
        raise EstimateError("give --hours or --days, not both")
    if power_w is not None and system_power_w is not None:
        raise EstimateError("give --power-w (per accelerator) or --system-power-w, not both")
    if days is not None:
        hours = days * 24.0
    inputs = [Input("accelerator", spec.key, "", True, spec.source)]
    flops = None
    if gpu_hours is not None:
        basis = f"{gpu_hours:,.10g} {spec.key} GPU-hours as given"
        inputs.append(Input("gpu_hours", gpu_hours, "h", True, "given"))
    elif hours is not None:
        gpu_hours = gpus * hours
        span = f"{days:,.10g} days" if days is not None else f"{hours:,.10g} h"
        basis = f"{gpus:,.10g} x {spec.key} for {span}"
        inputs += [
            Input("gpus", gpus, "", True, "given"),
            Input("hours", hours, "h", True, "given" if days is None else f"{days:g} days x 24"),
        ]
    elif params is not None and tokens is not None:
        check_number(mfu, "MFU", high=1.0)
        flops = FLOPS_PER_PARAM_TOKEN * params * tokens
        gpu_hours = flops / (spec.peak_tflops * 1e12 * mfu) / 3600.0
        basis = (
            f"6 x {params:.3g} params x {tokens:.3g} tokens = {flops:.3g} FLOPs at "
            f"{spec.peak_tflops:g} TFLOP/s peak x {mfu:.0%} MFU"
        )
        inputs += [
            Input("params", params, "", True, "given"),
            Input("tokens", tokens, "", True, "given"),
            Input("mfu", mfu, "", mfu != DEFAULT_MFU, "default: large runs reach 38-46 % MFU"),
        ]
    else:
        raise EstimateError(
            "give --hours or --days (with --gpus), --gpu-hours, or --params and --tokens"
        )
    if system_power_w is not None:
        if hours is None:
            raise EstimateError("a total system power needs the wall-clock --hours or --days")
        energy_j = system_power_w * hours * 3600.0
        used_w = None
        power_basis = (
            f"total system power {system_power_w:,.10g} W (all accelerators, CPUs and memory, "
            f"as given) x {hours:,.10g} h"
        )
        inputs.append(Input("system_power_w", system_power_w, "W", True, "given"))
    else:
        used_w = power_w if power_w is not None else spec.power_w
        energy_j = gpu_hours * used_w * power_fraction * 3600.0
        if power_w is not None:
            power_basis = f"{power_w:,.10g} W per accelerator (given)"
        else:
            kind = "TDP" if spec.power_kind == "tdp" else "published measured average"
            power_basis = f"{spec.power_w:g} W per accelerator ({spec.key} {kind}, {spec.source})"
        if power_fraction != DEFAULT_POWER_FRACTION:
            power_basis += f" x {power_fraction:g}"
        inputs.append(
            Input(
                "power_w",
                used_w,
                "W",
                power_w is not None,
                "given" if power_w is not None else f"default: {spec.key} {spec.power_kind}",
            )
        )
    inputs += site_inputs(site)
    energy = Energy(
        gpu_j=energy_j,
        gpu_method="estimated",
        gpu_count=int(gpus) if hours is not None else None,
        gpu_hours=gpu_hours,
        gpu_model=spec.key,
    )
    acc = account(energy, site, gpu_hours=gpu_hours, gpu_model=spec.key)
    return Estimate(
        spec,
        gpu_hours,
        flops,
        mfu if flops else None,
        power_fraction,
        acc,
        basis,
        power_w=used_w,
        power_basis=power_basis,
        inputs=inputs,
    )
