"""Markdown: a summary table and the methodology paragraph, for a README or an appendix."""

from __future__ import annotations

from ecotrain.reports.model import Report
from ecotrain.units import fmt_co2, fmt_energy, fmt_usd


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(report: Report) -> str:
    """The report as Markdown."""
    t = report.totals
    head = "Group" if report.grouped_by else "Run"
    out = [
        "## Compute, energy and emissions",
        "",
        "Selection: "
        + _cell(", ".join(f"{k}={v}" for k, v in report.selection.items()) or "all runs"),
        "",
        f"| {head} | Runs | GPU | GPU-hours | Energy (facility) | CO2e | Cost |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for line in report.lines:
        out.append(
            f"| {_cell(line.label)} | {line.runs} | {_cell(line.gpu or '-')} | "
            f"{line.gpu_hours:.2f} | {fmt_energy(line.energy_kwh)} | {fmt_co2(line.co2_kg)} | "
            f"{fmt_usd(line.cost_usd)} |"
        )
    out.append(
        f"| **Total** | **{report.n_runs}** | | **{t['gpu_hours']:.2f}** | "
        f"**{fmt_energy(t['energy_kwh'])}** | **{fmt_co2(t['co2_kg'])}** | "
        f"**{fmt_usd(t['cost_usd'])}** |"
    )
    out += ["", "| Component | IT energy | How it was obtained |", "|---|---:|---|"]
    for c in report.components:
        methods = ", ".join(f"{m} ({n})" for m, n in c["methods"].items())
        out.append(f"| {c['component'].upper()} | {fmt_energy(c['kwh'])} | {_cell(methods)} |")
    if report.reuse:
        out += [
            "",
            f"### Avoided by reusing checkpoints (mode `{report.mode}`, not subtracted)",
            "",
            "| Checkpoint | Footprint from | Reused by | Energy | CO2e | Cost |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in report.reuse:
            out.append(
                f"| {_cell(r.name)} | {_cell(r.footprint_source)} | {r.reused_by} | "
                f"{fmt_energy(r.energy_kwh)} | {fmt_co2(r.co2_kg)} | {fmt_usd(r.cost_usd)} |"
            )
    out += ["", "### Methodology", "", report.methodology, ""]
    return "\n".join(out)
