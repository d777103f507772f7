"""Efficiency per unit of work: Wh and g CO2e per 1M tokens and per 1k samples.

A run reports its units of work with ``run.progress(step, total, tokens=..., samples=...)``
(cumulative counts; the Hugging Face callback fills them where the Trainer knows them), kept
in the run's ``progress`` column. The figures divide the run's whole **facility** energy and
its CO2e (the annual, location-based figure, and the time-resolved one where recorded) by
the last count reported, so they compare across runs and papers like the totals do.
Nothing is derived for a run that reported no units: unknown, not zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# unit -> (per how many, label)
UNITS = {"tokens": (1e6, "1M tokens"), "samples": (1e3, "1k samples")}


def unit_tag(unit: str) -> str:
    """The suffix of a unit's keys: ``1m_tokens`` or ``1k_samples``."""
    return "1m_tokens" if unit == "tokens" else "1k_samples"


def text(wh: float | None, g_co2e: float | None) -> str:
    """'X Wh, Y g CO2e': how every command shows a per-unit pair."""
    from ecotrain.units import fmt_co2, fmt_energy

    return f"{fmt_energy(_per_k(wh))}, {fmt_co2(_per_k(g_co2e))} CO2e"


def _per_k(value: float | None) -> float | None:
    """Wh -> kWh and g -> kg: the units ecotrain.units scales from."""
    return None if value is None else value / 1000


def _work(run: Mapping[str, Any]) -> dict[str, float]:
    progress = run.get("progress")
    if isinstance(progress, str):  # a JSON column read as text
        import json

        try:
            progress = json.loads(progress)
        except ValueError:
            progress = None
    if not isinstance(progress, Mapping):
        return {}
    out = {}
    for unit in UNITS:
        value = progress.get(unit)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            out[unit] = float(value)
    return out


def per_unit(run: Mapping[str, Any]) -> dict[str, Any]:
    """Per-unit-of-work figures of one run (a runs-table row); {} when it reported none.

    Keys per unit (``tokens``, ``samples``): the count, ``wh_per_1m_tokens``,
    ``g_co2e_per_1m_tokens`` and, with a time-resolved CO2e, ``g_co2e_series_per_1m_tokens``
    (``..._1k_samples`` alike).
    """
    work = _work(run)
    if not work:
        return {}
    kwh, co2, series = run.get("facility_energy_kwh"), run.get("co2_kg"), run.get("co2_series_kg")
    out: dict[str, Any] = {"energy_basis": "facility energy (IT x PUE), whole run"}
    for unit, count in work.items():
        per, _ = UNITS[unit]
        tag = unit_tag(unit)
        out[unit] = count
        out[f"wh_per_{tag}"] = kwh * 1000 * per / count if kwh is not None else None
        out[f"g_co2e_per_{tag}"] = co2 * 1000 * per / count if co2 is not None else None
        if series is not None:
            out[f"g_co2e_series_per_{tag}"] = series * 1000 * per / count
    return out


def pooled(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-unit figures over several runs: energy and CO2e of the runs that reported a unit,
    over the units they reported (a ratio of sums, not a mean of ratios), and how many runs
    that was."""
    sums: dict[str, list[float]] = {u: [0.0, 0.0, 0.0, 0.0] for u in UNITS}
    for run in runs:
        for unit, count in _work(run).items():
            if run.get("facility_energy_kwh") is None:
                continue
            s = sums[unit]
            s[0] += count
            s[1] += run["facility_energy_kwh"]
            s[2] += run.get("co2_kg") or 0.0
            s[3] += 1
    out: dict[str, Any] = {}
    for unit, (count, kwh, co2, n) in sums.items():
        if not n:
            continue
        per, _ = UNITS[unit]
        tag = unit_tag(unit)
        out[unit] = {
            "runs": int(n),
            "count": count,
            f"wh_per_{tag}": kwh * 1000 * per / count,
            f"g_co2e_per_{tag}": co2 * 1000 * per / count,
        }
    return out


def sentence(pooled_figures: Mapping[str, Any], n_runs: int) -> str:
    """One sentence for a report's method section ('' when no run reported work)."""
    from ecotrain.units import fmt_co2, fmt_energy

    parts = []
    for unit, figures in pooled_figures.items():
        _, label = UNITS[unit]
        tag = unit_tag(unit)
        parts.append(
            f"{fmt_energy(_per_k(figures[f'wh_per_{tag}']))} and "
            f"{fmt_co2(_per_k(figures[f'g_co2e_per_{tag}']))} CO2e per {label} "
            f"({figures['runs']} of {n_runs} runs reported {unit})"
        )
    if not parts:
        return ""
    return "Per unit of work (facility energy and CO2e over the units reported): " + (
        "; ".join(parts) + "."
    )


def runs_with_work(engine: Any, flt: Any, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The runs matching ``flt`` that reported tokens or samples (filtered in SQL), with
    the ``extra`` runs columns too (e.g. what `ecotrain summary` groups by)."""
    from sqlalchemy import String, cast, or_, select

    from ecotrain.store.schema import runs

    text = cast(runs.c.progress, String)
    stmt = select(
        runs.c.run_id,
        runs.c.progress,
        runs.c.facility_energy_kwh,
        runs.c.co2_kg,
        runs.c.co2_series_kg,
        *[runs.c[c] for c in extra if c not in ("run_id", "progress")],
    ).where(flt.where(), or_(text.contains('"tokens"'), text.contains('"samples"')))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def time_resolved_summary(engine: Any, flt: Any) -> dict[str, Any]:
    """Runs matching ``flt`` with a time-resolved CO2e: how many, its sum, and the annual
    figure of the same runs."""
    from sqlalchemy import func, select

    from ecotrain.store.schema import runs

    with engine.connect() as conn:
        n, series, annual = conn.execute(
            select(
                func.count(runs.c.co2_series_kg),
                func.coalesce(func.sum(runs.c.co2_series_kg), 0.0),
                func.coalesce(func.sum(runs.c.co2_kg), 0.0),
            ).where(flt.where(), runs.c.co2_series_kg.isnot(None))
        ).one()
    return {"runs": int(n or 0), "co2_series_kg": float(series), "co2_annual_kg": float(annual)}


def report_sentences(engine: Any, flt: Any, n_runs: int) -> str:
    """What a report's method adds for this feature: the time-resolved CO2e beside the
    annual one and efficiency per unit of work ('' if neither). Embodied emissions are the
    report's own sentence (ecotrain.reports.model, from ecotrain.embodied)."""
    from ecotrain.config import load_settings
    from ecotrain.units import fmt_co2

    settings = load_settings()
    basis = settings.get("co2_basis", "annual")
    if basis not in ("annual", "time-resolved"):
        from ecotrain.errors import UserError

        raise UserError(f"co2_basis must be annual or time-resolved, got {basis!r}")
    out = []
    tr = time_resolved_summary(engine, flt)
    if tr["runs"]:
        headline = (
            "the totals above use the annual figure for comparability"
            if basis == "annual"
            else "co2_basis = time-resolved is configured: quote this figure for these runs"
        )
        out.append(
            f"Time-resolved CO2e (imported hourly grid intensity weighted by each run's power "
            f"timeline): {tr['runs']} of {n_runs} runs covered, {fmt_co2(tr['co2_series_kg'])} "
            f"against {fmt_co2(tr['co2_annual_kg'])} on the annual figure for the same runs; "
            f"{headline}."
        )
    work = sentence(pooled(runs_with_work(engine, flt)), n_runs)
    if work:
        out.append(work)
    return " ".join(out)


def show_lines(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Extra `ecotrain show` lines: the time-resolved CO2e and the per-unit figures."""
    from ecotrain.units import fmt_co2

    lines = []
    if run.get("co2_series_kg") is not None:
        lines.append(
            ("CO2e time-resolved", f"{fmt_co2(run['co2_series_kg'])} ({run['co2_series_method']})")
        )
    figures = per_unit(run)
    for unit, (_, label) in UNITS.items():
        if unit in figures:
            t = unit_tag(unit)
            pair = text(figures[f"wh_per_{t}"], figures[f"g_co2e_per_{t}"])
            lines.append((f"per {label}", f"{pair} ({figures[unit]:,.0f} {unit})"))
    return lines
