"""Markdown: a summary table and the methodology paragraph, for a README or an appendix.

User data (project, tag, checkpoint names, sources) is rendered as text: on one line, with
every character Markdown or HTML would act on escaped, so a name cannot add a heading, a
link or an image (which a viewer's browser would fetch)."""

from __future__ import annotations

import re

from ecotrain.reports.model import Report, clean, status_text
from ecotrain.units import column_unit, fmt_in, fmt_number, fmt_usd

# CommonMark: any ASCII punctuation may be backslash-escaped; these are the ones that act here
# (a "(" or "!" only acts next to a "[", which is escaped).
_ACTIVE = re.compile(r"([\\`*_{}\[\]<>#|~])")


def text(value: object) -> str:
    """User text for a Markdown line or table cell: one line, inert."""
    return _ACTIVE.sub(r"\\\1", clean(value))


_cell = text


def render(report: Report) -> str:
    """The report as Markdown."""
    t = report.totals
    head = "Group" if report.grouped_by else "Run"
    if report.grouped_by:
        head = "Tag" if report.grouped_by.startswith("tag:") else report.grouped_by.capitalize()
    e_unit = column_unit([ln.energy_kwh for ln in report.lines] + [t["energy_kwh"]], "energy")
    c_unit = column_unit([ln.co2_kg for ln in report.lines] + [t["co2_kg"]], "co2")
    selection = ", ".join(f"{k}={v}" for k, v in report.selection.items()) or "all runs"
    out = [
        "## Compute, energy and emissions",
        "",
        f"Selection: {text(selection)}",
        "",
        f"| {head} | Runs | Status | GPUs | GPU-hours | Energy, facility ({e_unit.symbol}) | "
        f"CO2e ({c_unit.symbol}) | Cost |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for line in report.lines:
        out.append(
            f"| {text(line.label)} | {line.runs:,} | {text(line.status)} | {text(line.gpu)} | "
            f"{fmt_number(line.gpu_hours)} | {fmt_in(line.energy_kwh, e_unit)} | "
            f"{fmt_in(line.co2_kg, c_unit)} | {text(fmt_usd(line.cost_usd))} |"
        )
    status = status_text(report.statuses)
    out.append(
        f"| **Total** | **{report.n_runs:,}** | {text(status)} | | "
        f"**{fmt_number(t['gpu_hours'])}** | **{fmt_in(t['energy_kwh'], e_unit)}** | "
        f"**{fmt_in(t['co2_kg'], c_unit)}** | **{text(fmt_usd(t['cost_usd']))}** |"
    )
    k_unit = column_unit([c["kwh"] for c in report.components], "energy")
    out += [
        "",
        f"| Component | IT energy ({k_unit.symbol}) | How it was obtained |",
        "|---|---:|---|",
    ]
    for c in report.components:
        methods = ", ".join(f"{m} ({n:,})" for m, n in c["methods"].items())
        out.append(f"| {c['component'].upper()} | {fmt_in(c['kwh'], k_unit)} | {text(methods)} |")
    if report.reuse:
        ae = column_unit([r.energy_kwh for r in report.reuse], "energy")
        ac = column_unit([r.co2_kg for r in report.reuse], "co2")
        out += [
            "",
            f"### Avoided by reusing checkpoints (mode `{report.mode}`, not subtracted)",
            "",
            f"| Checkpoint | Footprint from | Reused by | Energy ({ae.symbol}) | "
            f"CO2e ({ac.symbol}) | Cost |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in report.reuse:
            out.append(
                f"| {text(r.name)} | {text(r.footprint_source)} | {r.reused_by:,} | "
                f"{fmt_in(r.energy_kwh, ae)} | {fmt_in(r.co2_kg, ac)} | "
                f"{text(fmt_usd(r.cost_usd))} |"
            )
        o = report.reuse_others
        if o:
            out.append(
                f"| {o['checkpoints']:,} others | | {o['reused_by']:,} | "
                f"{fmt_in(o['energy_kwh'], ae)} | {fmt_in(o['co2_kg'], ac)} | "
                f"{text(fmt_usd(o['cost_usd']))} |"
            )
    out += ["", "### Methodology", "", text(report.methodology), ""]
    return "\n".join(out)
