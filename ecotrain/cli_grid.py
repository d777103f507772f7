"""`ecotrain grid import/show` and `ecotrain advise`: thin commands over ecotrain.grid_series
and ecotrain.advise (registered by one import at the end of ecotrain/cli.py)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ecotrain.cli import DbOpt, JsonOpt, _open_store, _settings, app, fail

grid_app = typer.Typer(help="Import and show hourly grid intensity series.", no_args_is_help=True)
app.add_typer(grid_app, name="grid")

SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled between the smallest and the largest."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    return "".join(SPARK[1 + int((v - lo) / span * (len(SPARK) - 2))] for v in values)


@grid_app.command("import")
def grid_import(
    file: Annotated[
        str,
        typer.Argument(
            help="CSV export: Electricity Maps, ENTSO-E, EIA, "
            "WattTime, or timestamp,zone,g_per_kwh."
        ),
    ],
    zone: Annotated[str | None, typer.Option(help="Zone, when the file does not name it.")] = None,
    region: Annotated[
        str | None, typer.Option(help="ecotrain region the series applies to (FRA, USA/CA).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source text to record.")] = None,
    licence: Annotated[str | None, typer.Option(help="Licence of the data, recorded.")] = None,
    basis: Annotated[
        str, typer.Option(help="Electricity Maps column: lca (lifecycle) or direct.")
    ] = "lca",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import an hourly intensity series file.

    Offline, deduplicated, with its source and licence."""
    from ecotrain.grid_series import import_file

    store = _open_store(db)
    fmt, done = import_file(
        store.engine, file, zone=zone, region=region, source=source, licence=licence, basis=basis
    )
    if as_json:
        rows = [{**vars(d), "first": d.first.isoformat(), "last": d.last.isoformat()} for d in done]
        print(json.dumps({"format": fmt, "series": rows}, indent=2))
        return
    for d in done:
        tied = (
            f"for region {d.region}; {d.runs_updated} run(s) got a time-resolved CO2e"
            if d.region
            else "not tied to a region: pass --region (e.g. USA/CA) to use it for runs"
        )
        print(
            f"{fmt}: {d.zone} {d.signal}: {d.points} points ({d.new} new) from "
            f"{d.first:%Y-%m-%d %H:%M} to {d.last:%Y-%m-%d %H:%M} UTC, {tied}"
        )


@grid_app.command("show")
def grid_show(
    zone: Annotated[str, typer.Argument(help="Zone or region (FR, FRA, USA/CA).")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a zone's series coverage and hourly profile.

    Its coverage and its intensity by hour of day."""
    from ecotrain.advise import hourly_values
    from ecotrain.grid_series import list_series, load_series
    from ecotrain.units import fmt

    store = _open_store(db)
    found = list_series(store.engine, zone)
    if not found:
        known = ", ".join(sorted({r["zone"] for r in list_series(store.engine)})) or "none yet"
        fail(f"no grid series for {zone!r} (imported: {known}); use `ecotrain grid import FILE`")
    out: list[dict[str, Any]] = []
    for row in found:
        series = load_series(store.engine, row["zone"], row["signal"])
        hours = hourly_values(series) if series else {}
        by_hod: dict[int, list[float]] = {}
        for h, v in hours.items():
            by_hod.setdefault(h % 24, []).append(v)
        profile = [[h, sum(v) / len(v)] for h, v in sorted(by_hod.items())]
        span_h = (row["last"] - row["first"]).total_seconds() / 3600 + series.step_s / 3600
        gaps = max(0.0, span_h - len(hours)) if series else 0.0
        out.append(
            {
                **{k: row[k] for k in ("zone", "signal", "region", "source", "licence")},
                "points": row["points"],
                "first": row["first"].isoformat(),
                "last": row["last"].isoformat(),
                "step_s": series.step_s if series else None,
                "hours_covered": len(hours),
                "hours_missing": round(gaps),
                "mean_g_per_kwh": row["mean"],
                "min_g_per_kwh": row["min"],
                "max_g_per_kwh": row["max"],
                "by_hour_utc": profile,
            }
        )
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for s in out:
        minutes = s["step_s"] / 60
        # a whole number of minutes as it is ("every 60 min", not "60.0"); else 3 figures
        whole = minutes >= 1 and minutes == int(minutes)
        step = fmt(minutes, "min", len(str(int(minutes))) if whole else 3)
        print(
            f"{s['zone']} {s['signal']} (region {s['region'] or 'none'}): {s['points']} points "
            f"every {step}, {s['first'][:16]} to {s['last'][:16]} "
            f"UTC, {s['hours_missing']} hour(s) missing"
        )
        print(f"  source: {s['source']}; licence: {s['licence']}")
        print(
            f"  g CO2e/kWh: mean {fmt(s['mean_g_per_kwh'])}, min {fmt(s['min_g_per_kwh'])}, "
            f"max {fmt(s['max_g_per_kwh'])}"
        )
        if s["by_hour_utc"]:
            prof = s["by_hour_utc"]
            lo, hi = min(prof, key=lambda p: p[1]), max(prof, key=lambda p: p[1])
            span = f"{prof[0][0]:02d}-{prof[-1][0]:02d}" if len(prof) < 24 else "00-23"
            print(
                f"  by hour of day (UTC {span}): {sparkline([p[1] for p in prof])}  lowest "
                f"{lo[0]:02d}:00 ({fmt(lo[1])}), highest {hi[0]:02d}:00 ({fmt(hi[1])})"
            )


def _home_site(run: dict[str, Any]):
    """The site a recorded run was accounted at, from its stored inputs."""
    from ecotrain.accounting import Site
    from ecotrain.grid import Intensity

    if run.get("intensity_g_per_kwh") is None or run.get("pue") is None:
        return None
    return Site(
        pue=run["pue"],
        pue_source=run.get("pue_source") or "",
        intensity=Intensity(
            run.get("region") or "custom",
            run["intensity_g_per_kwh"],
            run.get("intensity_source") or "",
        ),
        cost_method=run.get("cost_method") or "electricity",
        price=run.get("price"),
        price_source=run.get("price_source") or "",
    )


@app.command()
def advise(
    run_id: Annotated[str | None, typer.Argument(help="Run id or prefix to advise on.")] = None,
    gpu: Annotated[str | None, typer.Option(help="Planned job: GPU model (A100, H100).")] = None,
    hours: Annotated[float | None, typer.Option(help="Planned job: wall-clock hours.")] = None,
    gpus: Annotated[int, typer.Option(help="Planned job: number of GPUs.")] = 1,
    region: Annotated[str | None, typer.Option(help="Planned job's region.")] = None,
    signal: Annotated[str, typer.Option(help="Series signal: average or marginal.")] = "average",
    tz: Annotated[
        str | None, typer.Option(help="Time zone for hours and days (default UTC).")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Advise when and where a job would emit less.

    Best start hour and day, other sites."""
    from ecotrain.accounting import site_from_settings
    from ecotrain.advise import advise as make_advice
    from ecotrain.advise import profile_from_run, profile_planned, sites_from_settings
    from ecotrain.store.queries import RunNotFound, get_run, run_samples

    if signal not in ("average", "marginal"):
        fail(f"--signal must be average or marginal, got {signal!r}")
    if (run_id is None) == (gpu is None):
        fail("give a RUN id, or --gpu and --hours for a planned job")
    settings = _settings(**{"database.url": db, "region": region})
    store = _open_store(db)
    if run_id is not None:
        try:
            run = get_run(store.engine, run_id)
        except RunNotFound as e:
            fail(str(e))
        timeline = [
            (s["t_s"], (s["gpu_w"] or 0) + (s["cpu_w"] or 0) + (s["ram_w"] or 0))
            for s in run_samples(store.engine, run["run_id"])
        ]
        profile, home = profile_from_run(run, timeline), _home_site(run)
    else:
        if hours is None:
            fail("--gpu needs --hours")
        home = site_from_settings(settings.flat())
        profile = profile_planned(gpu, hours, gpus, home)
    advice = make_advice(
        profile, store.engine, sites_from_settings(settings.flat()), home, signal=signal, tz=tz
    )
    if as_json:
        print(json.dumps(advice.to_dict(), indent=2, default=str))
        return
    print_advice(advice)


def print_advice(advice: Any) -> None:
    """The advice in plain lines, each with the data it rests on."""
    from ecotrain.units import fmt_co2, fmt_energy, fmt_usd

    print(f"Job: {advice.basis}; {fmt_energy(advice.facility_kwh)} facility energy")
    w = advice.when
    if w is None:
        print(f"When: {advice.when_note}")
    else:
        print(
            f"When ({w.signal} intensity, {w.series}; {w.starts} possible starts, "
            f"{w.first} to {w.last}, {w.days:.0f} days; licence: {w.licence}):"
        )
        print(f"  a start at a random hour: {fmt_co2(w.reference_co2_kg)}")
        if w.actual_co2_kg is not None:
            print(f"  as it ran (time-resolved): {fmt_co2(w.actual_co2_kg)}")
        vs = (
            f", {w.best_hour_vs_actual_pct:+.0f}% vs as it ran"
            if w.best_hour_vs_actual_pct is not None
            else ""
        )
        print(
            f"  best hour of day: {w.best_hour.label} -> {fmt_co2(w.best_hour.co2_kg)} "
            f"({w.best_hour.change_pct:+.0f}% vs a random hour{vs}); worst "
            f"{w.worst_hour.label} ({w.worst_hour.change_pct:+.0f}%)"
        )
        print(
            f"  best day of week: {w.best_day.label} -> {fmt_co2(w.best_day.co2_kg)} "
            f"({w.best_day.change_pct:+.0f}% vs a random day)"
        )
        print(f"  best single start in the series: {w.best_start} ({fmt_co2(w.best_start_co2_kg)})")
    if advice.where:
        print("Where (same IT energy at each site's PUE, intensity and price):")
        for r in advice.where:
            change = f" ({r.change_pct:+.0f}%)" if r.change_pct is not None and r.change_pct else ""
            print(
                f"  {r.site} [{r.region}, PUE {r.pue:g}]: {fmt_co2(r.co2_kg)}{change}, "
                f"{fmt_usd(r.cost_usd)} - intensity {r.g_per_kwh:.4g} g/kWh ({r.intensity_basis});"
                f" price {r.price_basis}"
            )
    if advice.where_note:
        print(f"Where: {advice.where_note}")
    print(f"Note: {advice.flexibility}")
