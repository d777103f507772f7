"""HTML: one self-contained page (no network, no CDN) with the tables and an inline SVG
chart of facility energy per run or group (the energy the table shows), split by GPU, CPU
and RAM. Every user string is escaped."""

from __future__ import annotations

from html import escape

from ecotrain.reports.model import Report, clean, status_text
from ecotrain.units import column_unit, fmt_energy, fmt_in, fmt_number, fmt_usd

COLOURS = {"gpu": "#2b6cb0", "cpu": "#dd6b20", "ram": "#38a169"}
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:60rem;
color:#1a202c;line-height:1.5}table{border-collapse:collapse;margin:1rem 0;width:100%}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e2e8f0;text-align:right}
th:first-child,td:first-child,.t{text-align:left}caption{caption-side:bottom;color:#4a5568}
.note{color:#4a5568;font-size:.9rem}
"""


def _e(value: object) -> str:
    return escape(clean(value))


def chart(report: Report, width: int = 720, height: int = 260) -> str:
    """Stacked bars of facility energy per table line (GPU/CPU/RAM shares), with axes."""
    lines = report.lines[:60]
    unit = column_unit([ln.energy_kwh for ln in lines], "energy")
    top = max((ln.energy_kwh for ln in lines), default=0.0) or 1.0
    left, bottom, plot_h = 70, 48, height - 70
    step = (width - left - 10) / max(1, len(lines))
    bar_w = max(2.0, step * 0.8)
    base = height - bottom
    what = "Group" if report.grouped_by else "Run"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f"<title>Facility energy per {what.lower()}, by component ({unit.symbol})</title>",
        f'<line x1="{left}" y1="{base}" x2="{width - 5}" y2="{base}" stroke="#a0aec0"/>',
        f'<line x1="{left}" y1="{base}" x2="{left}" y2="{base - plot_h}" stroke="#a0aec0"/>',
        f'<text x="14" y="{base - plot_h / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {base - plot_h / 2:.0f})">Facility energy ({unit.symbol})'
        "</text>",
        f'<text x="{left + (width - left) / 2:.0f}" y="{height - 22}" font-size="11" '
        f'text-anchor="middle">{what}s, in table order</text>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = base - frac * plot_h
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{fmt_in(top * frac, unit)}</text>"
        )
    for i, ln in enumerate(lines):
        x = left + 2 + i * step
        y = base
        it = ln.gpu_kwh + ln.cpu_kwh + ln.ram_kwh
        scale = ln.energy_kwh / it if it else 0.0  # facility = IT x PUE, shared pro rata
        for comp in ("gpu", "cpu", "ram"):
            value = getattr(ln, f"{comp}_kwh") * scale
            h = value / top * plot_h
            if h <= 0:
                continue
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[comp]}"><title>{_e(ln.label)} {comp.upper()}: '
                f"{fmt_energy(value)}</title></rect>"
            )
    for j, (comp, colour) in enumerate(COLOURS.items()):
        parts.append(
            f'<rect x="{left + j * 70}" y="{height - 14}" width="10" height="10" '
            f'fill="{colour}"/><text x="{left + j * 70 + 14}" y="{height - 5}" '
            f'font-size="11">{comp.upper()}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _when(iso: str | None) -> str:
    return str(iso or "unknown").replace("T", " ")[:16]


def _selection(report: Report) -> str:
    return ", ".join(f"{k}={v}" for k, v in report.selection.items()) or "all runs"


def render(report: Report) -> str:
    """The report as a self-contained HTML page."""
    t = report.totals
    head = "Group" if report.grouped_by else "Run"
    if report.grouped_by:
        head = "Tag" if report.grouped_by.startswith("tag:") else report.grouped_by.capitalize()
    e_unit = column_unit([ln.energy_kwh for ln in report.lines] + [t["energy_kwh"]], "energy")
    c_unit = column_unit([ln.co2_kg for ln in report.lines] + [t["co2_kg"]], "co2")
    rows = "".join(
        f'<tr><td>{_e(ln.label)}</td><td>{ln.runs:,}</td><td class="t">{_e(ln.status)}</td>'
        f'<td class="t">{_e(ln.gpu)}</td><td>{fmt_number(ln.gpu_hours)}</td>'
        f"<td>{fmt_in(ln.energy_kwh, e_unit)}</td><td>{fmt_in(ln.co2_kg, c_unit)}</td>"
        f"<td>{fmt_usd(ln.cost_usd)}</td></tr>"
        for ln in report.lines
    )
    k_unit = column_unit([c["kwh"] for c in report.components], "energy")
    comps = "".join(
        f"<tr><td>{c['component'].upper()}</td><td>{fmt_in(c['kwh'], k_unit)}</td>"
        '<td class="t">'
        + _e(", ".join(f"{m} ({n:,})" for m, n in c["methods"].items()))
        + "</td></tr>"
        for c in report.components
    )
    status = status_text(report.statuses)
    reuse = ""
    if report.reuse:
        ae = column_unit([r.energy_kwh for r in report.reuse], "energy")
        ac = column_unit([r.co2_kg for r in report.reuse], "co2")
        body = "".join(
            f'<tr><td>{_e(r.name)}</td><td class="t">{_e(r.footprint_source)}</td>'
            f"<td>{r.reused_by:,}</td><td>{fmt_in(r.energy_kwh, ae)}</td>"
            f"<td>{fmt_in(r.co2_kg, ac)}</td><td>{fmt_usd(r.cost_usd)}</td></tr>"
            for r in report.reuse
        )
        o = report.reuse_others
        if o:
            body += (
                f"<tr><td>{o['checkpoints']:,} others</td><td></td><td>{o['reused_by']:,}</td>"
                f"<td>{fmt_in(o['energy_kwh'], ae)}</td><td>{fmt_in(o['co2_kg'], ac)}</td>"
                f"<td>{fmt_usd(o['cost_usd'])}</td></tr>"
            )
        reuse = (
            f"<h2>Avoided by reusing checkpoints</h2><table><caption>Counterfactual mode "
            f"{_e(report.mode)}; reported beside emissions, never subtracted. Largest first."
            "</caption><tr><th>Checkpoint</th><th>Footprint from</th><th>Reused by</th>"
            f"<th>Energy ({ae.symbol})</th><th>CO2e ({ac.symbol})</th><th>Cost</th></tr>"
            f"{body}</table>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>ecotrain report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Compute, energy and emissions</h1>"
        f'<p class="note">Selection: {_e(_selection(report))}</p>'
        f"<p>{report.n_runs:,} run(s), {_e(_when(report.first_start))} to "
        f"{_e(_when(report.last_end) if report.last_end else 'still running')} UTC: "
        f"<strong>{fmt_energy(t['energy_kwh'])}</strong> facility energy, "
        f"<strong>{fmt_in(t['co2_kg'], c_unit)} {c_unit.symbol} CO2e</strong>, "
        f"<strong>{fmt_usd(t['cost_usd'])}</strong>, {fmt_number(t['gpu_hours'])} GPU-hours."
        f"</p>{chart(report)}"
        f"<table><tr><th>{head}</th><th>Runs</th><th class='t'>Status</th>"
        "<th class='t'>GPUs</th><th>GPU-hours</th>"
        f"<th>Energy, facility ({e_unit.symbol})</th><th>CO2e ({c_unit.symbol})</th>"
        f"<th>Cost</th></tr>{rows}<tr><th>Total</th><th>{report.n_runs:,}</th>"
        f"<th>{_e(status)}</th><th></th><th>{fmt_number(t['gpu_hours'])}</th>"
        f"<th>{fmt_in(t['energy_kwh'], e_unit)}</th><th>{fmt_in(t['co2_kg'], c_unit)}</th>"
        f"<th>{fmt_usd(t['cost_usd'])}</th></tr></table>"
        f"<h2>Energy by component</h2><table><tr><th>Component</th><th>IT energy "
        f"({k_unit.symbol})</th><th>How it was obtained</th></tr>{comps}</table>"
        f"{reuse}<h2>Methodology</h2><p>{_e(report.methodology)}</p>"
        f'<p class="note">Generated by ecotrain {_e(report.ecotrain_version)} at '
        f"{_e(report.generated_at)} UTC.</p></body></html>\n"
    )
