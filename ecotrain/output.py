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

from ecotrain.units import (
    UNKNOWN,
    column_unit,
    fmt_co2,
    fmt_duration,
    fmt_energy,
    fmt_number,
    fmt_usd,
    short_id,
)

# In a pipe Rich would wrap tables at 80 columns; scripts reading us want whole lines.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(data: Any) -> None:
    """JSON on stdout, datetimes as ISO strings."""
    sys.stdout.write(json.dumps(data, default=_json_default, indent=2) + "\n")


def _count(value: float | None) -> str:
    """A count as counted: "2", not "2.00"; a fractional CPU quota keeps its fraction."""
    if value is None:
        return UNKNOWN
    return f"{int(value):,}" if float(value).is_integer() else fmt_num(value)


def fmt_num(value: float | None, digits: int = 3) -> str:
    """A number to `digits` significant figures; "unknown" when unknown (ecotrain.units)."""
    return fmt_number(value, digits)


def fmt_time(value: datetime | None) -> str:
    """A UTC datetime, to the second."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else UNKNOWN


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """Print a table (Rich handles terminal vs pipe)."""
    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[UNKNOWN if v is None else str(v) for v in row])
    console.print(t)


def print_runs(
    rows: list[dict],
    as_json: bool = False,
    total: dict | None = None,
    in_store: int | None = None,
) -> None:
    """The `ecotrain runs` listing; ``total`` (all matching runs, not only those shown) adds
    a totals line; ``in_store`` (runs in the database) words the empty case."""
    if as_json:
        print_json(rows)
        return
    if not rows:
        if in_store:
            console.print(f"no runs match these filters ({in_store} runs in the database)")
        else:
            console.print("no runs yet: try `ecotrain run -- python train.py`")
        return
    # One unit per column, so rows compare at a glance.
    kwh = column_unit([r.get("facility_energy_kwh") for r in rows], "energy")
    kg = column_unit([r.get("co2_kg") for r in rows], "co2")
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
                fmt_energy(r.get("facility_energy_kwh"), kwh),
                fmt_co2(r.get("co2_kg"), kg),
                fmt_usd(r.get("cost_usd")),
                " ".join(r.get("command") or [])[:60],
            )
            for r in rows
        ],
    )
    if total is not None:
        shown = f" (latest {len(rows)} shown)" if total["runs"] > len(rows) else ""
        console.print(
            f"total: {total['runs']} runs{shown} · {fmt_energy(total['energy_kwh'])} · "
            f"{fmt_co2(total['co2_kg'])} CO2e · {fmt_usd(total['cost_usd'])}",
            markup=False,
        )


def print_run(
    run: dict,
    samples: list[dict],
    as_json: bool = False,
    checkpoints: list[dict] | None = None,
) -> None:
    """The `ecotrain show` view of one run (with the checkpoints it read and wrote)."""
    if as_json:
        extra = {} if checkpoints is None else {"checkpoints": checkpoints}
        print_json({**run, "samples": samples, **extra})
        return
    lines = [
        ("run", run["run_id"]),
        ("project", run["project"]),
        ("status", _status(run)),
        ("command", " ".join(run.get("command") or [])),
        ("user@host", f"{run.get('user')}@{run.get('host')}"),
        ("cwd", run.get("cwd") or UNKNOWN),
        ("git", f"{run.get('git_commit') or '-'}{' (dirty)' if run.get('git_dirty') else ''}"),
        (
            "job / rank",
            f"{run.get('job_id') or 'none'} / "
            f"{'none' if run.get('rank') is None else run.get('rank')}",
        ),
        ("tags", json.dumps(run.get("tags") or {})),
        ("started / ended", f"{fmt_time(run['started_at'])} / {fmt_time(run.get('ended_at'))}"),
        ("duration", fmt_duration(run.get("duration_s"))),
        ("GPU energy", _energy(run, "gpu")),
        ("CPU energy", _energy(run, "cpu")),
        ("RAM energy", _energy(run, "ram")),
        ("IT energy", fmt_energy(run.get("it_energy_kwh"))),
        ("PUE", f"{fmt_num(run.get('pue'))} ({run.get('pue_source') or UNKNOWN})"),
        ("facility energy", fmt_energy(run.get("facility_energy_kwh"))),
        (
            "grid intensity",
            f"{fmt_num(run.get('intensity_g_per_kwh'))} g/kWh, {run.get('region')} "
            f"({run.get('intensity_source')})",
        ),
        ("CO2e", fmt_co2(run.get("co2_kg"))),
        *_when_and_work(run),
        (
            "cost",
            f"{fmt_usd(run.get('cost_usd'))} ({run.get('cost_method') or UNKNOWN} at "
            f"{fmt_num(run.get('price'))}, {run.get('price_source') or UNKNOWN})",
        ),
        ("GPUs", _gpus(run)),
        (
            "CPU",
            f"{run.get('cpu_model') or UNKNOWN} ({_count(run.get('cpu_count'))} threads), "
            f"{fmt_num(run.get('cpu_seconds'))} CPU-s",
        ),
        ("timeline", f"{len(samples)} points"),
        ("ecotrain", run.get("ecotrain_version") or UNKNOWN),
    ]
    if run.get("end_reason"):
        lines.insert(3, ("end reason", run["end_reason"]))
    if run.get("status") == "lost":
        # The wrapper was killed (SIGKILL, OOM): its command may have run on, unmeasured.
        lines.insert(
            3,
            (
                "not measured",
                f"after the last heartbeat, {fmt_time(run.get('heartbeat_at'))} UTC: the "
                "wrapper stopped there; the command may have kept running unmeasured",
            ),
        )
    for link in checkpoints or []:
        shown = short_id(link["checkpoint_id"])
        lines.append((link["role"], f"{link.get('name') or shown}  {shown}  {link.get('path')}"))
    for note in run.get("notes") or []:
        lines.append(("note", note))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        console.print(f"{key:<{width}}  {value}", markup=False)


def _when_and_work(run: dict) -> list[tuple[str, str]]:
    from ecotrain.efficiency import show_lines  # time-resolved CO2e, per unit of work

    return show_lines(run)


def _energy(run: dict, component: str) -> str:
    joules = run.get(f"{component}_energy_j")
    if joules is None:
        return "not measured"
    return f"{fmt_energy(joules / 3.6e6)} ({run.get(f'{component}_method') or UNKNOWN})"


def _gpus(run: dict) -> str:
    if not run.get("gpu_model"):
        return "none"
    return (
        f"{run.get('gpu_count') or 1} x {run['gpu_model']}, "
        f"{fmt_num(run.get('gpu_hours'))} GPU-h, "
        f"mean {fmt_num(run.get('gpu_mean_power_w'))} W, "
        f"max {fmt_num(run.get('gpu_max_power_w'))} W, "
        f"util {fmt_num(run.get('gpu_util_pct'))}%"
    )


def _status(run: dict) -> str:
    code = run.get("exit_code")
    return run["status"] + ("" if code is None else f" (exit code {code})")


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
    from ecotrain.redact import redact_settings

    values = redact_settings(settings.values)  # a database password is never shown
    if as_json:
        print_json({k: {"value": v, "from": settings.origins.get(k)} for k, v in values.items()})
        return
    table(
        ["setting", "value", "from"],
        [(k, v, settings.origins.get(k)) for k, v in sorted(values.items())],
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
    _print_gpus_and_container(report)
    console.print("[bold]Accounting[/bold]")
    for key, value in report["accounting"].items():
        console.print(f"  {key:<18} {value}", markup=False)
    console.print(f"[bold]Database[/bold]  {report['database']}")


def _print_gpus_and_container(report: dict) -> None:
    """`ecotrain doctor`: each GPU with what can and cannot be read; the container's effect."""
    if report.get("gpus"):
        console.print("[bold]GPUs[/bold]")
        for gpu in report["gpus"]:
            head = f"{gpu.get('vendor')} {gpu.get('index', '')} {gpu.get('name', '')}"
            console.print(f"  {head.strip()}  {gpu.get('uuid', '')}", markup=False)
            for key, value in gpu.items():
                if key not in ("vendor", "index", "name", "uuid"):
                    console.print(f"    {key:<24} {value}", markup=False)
    container = report.get("container")
    if container:
        console.print("[bold]Container[/bold]")
        for key, value in container.items():
            for i, line in enumerate(value if isinstance(value, list) else [value]):
                console.print(f"  {key if i == 0 else '':<18} {line}", markup=False)


def print_status(rows: list[dict], as_json: bool = False) -> None:
    """`ecotrain status`: runs in progress, energy so far, mean power, progress, forecast."""
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
                fmt_energy(r.get("facility_energy_kwh")),
                fmt_co2(r.get("co2_kg")),
                fmt_num(watts),
                f"{progress['fraction']:.0%}" if progress.get("fraction") is not None else "-",
                fmt_duration(pred.get("remaining_s")) if pred else "-",
                fmt_energy(pred.get("facility_energy_kwh")) if pred else "-",
                fmt_co2(pred.get("co2_kg")) if pred else "-",
                fmt_usd(pred.get("cost_usd")) if pred else "-",
            ]
        )
    table(
        [
            "run",
            "project",
            "user",
            "host",
            "elapsed",
            "energy",
            "CO2e",
            "W",
            "done",
            "ETA",
            "energy at end",
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
    kwh = column_unit([r["footprint"].energy_kwh for r in rows], "energy")
    kg = column_unit([r["footprint"].co2_kg for r in rows], "co2")
    table(
        ["checkpoint", "name", "produced", "reused", "footprint energy", "CO2e", "source"],
        [
            (
                short_id(r["checkpoint_id"]),
                r.get("name"),
                r["times_produced"],
                r["times_reused"],
                fmt_energy(r["footprint"].energy_kwh, kwh),
                fmt_co2(r["footprint"].co2_kg, kg),
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
    kwh = column_unit([a.energy_kwh for a in items], "energy")
    kg = column_unit([a.co2_kg for a in items], "co2")
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
                a.name or short_id(a.checkpoint_id),
                a.footprint.source,
                f"{a.reuses} run(s)",
                fmt_energy(a.energy_kwh, kwh),
                fmt_co2(a.co2_kg, kg),
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


def spool_rows(files: list) -> list[dict]:
    """The spooled records waiting: run id, status, project, last state, database (masked)."""
    from ecotrain.store.engine import mask_url
    from ecotrain.store.spool import load

    rows = []
    for path in files:
        record = load(path) or {}
        run = record.get("run", {})
        rows.append(
            {
                "run_id": path.stem,
                "status": run.get("status", "?"),
                "project": run.get("project", ""),
                "last_state": str(run.get("heartbeat_at") or run.get("started_at") or "")[:19],
                "database": mask_url(str(record.get("target") or "(default database)")),
            }
        )
    return rows


def print_spool(directory: Any, files: list, quarantined: list, as_json: bool = False) -> None:
    """`ecotrain sync --status`: the records waiting in the spool and where they go, and
    those set aside (quarantined)."""
    rows = spool_rows(files)
    if as_json:
        print_json({"spool": str(directory), "pending": rows, "quarantined": quarantined})
        return
    console.print(f"{len(files)} record(s) pending in {directory}", markup=False)
    if rows:
        table(
            ["run", "status", "project", "last state", "database"],
            [(r["run_id"][:12], *list(r.values())[1:]) for r in rows],
        )
    if quarantined:
        print(f"{len(quarantined)} record(s) quarantined (a database refused them; not retried):")
        for row in quarantined:
            print(f"  {row['run_id'][:12]}  {row['since']}  {row['reason']}  ({row['file']})")


def print_job(job: str, total: dict, rows: list[dict]) -> None:
    """`ecotrain runs --job ID`: the job as one line, its ranks beneath."""
    console.print(
        f"job {job}: {total['runs']} runs · {fmt_energy(total['energy_kwh'])} · "
        f"{fmt_co2(total['co2_kg'])} CO2e · {fmt_usd(total['cost_usd'])} · "
        f"{fmt_num(total['gpu_hours'])} GPU-h",
        markup=False,
    )
    kwh = column_unit([r.get("facility_energy_kwh") for r in rows], "energy")
    kg = column_unit([r.get("co2_kg") for r in rows], "co2")
    table(
        ["rank", "node", "run", "status", "GPUs measured", "energy", "CO2e"],
        [
            (
                r.get("rank"),
                r.get("node"),
                r["run_id"][:12],
                r["status"],
                r.get("gpu_count") or 0,
                fmt_energy(r.get("facility_energy_kwh"), kwh),
                fmt_co2(r.get("co2_kg"), kg),
            )
            for r in rows
        ],
    )
