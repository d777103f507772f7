"""Runs side by side (`ecotrain compare A B`): energy by component, power profile, cost,
the time-resolved CO2e beside the annual one, and efficiency per unit of work.

:func:`compare_runs` returns a plain dict so other figures can be added as more ``METRICS``
or more keys per run without touching the printing.
"""

from __future__ import annotations

from typing import Any

PROFILE_POINTS = 24  # the power profile: mean IT power over this many equal time slices

# metric -> (runs column or derived key, label for people)
METRICS: dict[str, str] = {
    "duration_s": "duration",
    "gpu_energy_kwh": "GPU energy",
    "cpu_energy_kwh": "CPU energy",
    "ram_energy_kwh": "RAM energy",
    "it_energy_kwh": "IT energy",
    "facility_energy_kwh": "facility energy",
    "co2_kg": "CO2e",
    "cost_usd": "cost",
    "gpu_hours": "GPU-hours",
    "mean_power_w": "mean IT power",
    "peak_power_w": "peak IT power",
}

# Shown (and diffed) only when at least one of the runs has them: the time-resolved CO2e
# (an imported grid series covered the run; shown right after the annual CO2e) and the
# per-unit-of-work figures (runs that reported tokens/samples; keys of efficiency.per_unit).
OPTIONAL_METRICS: dict[str, str] = {
    "co2_series_kg": "CO2e time-resolved",
    "tokens": "tokens reported",
    "wh_per_1m_tokens": "Wh per 1M tokens",
    "g_co2e_per_1m_tokens": "g CO2e per 1M tokens",
    "g_co2e_series_per_1m_tokens": "g CO2e per 1M tokens, time-resolved",
    "samples": "samples reported",
    "wh_per_1k_samples": "Wh per 1k samples",
    "g_co2e_per_1k_samples": "g CO2e per 1k samples",
    "g_co2e_series_per_1k_samples": "g CO2e per 1k samples, time-resolved",
}


def power_profile(
    samples: list[dict[str, Any]], points: int = PROFILE_POINTS
) -> list[float | None]:
    """Mean total (GPU+CPU+RAM) power in ``points`` equal slices of the run's time; None for a
    slice with no sample (a run shorter than its sampling)."""
    if not samples:
        return []
    end = max(s["t_s"] for s in samples) or 1.0
    sums = [0.0] * points
    counts = [0] * points
    for s in samples:
        i = min(points - 1, int(s["t_s"] / end * points))
        sums[i] += (s.get("gpu_w") or 0.0) + (s.get("cpu_w") or 0.0) + (s.get("ram_w") or 0.0)
        counts[i] += 1
    return [sums[i] / counts[i] if counts[i] else None for i in range(points)]


def run_figures(run: dict[str, Any], samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's side of the comparison: identity, the METRICS, and its power profile."""
    out: dict[str, Any] = {
        key: run.get(key)
        for key in ("run_id", "project", "status", "started_at", "gpu_model", "gpu_count",
                    "region", "pue", "intensity_g_per_kwh", "cost_method", "command", "tags")
    }  # fmt: skip
    for component in ("gpu", "cpu", "ram"):
        joules = run.get(f"{component}_energy_j")
        out[f"{component}_energy_kwh"] = None if joules is None else joules / 3.6e6
        out[f"{component}_method"] = run.get(f"{component}_method")
    for key in ("duration_s", "it_energy_kwh", "facility_energy_kwh", "co2_kg", "cost_usd",
                "gpu_hours"):  # fmt: skip
        out[key] = run.get(key)
    if out["gpu_hours"] is None and not run.get("gpu_model"):
        out["gpu_hours"] = 0.0  # no GPU at all: 0 GPU-hours, as summary and the dashboard sum it
    duration, it_kwh = run.get("duration_s"), run.get("it_energy_kwh")
    out["mean_power_w"] = it_kwh * 3.6e6 / duration if duration and it_kwh is not None else None
    totals = [
        (s.get("gpu_w") or 0) + (s.get("cpu_w") or 0) + (s.get("ram_w") or 0) for s in samples
    ]
    # A peak well below the mean means the samples missed the work (a run shorter than a
    # few sampling intervals, a timeline cut short): unknown, not a figure that contradicts
    # the energy. 10 % of slack: an energy counter and sampled power differ a little.
    peak = max(totals) if totals else None
    mean = out["mean_power_w"]
    missed = peak is not None and mean is not None and peak < 0.9 * mean
    out["peak_power_w"] = None if missed else peak
    out["profile_w"] = power_profile(samples)
    from ecotrain.efficiency import per_unit

    for key in ("co2_series_kg", "intensity_series_g_per_kwh", "co2_series_method"):
        out[key] = run.get(key)
    work = per_unit(run)
    for key in OPTIONAL_METRICS:
        if key != "co2_series_kg":
            out[key] = work.get(key)
    out["energy_basis"] = work.get("energy_basis")
    return out


def metrics_for(runs: list[dict[str, Any]]) -> dict[str, str]:
    """METRICS plus the optional ones some run has (the time-resolved CO2e after the annual
    one, the per-unit figures last)."""
    out: dict[str, str] = {}
    for key, label in METRICS.items():
        out[key] = label
        if key == "co2_kg" and any(r.get("co2_series_kg") is not None for r in runs):
            out["co2_series_kg"] = OPTIONAL_METRICS["co2_series_kg"]
    for key, label in OPTIONAL_METRICS.items():
        if key != "co2_series_kg" and any(r.get(key) is not None for r in runs):
            out[key] = label
    return out


def compare_runs(engine: Any, run_ids: list[str]) -> dict[str, Any]:
    """``{"runs": [figures...], "diff": {metric: {"delta", "ratio"}}, "metrics": {...}}``:
    METRICS, plus the time-resolved CO2e and per-unit figures when some run has them.

    ``diff`` compares each later run with the first: ``delta`` = later - first, ``ratio`` =
    later / first (None when either is unknown or the first is 0). Raises
    :class:`ecotrain.store.queries.RunNotFound` for an unknown or ambiguous id.
    """
    from ecotrain.store.queries import get_run, run_samples

    runs = []
    for rid in run_ids:
        row = get_run(engine, rid)
        runs.append(run_figures(row, run_samples(engine, row["run_id"])))
    base = runs[0]
    metrics = metrics_for(runs)
    diff: dict[str, list[dict[str, float | None]]] = {}
    for metric in metrics:
        diff[metric] = []
        for other in runs[1:]:
            a, b = base.get(metric), other.get(metric)
            known = a is not None and b is not None
            diff[metric].append(
                {"delta": b - a if known else None, "ratio": b / a if known and a else None}
            )
    return {"runs": runs, "diff": diff, "metrics": metrics}
