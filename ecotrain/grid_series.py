"""Time-resolved grid intensity: store series (deduplicated, with source and licence), look
them up, and weight a run's power timeline by them. Reading the export files is
:mod:`ecotrain.grid_formats`.

A point holds from its timestamp until the next one, for at most the series' usual step: a
longer hole is a gap, not a held value. A run's time-resolved CO2e is its facility energy x
the intensity weighted by the energy its power timeline spent in each period (see
:func:`weighted_intensity`); it is stored beside the annual figure (``co2_kg``), which stays
the default for comparability.
"""

from __future__ import annotations

import bisect
import gc
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from operator import add, mul, sub
from pathlib import Path
from typing import Any

from ecotrain.grid_formats import (
    EIA_LICENCE,
    LICENCE_UNSTATED,
    GridFileError,
    _from_epoch,
    read_series_file,
)

# Below this share of a run's energy falling in covered periods, no time-resolved figure.
MIN_COVERAGE = 0.99


@dataclass
class Series:
    """A stored series, ready for lookups: period starts (Unix s), values and period ends."""

    zone: str
    signal: str
    region: str | None
    source: str
    licence: str | None
    starts: list[float]
    values: list[float]
    ends: list[float]  # a period ends at the next start, or after the usual step at a hole
    step_s: float
    # Flat lookup: [bounds[k], bounds[k+1]) has intensity held[k]; None is a gap.
    bounds: list[float] = field(default_factory=list)
    held: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.bounds:
            return
        for i, (a, e) in enumerate(zip(self.starts, self.ends, strict=True)):
            self.bounds.append(a)
            self.held.append(self.values[i])
            nxt = self.starts[i + 1] if i + 1 < len(self.starts) else None
            if nxt is None or e < nxt:
                self.bounds.append(e)
                self.held.append(None)

    @property
    def first(self) -> datetime:
        return _from_epoch(self.starts[0])

    @property
    def last_end(self) -> datetime:
        return _from_epoch(self.ends[-1])

    def label(self) -> str:
        return f"{self.zone} {self.signal} series ({self.source})"


# -- time -----------------------------------------------------------------------------------


def _epoch(dt: datetime) -> float:
    """Naive UTC datetime -> Unix seconds."""
    return dt.replace(tzinfo=UTC).timestamp()


# -- storing --------------------------------------------------------------------------------


@dataclass
class Imported:
    """What one import stored, per (zone, signal)."""

    zone: str
    signal: str
    region: str | None
    points: int
    new: int
    first: datetime
    last: datetime
    runs_updated: int = 0


def region_for(zone: str, hint: str | None = None) -> str | None:
    """The ecotrain region a zone's series applies to, when the zone names one we know:
    an ISO-3 code or region code (``FRA``, ``USA/CA``), or a whole-country zone whose file
    names its country (Electricity Maps ``FR`` + ``France``). Sub-national zones of other
    operators (``US-CAL-CISO``, ``SE-SE3``) need ``--region``."""
    from ecotrain.grid import UnknownRegion, resolve_intensity

    for candidate in (zone, hint if re.fullmatch(r"[A-Z]{2}", zone) else None):
        if not candidate:
            continue
        try:
            return resolve_intensity(candidate).region
        except (UnknownRegion, ValueError):
            continue
    return None


def import_file(
    engine: Any,
    path: str | Path,
    *,
    zone: str | None = None,
    region: str | None = None,
    source: str | None = None,
    licence: str | None = None,
    basis: str = "lca",
    apply: bool = True,
) -> tuple[str, list[Imported]]:
    """Read ``path`` and store its series (upsert by zone, signal and time: re-importing
    the same hours replaces them, never duplicates). ``region`` ties the series to an
    ecotrain region; by default it is found from the zone (:func:`region_for`). With
    ``apply``, finished runs in that region inside the series' span get their
    time-resolved CO2e (:func:`apply_to_runs`). Returns (format, what was stored)."""
    from sqlalchemy import and_, func, select

    from ecotrain.store.db import upsert
    from ecotrain.store.records import utcnow
    from ecotrain.store.schema import grid_points, grid_series

    if basis not in ("lca", "direct"):
        raise GridFileError(f"basis must be lca or direct, got {basis!r}")
    if region:
        from ecotrain.grid import canonical_region

        region = canonical_region(region)
    fmt, parsed = read_series_file(path, zone, basis)
    default_licence = EIA_LICENCE if fmt == "eia" else LICENCE_UNSTATED
    out: list[Imported] = []
    for s in parsed:
        stated = source or s.source or f"{Path(path).name} (plain series)"
        reg = region or region_for(s.zone, s.region_hint)
        rows = [
            {"zone": s.zone, "signal": s.signal, "ts": ts, "g_per_kwh": v}
            for ts, v in sorted(s.points.items())
        ]
        first, last = rows[0]["ts"], rows[-1]["ts"]
        with engine.begin() as conn:
            where = and_(
                grid_points.c.zone == s.zone,
                grid_points.c.signal == s.signal,
                grid_points.c.ts >= first,
                grid_points.c.ts <= last,
            )
            before = conn.execute(select(func.count()).where(where)).scalar() or 0
            upsert(
                conn,
                grid_series,
                {
                    "zone": s.zone,
                    "signal": s.signal,
                    "region": reg,
                    "source": stated,
                    "licence": licence or default_licence,
                    "imported_at": utcnow(),
                },
                ["zone", "signal"],
            )
            for i in range(0, len(rows), 5000):
                _upsert_points(conn, rows[i : i + 5000])
            after = conn.execute(select(func.count()).where(where)).scalar() or 0
        item = Imported(s.zone, s.signal, reg, len(rows), after - before, first, last)
        if apply and reg and s.signal == "average":
            item.runs_updated = apply_to_runs(engine, reg, first, last + timedelta(hours=1))
        out.append(item)
    return fmt, out


def _upsert_points(conn: Any, rows: list[dict[str, Any]]) -> None:
    from ecotrain.store.schema import grid_points

    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(grid_points)
    stmt = stmt.on_conflict_do_update(
        index_elements=["zone", "signal", "ts"], set_={"g_per_kwh": stmt.excluded.g_per_kwh}
    )
    conn.execute(stmt, rows)


# -- reading the store ------------------------------------------------------------------------


def list_series(engine: Any, zone: str | None = None) -> list[dict[str, Any]]:
    """Every stored series (or those of ``zone`` / region ``zone``) with its coverage."""
    from sqlalchemy import and_, func, or_, select

    from ecotrain.store.schema import grid_points, grid_series

    stats = (
        select(
            grid_points.c.zone,
            grid_points.c.signal,
            func.count().label("points"),
            func.min(grid_points.c.ts).label("first"),
            func.max(grid_points.c.ts).label("last"),
            func.avg(grid_points.c.g_per_kwh).label("mean"),
            func.min(grid_points.c.g_per_kwh).label("min"),
            func.max(grid_points.c.g_per_kwh).label("max"),
        )
        .group_by(grid_points.c.zone, grid_points.c.signal)
        .subquery()
    )
    stmt = select(grid_series, stats.c.points, stats.c.first, stats.c.last, stats.c.mean)
    stmt = stmt.add_columns(stats.c.min, stats.c.max).join(
        stats, and_(stats.c.zone == grid_series.c.zone, stats.c.signal == grid_series.c.signal)
    )
    if zone:
        stmt = stmt.where(
            or_(
                func.lower(grid_series.c.zone) == zone.lower(),
                func.lower(grid_series.c.region) == zone.lower(),
            )
        )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt.order_by(grid_series.c.zone))]


def load_series(
    engine: Any,
    zone: str,
    signal: str = "average",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Series | None:
    """The stored series of ``zone`` (or of the zone tied to region ``zone``), optionally
    only the points in [start, end); None when there is none."""
    from sqlalchemy import func, or_, select

    from ecotrain.store.schema import grid_points, grid_series

    with engine.connect() as conn:
        meta = conn.execute(
            select(grid_series)
            .where(
                grid_series.c.signal == signal,
                or_(grid_series.c.zone == zone, grid_series.c.region == zone),
            )
            .order_by((grid_series.c.zone == zone).desc(), grid_series.c.zone)
        ).first()
        if meta is None:
            # a case-insensitive second chance for what a person types
            meta = conn.execute(
                select(grid_series).where(
                    grid_series.c.signal == signal,
                    or_(
                        func.lower(grid_series.c.zone) == zone.lower(),
                        func.lower(grid_series.c.region) == zone.lower(),
                    ),
                )
            ).first()
        if meta is None:
            return None
        stmt = select(grid_points.c.ts, grid_points.c.g_per_kwh).where(
            grid_points.c.zone == meta.zone, grid_points.c.signal == signal
        )
        if start is not None:
            stmt = stmt.where(grid_points.c.ts >= start)
        if end is not None:
            stmt = stmt.where(grid_points.c.ts < end)
        points = conn.execute(stmt.order_by(grid_points.c.ts)).all()
    if not points:
        return None
    return make_series(
        [(_epoch(ts), v) for ts, v in points],
        zone=meta.zone,
        signal=signal,
        region=meta.region,
        source=meta.source,
        licence=meta.licence,
    )


def make_series(
    points: Sequence[tuple[float, float]],
    *,
    zone: str = "",
    signal: str = "average",
    region: str | None = None,
    source: str = "",
    licence: str | None = None,
    step_s: float | None = None,
) -> Series:
    """A :class:`Series` from sorted (Unix s, g/kWh) points. Each point holds until the next
    one, but never longer than the usual step (the median spacing): a longer hole is a gap."""
    starts = [p[0] for p in points]
    values = [p[1] for p in points]
    if step_s is None:
        diffs = sorted(b - a for a, b in zip(starts, starts[1:], strict=False))
        step_s = diffs[len(diffs) // 2] if diffs else 3600.0
    ends = [min(b, a + step_s) for a, b in zip(starts, starts[1:], strict=False)]
    ends.append(starts[-1] + step_s)
    return Series(zone, signal, region, source, licence, starts, values, ends, step_s)


# -- weighting a run's timeline -------------------------------------------------------------


class PowerCurve:
    """A run's power over [0, duration]: linear between timeline points (the trapezoid
    rule), the first point's power before it and the last's after it; with no timeline, or
    one that read only zeros, flat (only the *shape* weights, so any constant will do).

    :meth:`energy_at` is the cumulative energy at ``t`` (J), in O(log n) after an O(n)
    set-up done in C (map/accumulate): what makes 100,000 runs a matter of seconds."""

    __slots__ = ("ts", "ws", "cum", "duration", "total", "points")

    def __init__(self, timeline: Sequence[tuple[float, float]], duration_s: float) -> None:
        self._build([p[0] for p in timeline], [p[1] for p in timeline], duration_s)

    @classmethod
    def from_columns(
        cls, ts: Sequence[float], ws: Sequence[float], duration_s: float
    ) -> PowerCurve:
        """The same curve from the times and the powers as two sequences (what a bulk
        read of many runs' timelines yields without building a tuple per point)."""
        curve = cls.__new__(cls)
        curve._build(ts, ws, duration_s)
        return curve

    def _build(self, ts: Sequence[float], ws: Sequence[float], duration_s: float) -> None:
        self.points = len(ts)
        duration = max(float(duration_s or 0.0), ts[-1] if ts else 0.0)
        if not ts or not any(ws):
            ts, ws = [0.0], [1.0]
        # Twice the energy (trapezoids, halved in energy_at), cumulated left to right with
        # map/accumulate: the per-point work stays in C, the same sums in the same order as
        # a plain loop (so the figures do not change), about twice as fast.
        acc0 = 2.0 * max(ts[0], 0.0) * ws[0]
        cum = list(accumulate(map(mul, map(sub, ts[1:], ts), map(add, ws[1:], ws)), initial=acc0))
        self.ts, self.ws, self.cum, self.duration = ts, ws, cum, duration
        self.total = self.energy_at(duration)

    def energy_at(self, t: float) -> float:
        """Energy from the start to ``t`` seconds into the run."""
        ts, ws = self.ts, self.ws
        if t <= ts[0]:
            return max(t, 0.0) * ws[0]
        if t >= ts[-1]:
            return 0.5 * self.cum[-1] + (t - ts[-1]) * ws[-1]
        i = bisect.bisect_right(ts, t) - 1
        dt = t - ts[i]
        slope = (ws[i + 1] - ws[i]) / (ts[i + 1] - ts[i])
        return 0.5 * self.cum[i] + dt * (ws[i] + slope * dt * 0.5)


@dataclass
class Weighted:
    """The energy-weighted intensity of a run over a series."""

    g_per_kwh: float | None  # None: no energy fell in covered periods
    coverage: float  # share of the run's energy in covered periods
    points: int  # how many series periods the run touched


def weighted_intensity(curve: PowerCurve, start_epoch: float, series: Series) -> Weighted:
    """Sum over series periods of (energy the run spent in the period x its intensity),
    divided by the energy spent in covered periods. The energy in a period is the curve's
    cumulative energy at its end minus at its start: exact for the piecewise-linear power,
    split at period boundaries and gaps."""
    bounds, held = series.bounds, series.held
    n = len(bounds)
    total = covered = weighted = 0.0
    touched = 0
    a, b = start_epoch, start_epoch + curve.duration
    k = bisect.bisect_right(bounds, a) - 1
    x, ex = a, 0.0
    while x < b:
        nxt = bounds[k + 1] if k + 1 < n else b
        y = b if nxt > b else nxt
        if y > x:
            ey = curve.total if y >= b else curve.energy_at(y - a)
            e = ey - ex
            total += e
            value = held[k] if k >= 0 else None
            if value is not None:
                covered += e
                weighted += e * value
                touched += 1
            x, ex = y, ey
        k += 1
    if total <= 0:
        return Weighted(None, 0.0, 0)
    return Weighted(weighted / covered if covered > 0 else None, covered / total, touched)


def time_resolved(
    run: dict[str, Any], timeline: Sequence[tuple[float, float]], series: Series
) -> dict[str, Any] | None:
    """The time-resolved columns of one finished run (``co2_series_kg``,
    ``intensity_series_g_per_kwh``, ``co2_series_method``), or None when the series does not
    cover it (less than :data:`MIN_COVERAGE` of its energy) or it has no facility energy."""
    if run.get("started_at") is None or run.get("facility_energy_kwh") is None:
        return None
    return _curve_figure(run, PowerCurve(timeline, run.get("duration_s") or 0.0), series)


def _curve_figure(run: dict[str, Any], curve: PowerCurve, series: Series) -> dict[str, Any] | None:
    """:func:`time_resolved` once the run's power curve is built."""
    started, kwh = run.get("started_at"), run.get("facility_energy_kwh")
    if started is None or kwh is None:
        return None
    w = weighted_intensity(curve, _epoch(started), series)
    if w.g_per_kwh is None or w.coverage < MIN_COVERAGE:
        return None
    shape = (
        f"weighted by the run's power timeline ({curve.points} points)"
        if curve.points
        else "weighted evenly over the run's span (no power timeline)"
    )
    cover = "100%" if w.coverage >= 0.9995 else f"{w.coverage:.1%} (the rest at the same mean)"
    return {
        "co2_series_kg": kwh * w.g_per_kwh / 1000.0,
        "intensity_series_g_per_kwh": w.g_per_kwh,
        "co2_series_method": (
            f"time-resolved: facility energy x the {series.label()}, {shape}; energy-"
            f"weighted mean {w.g_per_kwh:.4g} g CO2e/kWh over {w.points} period(s), "
            f"coverage {cover}"
        ),
    }


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk read: a million fresh (acyclic)
    tuples and floats otherwise trigger hundreds of collections, which measured as long as
    the read itself."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _timelines(
    conn: Any, run_ids: Sequence[str]
) -> dict[str, tuple[Sequence[float], Sequence[float]]]:
    """The power timelines of several runs as (times, total W) columns, in two queries: how
    many points each run has, then all the points in (run, time) order.

    Millions of points go through here, so it reads with the driver's own cursor (plain
    tuples: SQLAlchemy's Row objects cost more than the reading), sums the components in
    SQL, and leaves the run id out of the rows (the counts say where each run's points end).
    """
    from sqlalchemy import func, select

    from ecotrain.store.schema import samples

    ids = list(run_ids)
    counts = conn.execute(
        select(samples.c.run_id, func.count())
        .where(samples.c.run_id.in_(ids))
        .group_by(samples.c.run_id)
        .order_by(samples.c.run_id)
    ).all()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    # The same left-to-right sum as (gpu or 0) + (cpu or 0) + (ram or 0) in Python.
    sql = (
        "SELECT t_s, COALESCE(gpu_w, 0.0) + COALESCE(cpu_w, 0.0) + COALESCE(ram_w, 0.0) "
        f"FROM samples WHERE run_id IN ({', '.join([mark] * len(ids))}) ORDER BY run_id, t_s"
    )
    cursor = conn.connection.cursor()
    with _no_gc():
        try:
            cursor.execute(sql, ids)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        ts, ws = zip(*rows, strict=True) if rows else ((), ())
    out: dict[str, tuple[Sequence[float], Sequence[float]]] = {r: ((), ()) for r in ids}
    i = 0
    for run_id, n in counts:  # the same run_id order as the points
        out[run_id] = (ts[i : i + n], ws[i : i + n])
        i += n
    return out


SERIES_COLUMNS = ("co2_series_kg", "intensity_series_g_per_kwh", "co2_series_method")
CHUNK = 1000  # runs per timeline query and per batch of updates


def apply_to_runs(
    engine: Any,
    region: str,
    start: datetime | None = None,
    end: datetime | None = None,
    run_ids: Sequence[str] | None = None,
) -> int:
    """Compute and store the time-resolved CO2e of finished runs in ``region`` (optionally
    only those starting in [start, end), or only ``run_ids``); returns how many got one.
    A run the series no longer covers keeps no stale figure.

    In chunks of :data:`CHUNK` runs: one read of their timelines, the figures, one
    executemany of the updates, one transaction."""
    from sqlalchemy import bindparam, select, update

    from ecotrain.store.schema import runs

    stmt = select(
        runs.c.run_id, runs.c.started_at, runs.c.duration_s, runs.c.facility_energy_kwh
    ).where(runs.c.region == region, runs.c.ended_at.isnot(None))
    if start is not None:
        # a run that started before the series may still end inside it
        stmt = stmt.where(runs.c.started_at >= start - timedelta(days=60))
    if end is not None:
        stmt = stmt.where(runs.c.started_at < end)
    if run_ids is not None:
        stmt = stmt.where(runs.c.run_id.in_(list(run_ids)))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    if not rows:
        return 0
    first = min(r["started_at"] for r in rows) - timedelta(hours=2)
    last = max(r["started_at"] + timedelta(seconds=r["duration_s"] or 0) for r in rows)
    series = load_series(engine, region, "average", first, last + timedelta(hours=2))
    setter = (
        update(runs)
        .where(runs.c.run_id == bindparam("rid"))
        .values({c: bindparam(c) for c in SERIES_COLUMNS})
    )
    blank = dict.fromkeys(SERIES_COLUMNS)
    done = 0
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i : i + CHUNK]
        with engine.begin() as conn:
            if series is not None:
                # only runs that can get a figure need their timeline read
                wanted = [
                    r["run_id"]
                    for r in chunk
                    if r["started_at"] is not None and r["facility_energy_kwh"] is not None
                ]
                timelines = _timelines(conn, wanted) if wanted else {}
            params = []
            for r in chunk:
                cols = None
                if series is not None and r["run_id"] in timelines:
                    ts, ws = timelines[r["run_id"]]
                    curve = PowerCurve.from_columns(ts, ws, r["duration_s"] or 0.0)
                    cols = _curve_figure(r, curve, series)
                done += cols is not None
                params.append({"rid": r["run_id"], **(cols or blank)})
            conn.execute(setter, params)
    return done


def account_run(engine: Any, run_id: str, region: str | None) -> bool:
    """After a run's final record is stored: its time-resolved CO2e, if its region has a
    series. Never raises (the record is safe already; this is an extra figure)."""
    if not region:
        return False
    try:
        from sqlalchemy import select

        from ecotrain.store.schema import grid_series

        with engine.connect() as conn:
            known = conn.execute(
                select(grid_series.c.zone).where(grid_series.c.region == region).limit(1)
            ).first()
        return known is not None and apply_to_runs(engine, region, run_ids=[run_id]) > 0
    except Exception:  # noqa: BLE001 - an extra figure must never fail a write
        return False
