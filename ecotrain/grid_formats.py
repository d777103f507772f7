"""Grid intensity series files: recognise an export by its header and read its points.

Supported (no web call is ever made):

- **Electricity Maps** history CSVs: ``Datetime (UTC)``, ``Zone Id``, ``Carbon Intensity
  gCO₂eq/kWh (LCA)`` (older files: ``(Life cycle)``) and ``... (direct)``. The lifecycle
  column is read as the ``average`` signal (``basis="direct"`` takes the direct one).
- **ENTSO-E** Transparency "Actual Generation per Production Type": ``MTU (UTC)`` or
  ``MTU (CET/CEST)`` and ``<type> - Actual Aggregated [MW]`` columns. The intensity is
  *derived*: generation-weighted lifecycle factors per source (codecarbon's
  ``carbon_intensity_per_source.json``), production-based (imports ignored).
- **EIA** API v2 ``electricity/rto/fuel-type-data`` exports: ``period``, ``respondent``,
  ``fueltype``, ``value``. Derived the same way; EIA-930 periods are hour *ending* (UTC).
- **WattTime** MOER exports: ``point_time`` (or ``timestamp``) and ``value`` (or ``MOER``)
  in lbs CO2/MWh, read as the ``marginal`` signal (``co2_aoer`` rows as ``average``).
- **Plain** ``timestamp,zone,g_per_kwh`` (optional ``signal`` column; naive times are UTC).

A bad row is a :class:`GridFileError` naming the file and its line.
"""

from __future__ import annotations

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
