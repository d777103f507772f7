"""`ecotrain estimate` and `ecotrain checkpoint register`: footprints from stated inputs.

Both take what papers state: accelerator, GPU-hours (or GPUs x hours or days), per-GPU
average power (``--power-w``) or a measured total system power (``--system-power-w``),
``--pue``, ``--region`` or ``--intensity``. Both say which inputs were given and which were
defaults, so a reader can tell an estimate from a reproduction. Registered with one import
line at the end of ecotrain/cli.py.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ecotrain.cli import DbOpt, JsonOpt, _open_store, _settings, app, checkpoint_app, fail

AccelOpt = Annotated[
    str,
    typer.Option("--gpu", "--accelerator", help="Accelerator: A100-80GB, H100, V100, TPUv3, ..."),
]
GpusOpt = Annotated[float, typer.Option(help="Number of accelerators used at once.")]
HoursOpt = Annotated[float | None, typer.Option(help="Wall-clock hours (with --gpus).")]
DaysOpt = Annotated[float | None, typer.Option(help="Wall-clock days (with --gpus).")]
GpuHoursOpt = Annotated[
    float | None, typer.Option(help="Accelerator-hours in all (instead of --gpus x --hours).")
]
PowerOpt = Annotated[
    float | None,
    typer.Option(help="Average power per accelerator, W (default: the table's TDP)."),
]
SystemPowerOpt = Annotated[
    float | None,
    typer.Option(help="Measured total system power, W (all GPUs, CPUs, memory; with --hours)."),
]
RegionOpt = Annotated[
    str | None, typer.Option(help="Grid region: FRA, USA/CA, CAN/QC, gcp:europe-west9, ...")
]
PueOpt = Annotated[float | None, typer.Option(help="Data-centre PUE (1.0-5.0).")]
IntensityOpt = Annotated[
    float | None, typer.Option(help="Grid intensity, g CO2e/kWh (labelled user-supplied).")
]


def _site(region: str | None, pue: float | None, intensity: float | None) -> Any:
    from ecotrain.accounting import site_from_settings

    return site_from_settings(_settings(region=region, pue=pue, intensity=intensity).flat())


def _inputs_line(est: Any) -> str:
    """'given: accelerator, gpus, hours; default: power_w (A100-80GB tdp), intensity (...)'."""
    given = [i.name for i in est.inputs if i.given]
    defaults = [f"{i.name} ({i.source})" for i in est.inputs if not i.given]
    line = f"given: {', '.join(given)}"
    if defaults:
        line += f"; defaults: {', '.join(defaults)}"
    return line


def estimate_data(est: Any) -> dict[str, Any]:
    """The machine-readable estimate: full precision, every input and whether it was given."""
    acc = est.accounting
    return {
        "accelerator": est.gpu.key,
        "gpu_hours": est.gpu_hours,
        "basis": est.basis,
        "power_w": est.power_w,
        "power_basis": est.power_basis,
        "it_energy_kwh": acc.it_energy_kwh,
        "pue": acc.site.pue,
        "facility_energy_kwh": acc.facility_energy_kwh,
        "region": acc.site.intensity.region,
        "intensity_g_per_kwh": acc.site.intensity.g_per_kwh,
        "intensity_source": acc.site.intensity.source,
        "intensity_boundary": acc.site.intensity.boundary,
        "co2_kg": acc.co2_kg,
        "cost_usd": acc.cost_usd,
        "price_source": acc.price_source,
        "inputs": [
            {"name": i.name, "value": i.value, "unit": i.unit, "given": i.given, "source": i.source}
            for i in est.inputs
        ],
        "defaults": est.defaults,
        "kind": "estimate" if est.defaults else "reproduction (every input given)",
    }


def print_estimate(est: Any, as_json: bool = False) -> None:
    """`ecotrain estimate`: the figures, their basis, and which inputs were defaults."""
    from ecotrain.output import print_json, print_mapping
    from ecotrain.units import fmt_co2, fmt_energy, fmt_usd

    if as_json:
        print_json(estimate_data(est))
        return
    acc = est.accounting
    intensity = acc.site.intensity
    where = intensity.where
    print_mapping(
        {
            "accelerator-hours": f"{est.gpu_hours:,.1f} ({est.basis})",
            "IT energy": f"{fmt_energy(acc.it_energy_kwh)}: {est.power_basis}",
            "facility energy": f"{fmt_energy(acc.facility_energy_kwh)} (PUE {acc.site.pue:g})",
            "CO2e": f"{fmt_co2(acc.co2_kg)} at {intensity.g_per_kwh:.4g} g/kWh ({where})",
            "cost": f"{fmt_usd(acc.cost_usd)} ({acc.site.cost_method}, {acc.price_source})",
            "inputs": _inputs_line(est),
            "kind": "estimate: some inputs are defaults"
            if est.defaults
            else "reproduction: every input given",
        }
    )


@app.command()
def estimate(
    gpu: AccelOpt,
    gpus: GpusOpt = 1,
    hours: HoursOpt = None,
    days: DaysOpt = None,
    gpu_hours: GpuHoursOpt = None,
    power_w: PowerOpt = None,
    system_power_w: SystemPowerOpt = None,
    params: Annotated[float | None, typer.Option(help="Parameters, for 6ND FLOPs.")] = None,
    tokens: Annotated[float | None, typer.Option(help="Training tokens, for 6ND FLOPs.")] = None,
    mfu: Annotated[float, typer.Option(help="Model FLOPs utilisation for 6ND.")] = 0.4,
    region: RegionOpt = None,
    pue: PueOpt = None,
    intensity: IntensityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Estimate what training on accelerators would cost.

    Also reproduces a paper's figures from the inputs it states."""
    from ecotrain.estimate import estimate as run_estimate

    est = run_estimate(
        gpu,
        _site(region, pue, intensity),
        gpus=gpus,
        hours=hours,
        days=days,
        gpu_hours=gpu_hours,
        params=params,
        tokens=tokens,
        mfu=mfu,
        power_w=power_w,
        system_power_w=system_power_w,
    )
    print_estimate(est, as_json=as_json)


@checkpoint_app.command("register")
def checkpoint_register(
    item: Annotated[str, typer.Argument(help="Checkpoint path or Hugging Face id.")],
    co2_kg: Annotated[float | None, typer.Option(help="CO2e as published, kg.")] = None,
    energy_kwh: Annotated[
        float | None, typer.Option(help="Energy as published, kWh (facility, after PUE).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Where the figures come from.")] = None,
    gpu: Annotated[
        str | None, typer.Option("--gpu", "--accelerator", help="Accelerator it was trained on.")
    ] = None,
    gpu_hours: GpuHoursOpt = None,
    gpus: Annotated[float | None, typer.Option(help="Accelerators used at once.")] = None,
    hours: HoursOpt = None,
    days: DaysOpt = None,
    power_w: PowerOpt = None,
    system_power_w: SystemPowerOpt = None,
    region: Annotated[str | None, typer.Option(help="Where it was trained.")] = None,
    pue: Annotated[float | None, typer.Option(help="PUE where it was trained.")] = None,
    intensity: IntensityOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """State what an unrecorded checkpoint cost.

    What a checkpoint ecotrain did not record cost: as published, or estimated."""
    from ecotrain.footprints import register, stated_footprint
    from ecotrain.lineage import identify
    from ecotrain.output import print_json
    from ecotrain.units import fmt_co2, fmt_energy, short_id

    if gpu is not None:
        from ecotrain.estimate import find_gpu

        find_gpu(gpu)  # unknown accelerator: one line listing the known ones
    stated = stated_footprint(
        co2_kg=co2_kg,
        energy_kwh=energy_kwh,
        source=source,
        gpu=gpu,
        gpu_hours=gpu_hours,
        gpus=gpus,
        hours=hours,
        days=days,
        power_w=power_w,
        system_power_w=system_power_w,
        site=_site(region, pue, intensity),
        pue=pue,
    )
    try:
        checkpoint = identify(item)
    except OSError as e:
        fail(str(e))
    row = register(_open_store(db).engine, checkpoint, stated)
    if as_json:
        print_json(row)
        return
    print(
        f"registered {short_id(row['checkpoint_id'])} ({row['name']}): "
        f"{fmt_co2(row['fp_co2_kg'])} CO2e, {fmt_energy(row['fp_energy_kwh'])} — "
        f"{row['footprint_citation']}"
    )
