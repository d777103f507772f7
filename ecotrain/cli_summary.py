"""`ecotrain summary` (totals by project/user/GPU) and `ecotrain compare RUN RUN...`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ecotrain.cli import DbOpt, JsonOpt, _open_store, app, fail, parse_when
from ecotrain.run_cli import parse_tags

SPARK = "▁▂▃▄▅▆▇█"


@app.command()
def summary(
    by: Annotated[
        str,
        typer.Option(
            metavar="KEYS",
            help="Group by project, user, gpu, host, region, status (comma-separated).",
        ),
    ] = "project",
    project: Annotated[str | None, typer.Option(metavar="NAME", help="Only this project.")] = None,
    user: Annotated[str | None, typer.Option(metavar="NAME", help="Only this user.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="Only runs with this tag.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="WHEN", help="YYYY-MM-DD or 7d, 12h, 30m.")
    ] = None,
    until: Annotated[str | None, typer.Option(metavar="WHEN", help="YYYY-MM-DD or 7d.")] = None,
    status: Annotated[
        str | None, typer.Option(metavar="STATUS", help="finished, failed, running, lost, ...")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sum energy, CO2e, cost and GPU-hours by group.

    By project, user or GPU, with a totals row."""
    from ecotrain.efficiency import UNITS, text, unit_tag
    from ecotrain.output import print_json, table
    from ecotrain.store.queries import RunFilter
    from ecotrain.summary import parse_by, summarize
    from ecotrain.units import UNKNOWN, fmt_co2, fmt_energy, fmt_usd

    cols = parse_by(by)
    flt = RunFilter(
        project=project,
        user=user,
        tags=parse_tags(tag),
        since=parse_when(since),
        until=parse_when(until),
        status=status,
    )
    store = _open_store(db)
    result = summarize(store.engine, flt, cols)
    if as_json:
        print_json(result)
        return
    if not result["groups"]:
        # As `ecotrain runs`: an empty listing is an answer, not an error (exit 0); only
        # `report`, which cannot make a report of nothing, calls it a mistake (exit 2).
        from ecotrain.output import console

        console.print(
            "no runs match" + _filters_text(project, user, tag, since, until, status),
            markup=False,
        )
        return
    keys = result["by"]

    def cells(row: dict[str, Any]) -> list[str]:
        return [
            f"{row['runs']}" + (f" ({row['running']} running)" if row.get("running") else ""),
            fmt_energy(row["energy_kwh"]),
            fmt_co2(row["co2_kg"]),
            fmt_usd(row["cost_usd"]),
            f"{row['gpu_hours']:.3g}",
        ]

    # per-unit-of-work columns only for the units some run reported
    units = [u for u in UNITS if u in result["total"].get("per_unit", {})]

    def work_cells(row: dict[str, Any]) -> list[str]:
        out = []
        for unit in units:
            figures = row.get("per_unit", {}).get(unit)
            if not figures:
                out.append(UNKNOWN)
                continue
            tag = unit_tag(unit)
            cell = text(figures[f"wh_per_{tag}"], figures[f"g_co2e_per_{tag}"])
            if figures["runs"] < row["runs"]:
                cell += f" ({figures['runs']} of {row['runs']} runs)"
            out.append(cell)
        return out

    rows = [[str(r[k]) if r[k] is not None else "(unknown)" for k in keys] + cells(r)
            + work_cells(r) for r in result["groups"]]  # fmt: skip
    total = result["total"]
    rows.append(
        ["total"] + [""] * (len(keys) - 1) + cells({**total, "running": None}) + work_cells(total)
    )
    headers = [*keys, "runs", "energy", "CO2e", "cost", "GPU-hours"]
    table(headers + [f"per {UNITS[u][1]}" for u in units], rows)


def _filters_text(*values: Any) -> str:
    given = [v for v in values if v]
    return " these filters" if given else " (no runs recorded yet: try `ecotrain run -- ...`)"


@app.command()
def compare(
    runs: Annotated[
        list[str], typer.Argument(metavar="RUN", help="Two or more run ids (or prefixes).")
    ],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare runs side by side.

    Energy by component, power profile, CO2e, cost (vs the first)."""
    from ecotrain.compare import compare_runs
    from ecotrain.output import print_json
    from ecotrain.store.queries import RunNotFound

    if len(runs) < 2:
        fail("compare needs at least two runs: ecotrain compare RUN RUN")
    store = _open_store(db, readonly=True)
    try:
        result = compare_runs(store.engine, runs)
    except RunNotFound as e:
        fail(str(e))
    if as_json:
        print_json(result)
        return
    print_comparison(result)


def _fmt_metric(metric: str, value: float | None) -> str:
    from ecotrain.units import UNKNOWN, fmt, fmt_co2, fmt_duration, fmt_energy, fmt_usd

    if value is None:
        return UNKNOWN
    if metric == "duration_s":
        return fmt_duration(value)
    if metric.endswith("_kwh"):
        return fmt_energy(value)
    if metric in ("co2_kg", "co2_series_kg"):
        return fmt_co2(value)
    if metric in ("tokens", "samples"):
        return f"{value:,.0f}"
    if metric.startswith("wh_per_"):
        return fmt_energy(value / 1000)
    if metric.startswith("g_co2e_"):
        return f"{fmt_co2(value / 1000)} CO2e"
    if metric == "cost_usd":
        return fmt_usd(value)
    if metric.endswith("_power_w"):
        return fmt(value, "W")
    return fmt(value)


def _fmt_change(change: dict[str, float | None]) -> str:
    ratio = change["ratio"]
    if ratio is None:
        return "" if change["delta"] is None else "n/a"
    return f"{ratio - 1:+.0%}"


def sparkline(profile: list[float | None], top: float) -> str:
    """The power profile as one line of block characters, on a scale shared by all runs."""
    if not top:
        return " " * len(profile)
    return "".join(
        " " if v is None else SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))]
        for v in profile
    )


def print_comparison(result: dict[str, Any]) -> None:
    """The comparison table, then the power profiles on one scale."""
    from ecotrain.output import console, table
    from ecotrain.units import fmt

    runs = result["runs"]
    header = ["", *[r["run_id"][:12] for r in runs]]
    header += [f"{r['run_id'][:8]} vs {runs[0]['run_id'][:8]}" for r in runs[1:]]
    rows = [
        ["project", *[r["project"] for r in runs]] + [""] * (len(runs) - 1),
        ["status", *[r["status"] for r in runs]] + [""] * (len(runs) - 1),
        ["GPU", *[f"{r['gpu_count'] or 0} x {r['gpu_model']}" if r["gpu_model"] else "none"
                  for r in runs]] + [""] * (len(runs) - 1),
        ["region, PUE", *[f"{r['region']}, {r['pue']}" for r in runs]] + [""] * (len(runs) - 1),
    ]  # fmt: skip
    for metric, label in result["metrics"].items():
        values = [_fmt_metric(metric, r.get(metric)) for r in runs]
        rows.append([label, *values, *[_fmt_change(c) for c in result["diff"][metric]]])
    table(header, rows)
    top = max((v for r in runs for v in r["profile_w"] if v is not None), default=0.0)
    console.print(f"\npower profile (IT power over each run's own time, scale 0-{fmt(top, 'W')}):")
    for r in runs:
        line = f"|{sparkline(r['profile_w'], top)}|" if r["profile_w"] else "(no samples)"
        console.print(f"  {r['run_id'][:12]}  {line}", markup=False)
    notes = _comparison_notes(result)
    if notes:
        console.print("")
    for note in notes:
        console.print(note, markup=False)


def _comparison_notes(result: dict[str, Any]) -> list[str]:
    """What the optional rows rest on: each time-resolved figure's method (the annual
    figure stays the one to compare), and the basis of the per-unit figures."""
    metrics, runs = result["metrics"], result["runs"]
    notes = []
    if "co2_series_kg" in metrics:
        notes.append("CO2e time-resolved (the CO2e row above stays the annual figure):")
        for r in runs:
            method = r.get("co2_series_method") or "none (no imported series covers this run)"
            notes.append(f"  {r['run_id'][:12]}  {method}")
    if any(m in metrics for m in ("tokens", "samples")):
        basis = next((r["energy_basis"] for r in runs if r.get("energy_basis")), "")
        notes.append(
            f"per unit of work: {basis}, over the last count the run reported; "
            "unknown where a run reported none"
        )
    return notes
