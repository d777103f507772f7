"""Time-resolved grid intensity: import series from the CSV exports labs already have, store
them (deduplicated, with source and licence), and weight a run's power timeline by them.

Supported files (the shape is recognised from the header row; no web call is ever made):

- **Electricity Maps** history CSVs: ``Datetime (UTC)``, ``Zone Id``, ``Carbon Intensity
  gCO₂eq/kWh (LCA)`` (older files: ``(Life cycle)``) and ``... (direct)``. The lifecycle
  column is imported as the ``average`` signal (``basis="direct"`` takes the direct one).
- **ENTSO-E** Transparency "Actual Generation per Production Type": ``MTU (UTC)`` or
  ``MTU (CET/CEST)`` and ``<type> - Actual Aggregated [MW]`` columns. The intensity is
  *derived*: generation-weighted lifecycle factors per source (codecarbon's
  ``carbon_intensity_per_source.json``), production-based (imports ignored).
- **EIA** API v2 ``electricity/rto/fuel-type-data`` exports: ``period``, ``respondent``,
  ``fueltype``, ``value``. Derived the same way; EIA-930 periods are hour *ending* (UTC).
- **WattTime** MOER exports: ``point_time`` (or ``timestamp``) and ``value`` (or ``MOER``)
  in lbs CO2/MWh, imported as the ``marginal`` signal (``co2_aoer`` rows as ``average``).
- **Plain** ``timestamp,zone,g_per_kwh`` (optional ``signal`` column; naive times are UTC).

A point holds from its timestamp until the next one, for at most the series' usual step: a
longer hole is a gap, not a held value. A run's time-resolved CO2e is its facility energy x
the intensity weighted by the energy its power timeline spent in each period (see
:func:`weighted_intensity`); it is stored beside the annual figure (``co2_kg``), which stays
the default for comparability.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecotrain.errors import UserError

LBS_PER_MWH_TO_G_PER_KWH = 0.45359237
SIGNALS = ("average", "marginal")
# Below this share of a run's energy falling in covered periods, no time-resolved figure.
MIN_COVERAGE = 0.99
MAX_G_PER_KWH = 5000.0  # beyond any real grid (lignite ~1,100): a unit or column mistake

EM_TIME = "Datetime (UTC)"
# Matched after _column() spells CO₂ as CO2: "Carbon Intensity gCO₂eq/kWh (LCA)" in the files.
EM_LCA = ("Carbon Intensity gCO2eq/kWh (LCA)", "Carbon Intensity gCO2eq/kWh (Life cycle)")
EM_DIRECT = "Carbon Intensity gCO2eq/kWh (direct)"

# Production types -> codecarbon lifecycle factor keys. Storage (pumped hydro, batteries) is
# left out: it re-delivers energy generated earlier, already counted at its source.
ENTSOE_SOURCES = {
    "biomass": "biomass", "fossil brown coal/lignite": "coal", "fossil coal-derived gas": "coal",
    "fossil gas": "natural_gas", "fossil hard coal": "coal", "fossil oil": "petroleum",
    "fossil oil shale": "coal", "fossil peat": "coal", "geothermal": "geothermal",
    "hydro run-of-river and poundage": "hydroelectricity",
    "hydro water reservoir": "hydroelectricity", "marine": "hydroelectricity",
    "nuclear": "nuclear", "other": "fossil", "other renewable": "biomass", "solar": "solar",
    "waste": "fossil", "wind offshore": "wind", "wind onshore": "wind",
}  # fmt: skip
EIA_SOURCES = {
    "COL": "coal", "NG": "natural_gas", "OIL": "petroleum", "NUC": "nuclear",
    "SUN": "solar", "WAT": "hydroelectricity", "WND": "wind", "GEO": "geothermal",
    "OTH": "fossil",
}  # fmt: skip
EIA_STORAGE = {"BAT", "PS", "SNB", "UES", "OES"}

LICENCE_UNSTATED = "not stated (record it with --licence)"
EIA_LICENCE = "public domain (U.S. Energy Information Administration, a federal agency)"


class GridFileError(UserError, ValueError):
    """A series file that cannot be read; the message names the file and line."""


@dataclass
class ParsedSeries:
    """The points of one (zone, signal) read from a file."""

    zone: str
    signal: str
    source: str
    points: dict[datetime, float] = field(default_factory=dict)  # naive UTC -> g/kWh
    region_hint: str | None = None  # a country name from the file, to find the region


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


def _from_epoch(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


_EIA_PERIOD = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})(?:([+-]\d{2}))?$")


def parse_time(text: str) -> datetime:
    """ISO-8601 (``Z`` or an offset; naive = UTC), ``YYYY-MM-DD HH:MM[:SS]``, or Unix seconds,
    as a naive UTC datetime. Raises ValueError."""
    text = text.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return _from_epoch(float(text))
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _eia_period(text: str) -> datetime:
    """EIA ``2024-01-01T05`` (UTC) or ``2024-01-01T00-05`` (local with offset): hour ending,
    returned as the start of the hour, naive UTC."""
    match = _EIA_PERIOD.match(text.strip())
    if not match:
        raise ValueError(f"bad EIA period {text!r} (expected YYYY-MM-DDTHH)")
    end = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}:00")
    if match.group(3):
        end -= timedelta(hours=int(match.group(3)))
    return end - timedelta(hours=1)


def _entsoe_mtu(text: str, zone_name: str | None, seen: set[datetime]) -> datetime:
    """``01.01.2023 00:00 - 01.01.2023 01:00`` (start of the interval) in the header's zone."""
    start = text.split(" - ")[0].strip()
    start = re.sub(r"\s*\((CET|CEST|UTC)\)$", "", start)
    naive = datetime.strptime(start, "%d.%m.%Y %H:%M")
    if zone_name is None:
        return naive
    from zoneinfo import ZoneInfo

    local = naive.replace(tzinfo=ZoneInfo(zone_name))
    utc = local.astimezone(UTC).replace(tzinfo=None)
    if utc in seen:  # the repeated hour when clocks go back: the second one is fold=1
        utc = local.replace(fold=1).astimezone(UTC).replace(tzinfo=None)
    seen.add(utc)
    return utc


# -- reading files --------------------------------------------------------------------------


def _number(text: str | None) -> float | None:
    """A cell as a float; empty, n/e, N/A and the like are None (missing, not zero)."""
    if text is None:
        return None
    text = text.strip()
    if text.lower() in ("", "n/e", "n/a", "na", "nan", "null", "none", "-"):
        return None
    return float(text)


def _factors() -> dict[str, float]:
    """codecarbon's lifecycle g CO2e/kWh per generation source (read without importing it)."""
    from ecotrain.grid import data_dir

    path = data_dir() / "private_infra" / "carbon_intensity_per_source.json"
    data = json.loads(path.read_text())
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}


def _mix_intensity(mix: dict[str, float], factors: dict[str, float]) -> float | None:
    """Generation-weighted lifecycle intensity of a {factor key: MW} mix."""
    total = sum(mix.values())
    if total <= 0:
        return None
    return sum(mw * factors[key] for key, mw in mix.items()) / total


def _column(name: str) -> str:
    """A header cell as matched: trimmed, CO₂ spelt CO2 (spreadsheets re-save it either way)."""
    return name.strip().replace("₂", "2")


def detect_format(header: Sequence[str]) -> str:
    """Which export a header row belongs to: electricitymaps, entsoe, eia, watttime, plain."""
    cols = {_column(h) for h in header}
    lower = {c.lower() for c in cols}
    if EM_TIME in cols and (cols & set(EM_LCA) or EM_DIRECT in cols):
        return "electricitymaps"
    if any(c.startswith("MTU") for c in cols) and any("Actual Aggregated" in c for c in cols):
        return "entsoe"
    if {"period", "fueltype", "value"} <= lower:
        return "eia"
    if ("point_time" in lower and "value" in lower) or {"timestamp", "moer"} <= lower:
        return "watttime"
    if {"timestamp", "zone", "g_per_kwh"} <= lower:
        return "plain"
    raise GridFileError(
        "unrecognised grid series file: expected an Electricity Maps, ENTSO-E, EIA or "
        "WattTime export, or a plain timestamp,zone,g_per_kwh CSV; header was "
        + ",".join(header)[:200]
    )


def read_series_file(
    path: str | Path, zone: str | None = None, basis: str = "lca"
) -> tuple[str, list[ParsedSeries]]:
    """Parse one export into series; returns (format, series). ``zone`` names the zone when
    the file does not (ENTSO-E, WattTime), or overrides it. Raises :class:`GridFileError`
    naming the file and line of the first bad row."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GridFileError(f"cannot read {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise GridFileError(f"{path}: the file is empty") from None
    fmt = detect_format(header)
    # reader.line_num: the physical line a row ended on (a quoted field may span lines)
    rows = ((reader.line_num, row) for row in reader if any(c.strip() for c in row))
    parser = {
        "electricitymaps": _read_electricitymaps,
        "entsoe": _read_entsoe,
        "eia": _read_eia,
        "watttime": _read_watttime,
        "plain": _read_plain,
    }[fmt]
    line = 1
    state: dict[str, Any] = {"seen": set(), "mix": {}}  # per-file parser bookkeeping
    try:
        series: dict[tuple[str, str], ParsedSeries] = {}
        for line, row in rows:  # noqa: B007 - `line` names the bad row in the except
            if len(row) != len(header):
                raise ValueError(f"{len(row)} fields where the header has {len(header)}")
            record = {_column(h): v for h, v in zip(header, row, strict=True)}
            for item in parser(record, zone, basis, state):
                key_zone, signal, ts, value, source, hint = item
                if value is None:
                    continue
                if not 0 <= value <= MAX_G_PER_KWH:
                    raise ValueError(f"intensity {value:g} g/kWh is out of range")
                entry = series.setdefault(
                    (key_zone, signal), ParsedSeries(key_zone, signal, source, region_hint=hint)
                )
                entry.points[ts] = value
    except GridFileError:
        raise
    except (ValueError, KeyError) as e:
        what = f"missing column {e}" if isinstance(e, KeyError) else str(e)
        raise GridFileError(f"{path}:{line}: {what}") from None
    if not series:
        raise GridFileError(f"{path}: no intensity values found")
    return fmt, list(series.values())


_Item = tuple[str, str, datetime, float | None, str, str | None]


def _need_zone(zone: str | None, what: str) -> str:
    if not zone:
        raise GridFileError(f"{what} files do not name the grid zone: pass --zone")
    return zone


def _read_electricitymaps(
    rec: dict[str, str], zone: str | None, basis: str, state: dict[str, Any]
) -> Iterable[_Item]:
    col = EM_DIRECT if basis == "direct" else next((c for c in EM_LCA if c in rec), EM_DIRECT)
    name = "direct" if col == EM_DIRECT else "lifecycle"
    z = zone or rec.get("Zone Id") or rec.get("Zone Name")
    z = _need_zone(z, "these Electricity Maps")
    yield (
        z,
        "average",
        parse_time(rec[EM_TIME]),
        _number(rec[col]),
        f"Electricity Maps, {name} carbon intensity",
        rec.get("Country"),
    )


_FACTORS: dict[str, float] = {}


def _cached_factors() -> dict[str, float]:
    if not _FACTORS:
        _FACTORS.update(_factors())
    return _FACTORS


def _read_entsoe(
    rec: dict[str, str], zone: str | None, basis: str, state: dict[str, Any]
) -> Iterable[_Item]:
    mtu_col = next(c for c in rec if c.startswith("MTU"))
    tz = None if "UTC" in mtu_col else "Europe/Brussels"
    seen = state["seen"]
    area = rec.get("Area", "")
    z = zone or (area.split("|")[-1].strip() if area else None)
    z = _need_zone(z, "these ENTSO-E")
    ts = _entsoe_mtu(rec[mtu_col], tz, seen)
    mix: dict[str, float] = {}
    for col, cell in rec.items():
        if "Actual Aggregated" not in col:
            continue
        kind = col.split(" - Actual Aggregated")[0].strip().lower()
        value = _number(cell)
        if value is None or kind not in ENTSOE_SOURCES:
            continue
        key = ENTSOE_SOURCES[kind]
        mix[key] = mix.get(key, 0.0) + max(0.0, value)
    yield (
        z,
        "average",
        ts,
        _mix_intensity(mix, _cached_factors()),
        "derived from ENTSO-E actual generation per production type x lifecycle factors "
        "per source (codecarbon carbon_intensity_per_source.json); production-based, "
        "storage and imports excluded",
        None,
    )


def _read_eia(
    rec: dict[str, str], zone: str | None, basis: str, state: dict[str, Any]
) -> Iterable[_Item]:
    lower = {k.lower(): v for k, v in rec.items()}
    z = zone or lower.get("respondent")
    z = _need_zone(z, "these EIA")
    ts = _eia_period(lower["period"])
    fuel = lower["fueltype"].strip().upper()
    value = _number(lower["value"])
    if fuel in EIA_STORAGE or value is None:
        return
    if fuel not in EIA_SOURCES:
        raise ValueError(f"unknown EIA fuel type {fuel!r}")
    key = EIA_SOURCES[fuel]
    # EIA rows come one fuel per line: the hour's mix is complete once all are read.
    mix = state["mix"].setdefault((z, ts), {})
    mix[key] = mix.get(key, 0.0) + max(0.0, value)
    # Re-yield the hour's intensity as its mix grows; the last (complete) value wins.
    yield (
        z,
        "average",
        ts,
        _mix_intensity(mix, _cached_factors()),
        "derived from EIA-930 hourly net generation by fuel (EIA API v2 fuel-type-data) x "
        "lifecycle factors per source (codecarbon carbon_intensity_per_source.json); "
        "production-based, storage and interchange excluded",
        None,
    )


def _read_watttime(
    rec: dict[str, str], zone: str | None, basis: str, state: dict[str, Any]
) -> Iterable[_Item]:
    lower = {k.lower(): v for k, v in rec.items()}
    time_text = lower.get("point_time") or lower.get("timestamp") or ""
    raw = lower["value"] if "value" in lower else lower["moer"]
    z = zone or lower.get("region") or lower.get("ba")
    z = _need_zone(z, "these WattTime")
    kind = (lower.get("signal_type") or "co2_moer").strip().lower()
    signal = "average" if kind == "co2_aoer" else "marginal"
    value = _number(raw)
    yield (
        z,
        signal,
        parse_time(time_text),
        None if value is None else value * LBS_PER_MWH_TO_G_PER_KWH,
        f"WattTime {kind.upper()} (lbs CO2/MWh x 0.45359)",
        None,
    )


def _read_plain(
    rec: dict[str, str], zone: str | None, basis: str, state: dict[str, Any]
) -> Iterable[_Item]:
    lower = {k.lower(): v for k, v in rec.items()}
    signal = (lower.get("signal") or "average").strip().lower()
    if signal not in SIGNALS:
        raise ValueError(f"signal must be average or marginal, got {signal!r}")
    z = zone or lower["zone"].strip()
    if not z:
        raise ValueError("empty zone")
    yield (z, signal, parse_time(lower["timestamp"]), _number(lower["g_per_kwh"]), "", None)


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
    set-up done in list comprehensions: what makes 100,000 runs a matter of seconds."""

    __slots__ = ("ts", "ws", "cum", "duration", "total", "points")

    def __init__(self, timeline: Sequence[tuple[float, float]], duration_s: float) -> None:
        self.points = len(timeline)
        last_t = timeline[-1][0] if timeline else 0.0
        duration = max(float(duration_s or 0.0), last_t)
        if not timeline or not any(w for _, w in timeline):
            timeline = [(0.0, 1.0)]
        # One plain loop: measured faster than map/accumulate or numpy (whose conversion
        # of the tuples costs more than the sum) for timelines of a few hundred points.
        ts, ws, cum = [], [], []
        t0, w0 = timeline[0]
        acc = 2.0 * max(t0, 0.0) * w0  # twice the energy (trapezoids), halved in energy_at
        for t, w in timeline:
            acc += (t - t0) * (w + w0)
            ts.append(t)
            ws.append(w)
            cum.append(acc)
            t0, w0 = t, w
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
    started, kwh = run.get("started_at"), run.get("facility_energy_kwh")
    duration = run.get("duration_s") or 0.0
    if started is None or kwh is None:
        return None
    w = weighted_intensity(PowerCurve(timeline, duration), _epoch(started), series)
    if w.g_per_kwh is None or w.coverage < MIN_COVERAGE:
        return None
    shape = (
        f"weighted by the run's power timeline ({len(timeline)} points)"
        if timeline
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


def _timelines(conn: Any, run_ids: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
    """The power timelines (t_s, total W) of several runs, in one query."""
    from sqlalchemy import select

    from ecotrain.store.schema import samples

    out: dict[str, list[tuple[float, float]]] = {r: [] for r in run_ids}
    rows = conn.execute(
        select(samples.c.run_id, samples.c.t_s, samples.c.gpu_w, samples.c.cpu_w, samples.c.ram_w)
        .where(samples.c.run_id.in_(list(run_ids)))
        .order_by(samples.c.run_id, samples.c.t_s)
    )
    for run_id, t, g, c, r in rows:
        out[run_id].append((t, (g or 0.0) + (c or 0.0) + (r or 0.0)))
    return out


SERIES_COLUMNS = ("co2_series_kg", "intensity_series_g_per_kwh", "co2_series_method")
CHUNK = 500  # runs per timeline query and per batch of updates


def apply_to_runs(
    engine: Any,
    region: str,
    start: datetime | None = None,
    end: datetime | None = None,
    run_ids: Sequence[str] | None = None,
) -> int:
    """Compute and store the time-resolved CO2e of finished runs in ``region`` (optionally
    only those starting in [start, end), or only ``run_ids``); returns how many got one.
    A run the series no longer covers keeps no stale figure."""
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
    done = 0
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i : i + CHUNK]
        with engine.begin() as conn:
            timelines = _timelines(conn, [r["run_id"] for r in chunk]) if series else {}
            params = []
            for r in chunk:
                cols = time_resolved(r, timelines[r["run_id"]], series) if series else None
                done += cols is not None
                params.append({"rid": r["run_id"], **(cols or dict.fromkeys(SERIES_COLUMNS))})
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
