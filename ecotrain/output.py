"""Printing for the CLI, handled once: Rich tables on a terminal, plain text in a pipe,
JSON with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from ecotrain.units import fmt_co2, fmt_duration, fmt_energy, fmt_usd

# In a pipe Rich would wrap tables at 80 columns; scripts reading us want whole lines.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(data: Any) -> None:
    """JSON on stdout, datetimes as ISO strings."""
    sys.stdout.write(json.dumps(data, default=_json_default, indent=2) + "\n")


def fmt_num(value: float | None, digits: int = 3) -> str:
    """A number to `digits` significant digits; '-' for unknown."""
    if value is None:
        return "-"
    return f"{value:.{digits}g}"


def fmt_time(value: datetime | None) -> str:
    """A UTC datetime, to the second."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """Print a table (Rich handles terminal vs pipe)."""
    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*["-" if v is None else str(v) for v in row])
    console.print(t)


def print_runs(rows: list[dict], as_json: bool = False) -> None:
    """The `ecotrain runs` listing."""
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no runs yet: try `ecotrain run -- python train.py`")
        return
    table(
        [
            "run",
            "started (UTC)",
            "project",
            "status",
            "duration",
            "energy",
            "CO2e",
            "cost",
            "command",
        ],
        [
            (
                r["run_id"][:12],
                fmt_time(r["started_at"]),
                r["project"],
                r["status"] + (f" ({r['exit_code']})" if r.get("exit_code") else ""),
                fmt_duration(r.get("duration_s")),
                fmt_energy(r.get("facility_energy_kwh")),
                fmt_co2(r.get("co2_kg")),
                fmt_usd(r.get("cost_usd")),
                " ".join(r.get("command") or [])[:60],
            )
            for r in rows
        ],
    )


def print_run(run: dict, samples: list[dict], as_json: bool = False) -> None:
    """The `ecotrain show` view of one run."""
    if as_json:
        print_json({**run, "samples": samples})
        return
    lines = [
        ("run", run["run_id"]),
        ("project", run["project"]),
        ("status", f"{run['status']} (exit code {run.get('exit_code')})"),
        ("command", " ".join(run.get("command") or [])),
        ("user@host", f"{run.get('user')}@{run.get('host')}"),
        ("cwd", run.get("cwd")),
        ("git", f"{run.get('git_commit') or '-'}{' (dirty)' if run.get('git_dirty') else ''}"),
        ("job / rank", f"{run.get('job_id') or '-'} / {run.get('rank')}"),
        ("tags", json.dumps(run.get("tags") or {})),
        ("started / ended", f"{fmt_time(run['started_at'])} / {fmt_time(run.get('ended_at'))}"),
        ("duration", f"{fmt_num(run.get('duration_s'))} s"),
        ("GPU energy", _energy(run, "gpu")),
        ("CPU energy", _energy(run, "cpu")),
        ("RAM energy", _energy(run, "ram")),
        ("IT energy", fmt_energy(run.get("it_energy_kwh"))),
        ("PUE", f"{run.get('pue')} ({run.get('pue_source')})"),
        ("facility energy", fmt_energy(run.get("facility_energy_kwh"))),
        (
            "grid intensity",
            f"{fmt_num(run.get('intensity_g_per_kwh'))} g/kWh, {run.get('region')} "
            f"({run.get('intensity_source')})",
        ),
        ("CO2e", fmt_co2(run.get("co2_kg"))),
        (
            "cost",
            f"{fmt_usd(run.get('cost_usd'))} ({run.get('cost_method')} at {run.get('price')}, "
            f"{run.get('price_source')})",
        ),
        (
            "GPUs",
            f"{run.get('gpu_count') or 0} x {run.get('gpu_model') or '-'}, "
            f"{fmt_num(run.get('gpu_hours'))} GPU-h, "
            f"mean {fmt_num(run.get('gpu_mean_power_w'))} W, "
            f"max {fmt_num(run.get('gpu_max_power_w'))} W, "
            f"util {fmt_num(run.get('gpu_util_pct'))}%",
        ),
        (
            "CPU",
            f"{run.get('cpu_model') or '-'} ({run.get('cpu_count')} threads), "
            f"{fmt_num(run.get('cpu_seconds'))} CPU-s",
        ),
        ("timeline", f"{len(samples)} points"),
        ("ecotrain", run.get("ecotrain_version")),
    ]
    for note in run.get("notes") or []:
        lines.append(("note", note))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        console.print(f"{key:<{width}}  {value}", markup=False)


def _energy(run: dict, component: str) -> str:
    joules = run.get(f"{component}_energy_j")
    if joules is None:
        return "not measured"
    return f"{joules:.4g} J = {joules / 3.6e6:.4g} kWh ({run.get(f'{component}_method')})"


def print_mapping(data: Mapping[str, Any], as_json: bool = False) -> None:
    """Key/value lines."""
    if as_json:
        print_json(dict(data))
        return
    width = max((len(k) for k in data), default=0)
    for key, value in data.items():
        console.print(f"{key:<{width}}  {value}", markup=False)


def print_settings(settings: Any, as_json: bool = False) -> None:
    """`ecotrain config show`: each setting, its value and where it came from."""
    if as_json:
        print_json(
            {k: {"value": v, "from": settings.origins.get(k)} for k, v in settings.values.items()}
        )
        return
    table(
        ["setting", "value", "from"],
        [(k, v, settings.origins.get(k)) for k, v in sorted(settings.values.items())],
    )


def print_doctor(report: dict, as_json: bool = False) -> None:
    """`ecotrain doctor`: sensors in use, those not available and why, accounting inputs."""
    if as_json:
        print_json(report)
        return
    console.print("[bold]Sensors in use[/bold]")
    for s in report["sensors"]:
        console.print(
            f"  {s['component']:<4} {s['name']:<24} {s['method']:<10} {s.get('detail', '')}",
            markup=False,
        )
    if report["unavailable"]:
        console.print("[bold]Not available[/bold]")
        for reason in report["unavailable"]:
            console.print(f"  {reason}", markup=False)
    console.print("[bold]Accounting[/bold]")
    for key, value in report["accounting"].items():
        console.print(f"  {key:<18} {value}", markup=False)
    console.print(f"[bold]Database[/bold]  {report['database']}")


def print_status(rows: list[dict], as_json: bool = False) -> None:
    """`ecotrain status`: runs in progress, energy so far, mean power, progress, forecast."""
    from ecotrain.units import fmt_duration

    if as_json:
        print_json(rows)
        return
    if not rows:
        print("no runs in progress")
        return
    out = []
    for r in rows:
        duration = r.get("duration_s") or 0.0
        watts = (r.get("it_energy_kwh") or 0.0) * 3.6e6 / duration if duration else None
        progress = r.get("progress") or {}
        pred = r.get("prediction") or {}
        out.append(
            [
                r["run_id"][:12],
                r.get("project"),
                r.get("user"),
                r.get("host"),
                fmt_duration(duration),
                fmt_num(r.get("facility_energy_kwh")),
                fmt_co2(r.get("co2_kg")),
                fmt_num(watts),
                f"{progress['fraction']:.0%}" if progress.get("fraction") is not None else "-",
                fmt_duration(pred.get("remaining_s")) if pred else "-",
                fmt_num(pred.get("facility_energy_kwh")) if pred else "-",
                fmt_co2(pred.get("co2_kg")) if pred else "-",
                f"${pred['cost_usd']:.3g}" if pred.get("cost_usd") is not None else "-",
            ]
        )
    table(
        [
            "run",
            "project",
            "user",
            "host",
            "elapsed",
            "kWh",
            "CO2e",
            "W",
            "done",
            "ETA",
            "kWh at end",
            "CO2e at end",
            "$ at end",
        ],
        out,
        title="Runs in progress (as of their last heartbeat)",
    )


def print_checkpoints(rows: list[dict], as_json: bool = False) -> None:
    """`ecotrain checkpoints`: id, name, footprint with its source, reuse counts."""
    import dataclasses

    if as_json:
        print_json([{**r, "footprint": dataclasses.asdict(r["footprint"])} for r in rows])
        return
    if not rows:
        console.print("no checkpoints yet: runs record the model files they read and write")
        return
    table(
        ["checkpoint", "name", "produced", "reused", "footprint energy", "CO2e", "source"],
        [
            (
                r["checkpoint_id"][:19],
                r.get("name"),
                r["times_produced"],
                r["times_reused"],
                fmt_energy(r["footprint"].energy_kwh),
                fmt_co2(r["footprint"].co2_kg),
                r["footprint"].source,
            )
            for r in rows
        ],
    )


def print_savings(items: list, mode: str, as_json: bool = False) -> None:
    """`ecotrain savings`: what each reused checkpoint avoided, and the totals."""
    import dataclasses

    if as_json:
        print_json({"mode": mode, "avoided": [dataclasses.asdict(a) for a in items]})
        return
    if not items:
        console.print("no reuse of checkpoints from outside these runs' projects yet")
        return
    table(
        [
            "checkpoint",
            "footprint from",
            "reused by",
            "avoided energy",
            "avoided CO2e",
            "avoided cost",
        ],
        [
            (
                a.name or a.checkpoint_id[:19],
                a.footprint.source,
                f"{a.reuses} run(s)",
                fmt_energy(a.energy_kwh),
                fmt_co2(a.co2_kg),
                fmt_usd(a.cost_usd),
            )
            for a in items
        ],
        title=f"Avoided by reuse (mode {mode}; reported beside emissions, never subtracted)",
    )
    from ecotrain.savings import avoided_total

    (energy, co2, cost), unknown = avoided_total(items)
    line = f"total avoided: {fmt_energy(energy)} · {fmt_co2(co2)} CO2e · {fmt_usd(cost)}"
    if unknown and energy is not None:
        line += f" (at least: {len(unknown)} checkpoint(s) of unknown footprint not counted)"
    console.print(line, markup=False)
    for a in items:
        console.print(f"  {a.assumption}", markup=False)
    for name, target in unknown:
        console.print(
            f"  hint: {name}'s footprint is unknown; state it with `ecotrain checkpoint register "
            f"{target} --gpu <model> --gpu-hours <h>` (or --energy-kwh / --co2-kg)",
            markup=False,
        )


def print_estimate(est: Any, as_json: bool = False) -> None:
    """`ecotrain estimate`: the what-if figures and their basis."""
    acc = est.accounting
    data = {
        "gpu": est.gpu.key,
        "gpu_hours": est.gpu_hours,
        "basis": est.basis,
        "power_w": est.gpu.power_w,
        "it_energy_kwh": acc.it_energy_kwh,
        "pue": acc.site.pue,
        "facility_energy_kwh": acc.facility_energy_kwh,
        "region": acc.site.intensity.region,
        "intensity_g_per_kwh": acc.site.intensity.g_per_kwh,
        "co2_kg": acc.co2_kg,
        "cost_usd": acc.cost_usd,
        "price_source": acc.price_source,
    }
    if as_json:
        print_json(data)
        return
    print_mapping(
        {
            "GPU-hours": f"{est.gpu_hours:,.1f} ({est.basis})",
            "IT energy": f"{fmt_energy(acc.it_energy_kwh)} at {est.gpu.power_w:g} W board power",
            "facility energy": f"{fmt_energy(acc.facility_energy_kwh)} (PUE {acc.site.pue:g})",
            "CO2e": f"{fmt_co2(acc.co2_kg)} at {acc.site.intensity.g_per_kwh:.4g} g/kWh "
            f"({acc.site.intensity.region})",
            "cost": f"{fmt_usd(acc.cost_usd)} ({acc.site.cost_method}, {acc.price_source})",
        }
    )


def print_spool(directory: Any, files: list) -> None:
    """`ecotrain sync --status`: the records waiting in the spool and where they go."""
    from ecotrain.store.engine import mask_url
    from ecotrain.store.spool import load

    console.print(f"{len(files)} record(s) pending in {directory}")
    rows = []
    for path in files:
        record = load(path) or {}
        run = record.get("run", {})
        rows.append(
            (
                path.stem[:12],
                run.get("status", "?"),
                run.get("project", ""),
                str(run.get("heartbeat_at") or run.get("started_at") or "")[:19],
                mask_url(str(record.get("target") or "(default database)")),
            )
        )
    if rows:
        table(["run", "status", "project", "last state", "database"], rows)


def print_job(job: str, total: dict, rows: list[dict]) -> None:
    """`ecotrain runs --job ID`: the job as one line, its ranks beneath."""
    console.print(
        f"job {job}: {total['runs']} runs · {fmt_energy(total['energy_kwh'])} · "
        f"{fmt_co2(total['co2_kg'])} CO2e · {fmt_usd(total['cost_usd'])} · "
        f"{total['gpu_hours']:.2f} GPU-h",
        markup=False,
    )
    table(
        ["rank", "node", "run", "status", "GPUs measured", "energy", "CO2e"],
        [
            (
                r.get("rank"),
                r.get("node"),
                r["run_id"][:12],
                r["status"],
                r.get("gpu_count") or 0,
                fmt_energy(r.get("facility_energy_kwh")),
                fmt_co2(r.get("co2_kg")),
            )
            for r in rows
        ],
    )
