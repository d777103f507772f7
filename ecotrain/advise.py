"""Carbon-aware advice: the same job at another time, or at another of the lab's sites.

**When.** A job's energy profile (a recorded run's power timeline, or a planned job's flat
draw) is replayed at every whole-hour start the imported series allows; each start's CO2e is
the sum over the job's hours of (facility energy in that hour x the grid's intensity then).
Starts are grouped by hour of day and by day of week (UTC, or a given time zone); the best
of each is compared with a start at a random hour of the series (the mean over all starts)
and, for a recorded run, with the run as it happened.

**Where.** The same IT energy at every site the lab lists in its config (``[site.NAME]``
tables with ``region``, ``pue``, ``price_per_kwh`` or ``cost_method``/``price_per_gpu_hour``):
CO2e at the site's PUE and the region's intensity (its imported series' mean where there is
one, else the annual figure) and cost at the site's price, through the one accounting
function (:func:`ecotrain.accounting.account`).

Every figure says which data it rests on. Shifting assumes the job is flexible: it could
start at any hour and would run the same; past intensities stand in for future ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecotrain.errors import UserError
from ecotrain.grid_series import PowerCurve, Series

HOUR = 3600.0
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FLEXIBILITY = (
    "Shifting assumes the job is flexible: it could start at any hour and would run the same "
    "(same energy profile, no queue or deadline); past intensities stand in for future ones."
)


class AdviceError(UserError, ValueError):
    """Advice cannot be given (no energy, no series, bad option); one line."""


@dataclass
class Profile:
    """A job's facility energy per hour from its start, and what it rests on."""

    hourly_kwh: list[float]
    it_kwh: float
    facility_kwh: float
    gpu_hours: float
    gpu_model: str | None
    region: str | None
    basis: str  # "recorded run abc123 (power timeline, 812 points)" / "planned: 8 x A100 ..."
    started_at: datetime | None = None  # a recorded run's real start (UTC)
    actual_co2_kg: float | None = None  # its time-resolved figure, when it has one
    annual_co2_kg: float | None = None


def _bucket_energy(curve: PowerCurve) -> list[float]:
    """Energy (the curve's units) in each whole hour from the run's start."""
    hours = max(1, math.ceil(curve.duration / HOUR - 1e-9))
    marks = [curve.energy_at(min(k * HOUR, curve.duration)) for k in range(hours + 1)]
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def profile_from_run(run: Mapping[str, Any], timeline: Sequence[tuple[float, float]]) -> Profile:
    """A recorded run's profile: its power timeline's shape, scaled to its facility energy."""
    kwh = run.get("facility_energy_kwh")
    if not kwh:
        raise AdviceError(f"run {str(run.get('run_id'))[:12]} has no recorded energy to shift")
    buckets = _bucket_energy(PowerCurve(timeline, run.get("duration_s") or 0.0))
    total = sum(buckets)
    if total <= 0:
        buckets, total = [1.0], 1.0
    shape = f"power timeline, {len(timeline)} points" if timeline else "no timeline: flat"
    return Profile(
        hourly_kwh=[kwh * b / total for b in buckets],
        it_kwh=run.get("it_energy_kwh") or kwh,
        facility_kwh=kwh,
        gpu_hours=run.get("gpu_hours") or 0.0,
        gpu_model=run.get("gpu_model"),
        region=run.get("region"),
        basis=f"recorded run {str(run['run_id'])[:12]} ({shape})",
        started_at=run.get("started_at"),
        actual_co2_kg=run.get("co2_series_kg"),
        annual_co2_kg=run.get("co2_kg"),
    )


def profile_planned(gpu: str, hours: float, gpus: int, site: Any) -> Profile:
    """A planned job: ``gpus`` x ``gpu`` for ``hours`` at the calculator's power (flat)."""
    from ecotrain.estimate import estimate

    if not hours or hours <= 0 or not math.isfinite(hours):
        raise AdviceError(f"--hours must be > 0, got {hours}")
    est = estimate(gpu, site, gpus=gpus, hours=hours)
    acc = est.accounting
    full, part = int(hours), hours - int(hours)
    per_hour = acc.facility_energy_kwh / hours
    hourly = [per_hour] * full + ([per_hour * part] if part > 1e-9 else [])
    return Profile(
        hourly_kwh=hourly,
        it_kwh=acc.it_energy_kwh,
        facility_kwh=acc.facility_energy_kwh,
        gpu_hours=est.gpu_hours,
        gpu_model=est.gpu.key,
        region=site.intensity.region,
        basis=f"planned: {est.basis}, {est.power_fraction:.0%} of board power, PUE {site.pue:g}",
        annual_co2_kg=acc.co2_kg,
    )


def hourly_values(series: Series) -> dict[int, float]:
    """The series as whole UTC hours (Unix hour number -> mean g/kWh of what covers it)."""
    sums: dict[int, list[float]] = {}
    for a, e, v in zip(series.starts, series.ends, series.values, strict=True):
        x = a
        while x < e:
            h = int(x // HOUR)
            y = min(e, (h + 1) * HOUR)
            acc = sums.setdefault(h, [0.0, 0.0])
            acc[0] += v * (y - x)
            acc[1] += y - x
            x = y
    # an hour counts only when fully covered: a half-known hour would bias its average
    return {h: s / t for h, (s, t) in sums.items() if t >= HOUR - 1e-6}


@dataclass
class Slot:
    """One group of start times (an hour of day, a day of week) and its mean CO2e."""

    label: str
    co2_kg: float
    starts: int
    change_pct: float  # vs the reference (a start at a random hour)


@dataclass
class When:
    """Advice on when: CO2e of the job by start hour of day and day of week."""

    series: str
    signal: str
    licence: str | None
    first: str
    last: str
    days: float
    starts: int
    reference_co2_kg: float  # mean over every possible start
    by_hour: list[Slot]
    by_day: list[Slot]
    best_hour: Slot
    best_day: Slot
    worst_hour: Slot
    best_start: str  # the single best start in the series
    best_start_co2_kg: float
    actual_co2_kg: float | None = None  # the recorded run as it happened (series)
    best_hour_vs_actual_pct: float | None = None


def _pct(value: float, ref: float) -> float:
    return (value - ref) / ref * 100.0 if ref else 0.0


def _zone(tz: str | None):  # noqa: ANN202 - a tzinfo
    if not tz or tz.upper() == "UTC":
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise AdviceError(f"unknown time zone {tz!r}: use an IANA name like Europe/Paris") from None


def when(profile: Profile, series: Series, tz: str | None = None) -> When:
    """Replay ``profile`` at every whole-hour start ``series`` covers; group by hour of day
    and day of week in ``tz`` (an IANA zone; default UTC)."""
    zone = _zone(tz)
    label = "UTC" if zone is UTC else str(tz)
    values = hourly_values(series)
    energy = profile.hourly_kwh
    n = len(energy)
    if not values:
        raise AdviceError(f"the {series.label()} covers no whole hour")
    hours = sorted(values)
    starts: list[tuple[int, float]] = []
    for h in hours:
        total = 0.0
        for k in range(n):
            v = values.get(h + k)
            if v is None:
                break
            total += energy[k] * v
        else:
            starts.append((h, total / 1000.0))
    if not starts:
        span = (hours[-1] - hours[0] + 1) / 24
        raise AdviceError(
            f"the {series.label()} covers {span:.1f} days with no gap long enough for a "
            f"{n}-hour job: import a longer series"
        )
    reference = sum(c for _, c in starts) / len(starts)
    by_hour: dict[int, list[float]] = {}
    by_day: dict[int, list[float]] = {}
    for h, c in starts:
        dt = datetime.fromtimestamp(h * HOUR, zone)
        by_hour.setdefault(dt.hour, []).append(c)
        by_day.setdefault(dt.weekday(), []).append(c)

    def slots(groups: dict[int, list[float]], name) -> list[Slot]:  # noqa: ANN001
        return [
            Slot(name(k), sum(v) / len(v), len(v), _pct(sum(v) / len(v), reference))
            for k, v in sorted(groups.items())
        ]

    hour_slots = slots(by_hour, lambda k: f"{k:02d}:00 {label}")
    day_slots = slots(by_day, lambda k: DAYS[k])
    best_h, best_c = min(starts, key=lambda s: s[1])
    out = When(
        series=series.label(),
        signal=series.signal,
        licence=series.licence,
        first=_iso(hours[0] * HOUR, zone),
        last=_iso((hours[-1] + 1) * HOUR, zone),
        days=(hours[-1] + 1 - hours[0]) / 24,
        starts=len(starts),
        reference_co2_kg=reference,
        by_hour=hour_slots,
        by_day=day_slots,
        best_hour=min(hour_slots, key=lambda s: s.co2_kg),
        best_day=min(day_slots, key=lambda s: s.co2_kg),
        worst_hour=max(hour_slots, key=lambda s: s.co2_kg),
        best_start=_iso(best_h * HOUR, zone),
        best_start_co2_kg=best_c,
    )
    if profile.actual_co2_kg:
        out.actual_co2_kg = profile.actual_co2_kg
        out.best_hour_vs_actual_pct = _pct(out.best_hour.co2_kg, profile.actual_co2_kg)
    return out


def _iso(t: float, zone=UTC) -> str:  # noqa: ANN001
    return datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M %Z")


@dataclass
class Where:
    """The job at one site: CO2e and cost, and what each rests on."""

    site: str
    region: str
    pue: float
    g_per_kwh: float
    intensity_basis: str
    co2_kg: float
    cost_usd: float | None
    price_basis: str
    change_pct: float | None = None  # CO2e vs the job's own site


def sites_from_settings(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The lab's sites from flat settings: ``site.<name>.<key>`` -> {name: {key: value}}."""
    sites: dict[str, dict[str, Any]] = {}
    for key, value in settings.items():
        if key.startswith("site.") and key.count(".") >= 2:
            _, name, field_name = key.split(".", 2)
            sites.setdefault(name, {})[field_name] = value
    return sites


def where(
    profile: Profile,
    sites: Mapping[str, Mapping[str, Any]],
    home: Any | None = None,
    engine: Any = None,
) -> list[Where]:
    """The job's IT energy at each site (``home``: the job's own Site, listed first)."""
    from ecotrain.accounting import Energy, account, site_from_settings

    energy = Energy.from_kwh(profile.it_kwh)
    rows: list[Where] = []
    candidates: list[tuple[str, Any]] = []
    if home is not None:
        candidates.append(("(this job's site)", home))
    for name, settings in sites.items():
        if not settings.get("region"):
            raise AdviceError(f'[site.{name}] needs a region (e.g. region = "SWE")')
        candidates.append((name, site_from_settings(settings)))
    for name, site in candidates:
        g, basis = site.intensity.g_per_kwh, f"annual: {site.intensity.source}"
        if engine is not None:
            mean = _series_mean(engine, site.intensity.region, profile)
            if mean is not None:
                g, basis = mean
        acc = account(energy, site, gpu_hours=profile.gpu_hours, gpu_model=profile.gpu_model)
        co2 = acc.facility_energy_kwh * g / 1000.0
        if acc.cost_usd is not None:
            unit = "GPU-hour" if site.cost_method == "gpu_hour" else "kWh"
            price = f"USD {acc.price:g}/{unit} ({acc.price_source})"
        else:
            price = acc.cost_reason or "no price"
        rows.append(
            Where(name, site.intensity.region, site.pue, g, basis, co2, acc.cost_usd, price)
        )
    if rows:
        base = rows[0].co2_kg
        for r in rows:
            r.change_pct = _pct(r.co2_kg, base) if base else None
    return rows


def _series_mean(engine: Any, region: str, profile: Profile) -> tuple[float, str] | None:
    """A region's series, as the job's mean intensity over every start it allows."""
    from ecotrain.grid_series import load_series

    try:
        series = load_series(engine, region, "average")
        if series is None:
            return None
        w = when(profile, series)
    except AdviceError:
        return None
    g = w.reference_co2_kg * 1000.0 / profile.facility_kwh if profile.facility_kwh else None
    if g is None:
        return None
    return g, f"series: {w.series}, mean over {w.starts} starts {w.first} to {w.last}"


@dataclass
class Advice:
    """Everything `ecotrain advise` says, with its basis."""

    basis: str
    region: str | None
    facility_kwh: float
    annual_co2_kg: float | None
    when: When | None
    when_note: str | None
    where: list[Where] = field(default_factory=list)
    where_note: str | None = None
    flexibility: str = FLEXIBILITY

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return asdict(self)


def advise(
    profile: Profile,
    engine: Any,
    sites: Mapping[str, Mapping[str, Any]],
    home: Any | None = None,
    signal: str = "average",
    tz: str | None = None,
) -> Advice:
    """When and where for ``profile``: over the imported series of its region (``signal``:
    average or marginal) and at the lab's other ``sites``."""
    from ecotrain.grid_series import load_series

    series = load_series(engine, profile.region, signal) if profile.region else None
    when_part, note = None, None
    if series is None:
        note = (
            f"no {signal} intensity series for region {profile.region or '(none)'}: import "
            "one with `ecotrain grid import FILE` to see the best start time"
        )
    else:
        try:
            when_part = when(profile, series, tz)
        except AdviceError as e:
            note = str(e)
    where_note = None
    if not sites:
        where_note = (
            "no other sites in config: list them as [site.NAME] tables with region, pue and "
            "price_per_kwh (or cost_method/price_per_gpu_hour) to compare regions"
        )
    return Advice(
        basis=profile.basis,
        region=profile.region,
        facility_kwh=profile.facility_kwh,
        annual_co2_kg=profile.annual_co2_kg,
        when=when_part,
        when_note=note,
        where=where(profile, sites, home, engine),
        where_note=where_note,
    )


# -- the dashboard's "When & where" page (plain data, tested without Streamlit) ----------------


def emissions_by_hour(engine: Any, flt: Any) -> list[dict[str, Any]]:
    """CO2e and facility energy of the runs matching ``flt`` by UTC hour of day (24 rows):
    each run's annual-basis figures spread evenly over the hours it ran."""
    from sqlalchemy import select

    from ecotrain.store.schema import runs

    co2 = [0.0] * 24
    kwh = [0.0] * 24
    stmt = select(
        runs.c.started_at, runs.c.duration_s, runs.c.co2_kg, runs.c.facility_energy_kwh
    ).where(flt.where(), runs.c.duration_s > 0)
    with engine.connect() as conn:
        for started, duration, c, e in conn.execute(stmt):
            if started is None or not duration:
                continue
            c, e = (c or 0.0) / duration, (e or 0.0) / duration  # per second
            days, rest = divmod(duration, 86400.0)
            if days:  # whole days add the same to every hour
                for h in range(24):
                    co2[h] += c * days * HOUR
                    kwh[h] += e * days * HOUR
            x = started.hour * HOUR + started.minute * 60 + started.second
            end = x + rest
            while x < end:
                h = int(x // HOUR)
                y = min(end, (h + 1) * HOUR)
                co2[h % 24] += c * (y - x)
                kwh[h % 24] += e * (y - x)
                x = y
    return [{"hour": h, "co2_kg": co2[h], "energy_kwh": kwh[h]} for h in range(24)]


def intensity_by_hour(series: Series) -> list[dict[str, Any]]:
    """A series' mean intensity by UTC hour of day (hours it covers)."""
    groups: dict[int, list[float]] = {}
    for h, v in hourly_values(series).items():
        groups.setdefault(h % 24, []).append(v)
    return [{"hour": h, "g_per_kwh": sum(v) / len(v)} for h, v in sorted(groups.items())]


def biggest_projects_advice(
    engine: Any, flt: Any, sites: Mapping[str, Mapping[str, Any]], top: int = 3
) -> list[dict[str, Any]]:
    """For the ``top`` projects by CO2e: their largest run, and the advice on it."""
    from dataclasses import replace

    from sqlalchemy import func, select

    from ecotrain.store.queries import RunFilter, get_run, run_samples
    from ecotrain.store.schema import runs

    with engine.connect() as conn:
        projects = conn.execute(
            select(runs.c.project, func.sum(runs.c.co2_kg).label("co2"))
            .where(flt.where())
            .group_by(runs.c.project)
            .order_by(func.sum(runs.c.co2_kg).desc())
            .limit(top)
        ).all()
    out = []
    for project, total in projects:
        pflt = replace(flt, project=project) if isinstance(flt, RunFilter) else flt
        with engine.connect() as conn:
            run_id = conn.execute(
                select(runs.c.run_id)
                .where(pflt.where(), runs.c.facility_energy_kwh > 0)
                .order_by(runs.c.facility_energy_kwh.desc())
                .limit(1)
            ).scalar()
        if run_id is None:
            continue
        run = get_run(engine, run_id)
        timeline = [
            (s["t_s"], (s["gpu_w"] or 0) + (s["cpu_w"] or 0) + (s["ram_w"] or 0))
            for s in run_samples(engine, run_id)
        ]
        try:
            advice = advise(profile_from_run(run, timeline), engine, sites)
        except UserError as e:
            out.append({"project": project, "project_co2_kg": total, "note": str(e)})
            continue
        w = advice.when
        best_site = min(advice.where, key=lambda r: r.co2_kg) if advice.where else None
        out.append(
            {
                "project": project,
                "project_co2_kg": total,
                "run": run_id[:12],
                "run_co2_kg": run.get("co2_kg"),
                "best_hour": w.best_hour.label if w else None,
                "best_hour_change_pct": w.best_hour.change_pct if w else None,
                "best_day": w.best_day.label if w else None,
                "best_day_change_pct": w.best_day.change_pct if w else None,
                "best_site": best_site.site if best_site else None,
                "best_site_co2_kg": best_site.co2_kg if best_site else None,
                "note": advice.when_note or "",
            }
        )
    return out
