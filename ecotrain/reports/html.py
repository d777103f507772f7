"""HTML: one self-contained page (no network, no CDN) with the tables and an inline SVG
chart of IT energy per run or group, split by GPU, CPU and RAM. Every user string is escaped."""

from __future__ import annotations

from html import escape

from ecotrain.reports.model import Report
from ecotrain.units import fmt_co2, fmt_energy, fmt_usd

COLOURS = {"gpu": "#2b6cb0", "cpu": "#dd6b20", "ram": "#38a169"}
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:60rem;
color:#1a202c;line-height:1.5}table{border-collapse:collapse;margin:1rem 0;width:100%}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e2e8f0;text-align:right}
th:first-child,td:first-child{text-align:left}caption{caption-side:bottom;color:#4a5568}
.note{color:#4a5568;font-size:.9rem}
"""


def chart(report: Report, width: int = 720, height: int = 240) -> str:
    """Stacked bars of IT energy (kWh) per table line, GPU/CPU/RAM."""
    lines = report.lines[:60]
    top = max((ln.gpu_kwh + ln.cpu_kwh + ln.ram_kwh for ln in lines), default=0.0) or 1.0
    left, bottom, plot_h = 60, 30, height - 50
    bar_w = max(2.0, (width - left - 10) / max(1, len(lines)) * 0.8)
    step = (width - left - 10) / max(1, len(lines))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        "<title>IT energy per run, by component (kWh)</title>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" '
        'stroke="#a0aec0"/>',
        f'<text x="5" y="15" font-size="11">{top:.3g} kWh</text>',
        f'<text x="5" y="{height - bottom}" font-size="11">0</text>',
    ]
    for i, ln in enumerate(lines):
        x = left + i * step
        y = height - bottom
        for comp in ("gpu", "cpu", "ram"):
            value = getattr(ln, f"{comp}_kwh")
            h = value / top * plot_h
            if h <= 0:
                continue
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[comp]}"><title>{escape(ln.label)} {comp.upper()}: '
                f"{value:.4g} kWh</title></rect>"
            )
    for j, (comp, colour) in enumerate(COLOURS.items()):
        parts.append(
            f'<rect x="{left + j * 70}" y="{height - 15}" width="10" height="10" '
            f'fill="{colour}"/><text x="{left + j * 70 + 14}" y="{height - 6}" '
            f'font-size="11">{comp.upper()}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _selection(report: Report) -> str:
    return ", ".join(f"{k}={v}" for k, v in report.selection.items()) or "all runs"


def render(report: Report) -> str:
    """The report as a self-contained HTML page."""
    t = report.totals
    head = "Group" if report.grouped_by else "Run"
    rows = "".join(
        f"<tr><td>{escape(ln.label)}</td><td>{ln.runs}</td><td>{escape(ln.gpu or '-')}</td>"
        f"<td>{ln.gpu_hours:.2f}</td><td>{fmt_energy(ln.energy_kwh)}</td>"
        f"<td>{fmt_co2(ln.co2_kg)}</td><td>{fmt_usd(ln.cost_usd)}</td></tr>"
        for ln in report.lines
    )
    comps = "".join(
        f"<tr><td>{c['component'].upper()}</td><td>{fmt_energy(c['kwh'])}</td><td>"
        + escape(", ".join(f"{m} ({n})" for m, n in c["methods"].items()))
        + "</td></tr>"
        for c in report.components
    )
    reuse = ""
    if report.reuse:
        reuse = (
            f"<h2>Avoided by reusing checkpoints</h2><table><caption>Counterfactual mode "
            f"{escape(report.mode)}; reported beside emissions, never subtracted.</caption>"
            "<tr><th>Checkpoint</th><th>Footprint from</th><th>Reused by</th><th>Energy</th>"
            "<th>CO2e</th><th>Cost</th></tr>"
            + "".join(
                f"<tr><td>{escape(r.name)}</td><td>{escape(r.footprint_source)}</td>"
                f"<td>{r.reused_by}</td><td>{fmt_energy(r.energy_kwh)}</td>"
                f"<td>{fmt_co2(r.co2_kg)}</td><td>{fmt_usd(r.cost_usd)}</td></tr>"
                for r in report.reuse
            )
            + "</table>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>ecotrain report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Compute, energy and emissions</h1>"
        f'<p class="note">Selection: {escape(_selection(report))}</p>'
        f"<p>{report.n_runs} run(s), {escape(str(report.first_start))} to "
        f"{escape(str(report.last_end))}: <strong>{fmt_energy(t['energy_kwh'])}</strong> "
        f"facility energy, <strong>{fmt_co2(t['co2_kg'])} CO2e</strong>, "
        f"<strong>{fmt_usd(t['cost_usd'])}</strong>, {t['gpu_hours']:.2f} GPU-hours.</p>"
        f"{chart(report)}"
        f"<table><tr><th>{head}</th><th>Runs</th><th>GPU</th><th>GPU-hours</th>"
        "<th>Energy (facility)</th><th>CO2e</th><th>Cost</th></tr>"
        f"{rows}<tr><th>Total</th><th>{report.n_runs}</th><th></th>"
        f"<th>{t['gpu_hours']:.2f}</th><th>{fmt_energy(t['energy_kwh'])}</th>"
        f"<th>{fmt_co2(t['co2_kg'])}</th><th>{fmt_usd(t['cost_usd'])}</th></tr></table>"
        "<h2>Energy by component</h2><table><tr><th>Component</th><th>IT energy</th>"
        f"<th>How it was obtained</th></tr>{comps}</table>"
        f"{reuse}<h2>Methodology</h2><p>{escape(report.methodology)}</p>"
        f'<p class="note">Generated by ecotrain {escape(report.ecotrain_version)} at '
        f"{escape(report.generated_at)} UTC.</p></body></html>\n"
    )
