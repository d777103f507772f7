"""A footprint stated for a checkpoint ecotrain did not record (`ecotrain checkpoint register`).

Two kinds of figure, never confused:

- **as published**: ``co2_kg`` / ``energy_kwh`` (facility energy) given as the source
  prints them, stored unchanged and labelled "as published: <source>";
- **estimated**: computed from inputs (accelerator, GPU-hours or GPUs x hours, per-GPU
  power, PUE, region or intensity) by the calculator (:func:`ecotrain.estimate.estimate`),
  labelled "estimated from ..." with every input and whether it was given or a default.

Given the inputs a paper states, the estimate reproduces it: Llama 2 7B, 184,320
A100-80GB GPU-hours x 400 W x PUE 1.1 x 385 g/kWh = 31.22 t (Touvron et al. 2023b, Table 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecotrain.accounting import Site
from ecotrain.estimate import Estimate, EstimateError, check_number, estimate


@dataclass
class Stated:
    """The footprint columns of a checkpoints row, and how each figure was obtained."""

    row: dict[str, Any]  # fp_* columns, footprint_source, footprint_citation
    estimate: Estimate | None  # the calculation behind estimated figures, if any
    published: list[str]  # names of the figures taken as published
    estimated: list[str]  # names of the figures computed


def _describe(est: Estimate) -> str:
    """'184,320 A100-80GB GPU-hours x 400 W (given) x PUE 1.1 (given) x 385 g/kWh (...)'."""
    inputs = {i.name: i for i in est.inputs}

    def tag(name: str) -> str:
        item = inputs.get(name)
        return "given" if item is None or item.given else "default"

    acc = est.accounting
    intensity = acc.site.intensity
    where = intensity.region + (f", {intensity.boundary}" if intensity.boundary else "")
    return (
        f"{est.basis}; {est.power_basis}; PUE {acc.site.pue:g} ({tag('pue')}); "
        f"{intensity.g_per_kwh:.4g} g CO2e/kWh ({where}, {intensity.source}; {tag('intensity')})"
    )


def stated_footprint(
    *,
    co2_kg: float | None = None,
    energy_kwh: float | None = None,
    source: str | None = None,
    gpu: str | None = None,
    gpu_hours: float | None = None,
    gpus: float | None = None,
    hours: float | None = None,
    days: float | None = None,
    power_w: float | None = None,
    system_power_w: float | None = None,
    site: Site | None = None,
    pue: float | None = None,
) -> Stated:
    """Build the footprint columns of a checkpoint from published figures and/or inputs.

    Figures given are stored as published; missing ones are estimated when the inputs
    allow (``gpu`` with ``gpu_hours``, ``gpus`` x ``hours``/``days``, or a total
    ``system_power_w`` x hours) at ``site`` (its PUE and intensity). Bad or missing input
    raises a one-line :class:`EstimateError`. ``pue``: the PUE a published energy
    includes (stored, so its IT energy is energy / PUE); an estimate uses ``site``'s.
    """
    check_number(co2_kg, "CO2e (kg)", strict=False)
    check_number(energy_kwh, "energy (kWh)", strict=False)
    # Checked here too, not only by the calculator: with both figures published nothing is
    # estimated, and an "inf" GPU-hours would otherwise be stored as given.
    check_number(gpu_hours, "GPU-hours")
    check_number(gpus, "gpus")
    check_number(hours, "hours")
    check_number(days, "days")
    check_number(power_w, "power (W per accelerator)")
    check_number(system_power_w, "total system power (W)")
    check_number(pue, "pue", low=1.0, strict=False, high=5.0)
    has_time = gpu_hours is not None or hours is not None or days is not None
    if (has_time or power_w is not None or system_power_w is not None) and not gpu:
        raise EstimateError(
            "GPU-hours, hours or power need --gpu (the accelerator it was trained on)"
        )
    if gpu and not has_time and co2_kg is None and energy_kwh is None:
        raise EstimateError("--gpu needs --gpu-hours, or --gpus with --hours or --days")
    if not has_time and co2_kg is None and energy_kwh is None:
        raise EstimateError(
            "give --co2-kg or --energy-kwh (as published, with --source), or --gpu with "
            "--gpu-hours (or --gpus and --hours) to estimate them"
        )
    est = None
    published = [n for n, v in (("co2", co2_kg), ("energy", energy_kwh)) if v is not None]
    estimated: list[str] = []
    intensity = None
    pue = pue if energy_kwh is not None else None
    parts = []
    if source:
        parts.append(f"as published: {source}" if published else f"inputs from: {source}")
    elif published:
        parts.append("as published (no source given)")
    if has_time and (co2_kg is None or energy_kwh is None):
        if site is None:
            raise EstimateError("an estimate needs the site's PUE and grid intensity")
        est = estimate(
            gpu or "",
            site,
            gpus=gpus if gpus is not None else 1,
            hours=hours,
            days=days,
            gpu_hours=gpu_hours,
            power_w=power_w,
            system_power_w=system_power_w,
        )
        if energy_kwh is None:
            energy_kwh = est.accounting.facility_energy_kwh
            pue = site.pue  # the stored energy is facility energy at this PUE
            estimated.append("energy")
        if co2_kg is None:
            co2_kg = est.accounting.co2_kg
            intensity = site.intensity.g_per_kwh
            pue = site.pue
            estimated.append("co2")
        what = " and ".join("CO2e" if n == "co2" else "energy" for n in estimated)
        parts.append(f"{what} estimated from {_describe(est)}")
    row = {
        "footprint_source": "registered",
        "footprint_citation": "; ".join(parts),
        "fp_gpu_model": est.gpu.key if est else gpu,
        "fp_gpu_hours": est.gpu_hours if est else gpu_hours,
        "fp_energy_kwh": energy_kwh,
        "fp_co2_kg": co2_kg,
        "fp_pue": pue,
        "fp_intensity_g_per_kwh": intensity,
    }
    return Stated(row, est, published, estimated)


def register(engine: Any, checkpoint: dict[str, Any], stated: Stated) -> dict[str, Any]:
    """Store ``stated`` on the checkpoint's row (created if new); returns the row."""
    from ecotrain.store.db import upsert
    from ecotrain.store.schema import checkpoints

    row = {**checkpoint, **stated.row}
    with engine.begin() as conn:
        upsert(conn, checkpoints, row, ["checkpoint_id"])
    return row
