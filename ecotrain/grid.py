"""The one grid carbon-intensity lookup: location-based g CO2e/kWh by country or region.

Data: codecarbon 3.3.2's data files, shipped in ecotrain/data/codecarbon (MIT, see the
README and LICENSE there): ``global_energy_mix.json`` (Our World in Data / Ember, by ISO-3
country), ``2023/usa_emissions.json`` (EPA eGRID 2023 by state, lbs/MWh),
``2023/canada_energy_mix.json`` (generation shares by province, turned into an intensity
with ``carbon_intensity_per_source.json``) and ``cloud/impact.csv`` (Google Cloud regions).
Shipping them (rather than reading an installed codecarbon) keeps codecarbon, NVML and
pandas off the run path's install and pins the numbers a record was accounted with.

Every figure says its emissions boundary: ``lifecycle`` (upstream fuel supply and plant
construction included: Ember's national figures, the per-source factors used for Canada) or
``direct`` (combustion at the plant only: EPA eGRID, Google's "operational" cloud figures).
The two differ most for low-carbon grids (Quebec: ~31 g/kWh lifecycle, ~4 direct), so a
record keeps its boundary. No web service is ever called, and nothing is read until the
first lookup.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from ecotrain.errors import UserError

LBS_PER_MWH_TO_G_PER_KWH = 0.45359237  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh

DATA_DIR = Path(__file__).parent / "data" / "codecarbon"
# The copy's provenance, stored with every record (data_version) and stated in reports.
DATA_VERSION = "codecarbon 3.3.2 data files (shipped in ecotrain/data/codecarbon)"
LIFECYCLE, DIRECT = "lifecycle", "direct"
BOUNDARIES = (LIFECYCLE, DIRECT)
USER_SUPPLIED = "user-supplied"

# Only if the country file cannot be read: the same file's generation-weighted mean
# (codecarbon 3.3.2 data: 480.6 g/kWh), kept so a missing file still gives a stated figure.
WORLD_FALLBACK_G_PER_KWH = 481.0
WORLD_FALLBACK_SOURCE = (
    "world average 481 g/kWh (generation-weighted mean of codecarbon 3.3.2 "
    "global_energy_mix.json, Our World in Data/Ember, rows from 2009-2023), built-in constant"
)

WHERE_TO_SET = 'set it with --region, ECOTRAIN_REGION or region = "..." in .ecotrain.toml'
HOW_TO_SET = (
    "use an ISO-3 country code like FRA or USA, or USA/CA, CAN/QC, gcp:europe-west9; "
    + WHERE_TO_SET
)
# Cloud providers whose regions the cloud table (cloud/impact.csv) lists, by the names a
# user may write before the colon.
CLOUD_PROVIDERS = {"GCP": "gcp", "GOOGLE": "gcp", "GOOGLE CLOUD": "gcp"}

CANADA_PROVINCES = {
    "AB": "alberta", "BC": "british columbia", "MB": "manitoba", "NB": "new brunswick",
    "NL": "newfoundland and labrador", "NS": "nova scotia", "NT": "northwest territories",
    "NU": "nunavut", "ON": "ontario", "PE": "prince edward island", "QC": "quebec",
    "SK": "saskatchewan", "YT": "yukon",
}  # fmt: skip
# canada_energy_mix.json key -> carbon_intensity_per_source.json key. Tidal has no factor of
# its own: hydro's is the closest lifecycle figure; "other" is taken as fossil (EPA's mix).
CANADA_SOURCES = {
    "naturalGas": "natural_gas", "petroleum": "petroleum", "coal": "coal", "nuclear": "nuclear",
    "hydro": "hydroelectricity", "wind": "wind", "solar": "solar", "biomass": "biomass",
    "tidal": "hydroelectricity", "other": "fossil",
}  # fmt: skip

# IANA time zones -> region, to guess the host's location without a network call. A zone
# names a city, not a grid: only zones whose population sits mostly in one grid region map
# to it; US zones other than Pacific span many states and map to the national figure.
TIMEZONE_REGIONS = {
    "Europe/Paris": "FRA", "Europe/Berlin": "DEU", "Europe/London": "GBR",
    "Europe/Madrid": "ESP", "Europe/Rome": "ITA", "Europe/Amsterdam": "NLD",
    "Europe/Brussels": "BEL", "Europe/Zurich": "CHE", "Europe/Stockholm": "SWE",
    "Europe/Oslo": "NOR", "Europe/Helsinki": "FIN", "Europe/Copenhagen": "DNK",
    "Europe/Warsaw": "POL", "Europe/Vienna": "AUT", "Europe/Dublin": "IRL",
    "Europe/Lisbon": "PRT", "Europe/Prague": "CZE",
    "America/Los_Angeles": "USA/CA", "US/Pacific": "USA/CA",
    "America/New_York": "USA", "America/Chicago": "USA", "America/Denver": "USA",
    "America/Phoenix": "USA/AZ", "US/Eastern": "USA", "US/Central": "USA",
    "US/Mountain": "USA", "America/Toronto": "CAN/ON", "America/Montreal": "CAN/QC",
    "America/Vancouver": "CAN/BC", "America/Edmonton": "CAN/AB",
    "Asia/Tokyo": "JPN", "Asia/Seoul": "KOR", "Asia/Shanghai": "CHN",
    "Asia/Singapore": "SGP", "Asia/Kolkata": "IND", "Asia/Taipei": "TWN",
    "Asia/Jerusalem": "ISR", "Australia/Sydney": "AUS", "Australia/Melbourne": "AUS",
    "America/Sao_Paulo": "BRA", "America/Mexico_City": "MEX",
}  # fmt: skip


# Where the host's time zone is configured (module-level so tests can point elsewhere).
TIMEZONE_FILE = "/etc/timezone"
LOCALTIME = "/etc/localtime"


class UnknownRegion(UserError, ValueError):
    """The region is not in the data; the one-line message says how to set a valid one."""


@dataclass(frozen=True)
class Intensity:
    """A grid carbon intensity (g CO2e/kWh) and where it came from."""

    region: str  # canonical: "FRA", "USA/CA", "CAN/QC", "gcp:europe-west9", "WORLD", "custom"
    g_per_kwh: float
    source: str
    year: int | None = None  # the data year; None when unknown or mixed (the world average)
    data_version: str | None = None  # the grid data's provenance; None for user figures
    boundary: str | None = None  # "lifecycle" | "direct"; None: not stated (user-supplied)

    @property
    def where(self) -> str:
        """Region and boundary as a reader sees them: "FRA, lifecycle", "USA/CA,
        user-supplied", or "user-supplied" for a figure given with no region."""
        parts = [] if self.region == "custom" else [self.region]
        if self.boundary:
            parts.append(self.boundary)
        elif self.source == USER_SUPPLIED:
            parts.append(USER_SUPPLIED)
        return ", ".join(parts) or "unknown"

    @classmethod
    def custom(
        cls,
        g_per_kwh: float,
        label: str = USER_SUPPLIED,
        region: str = "custom",
    ) -> Intensity:
        """A user-supplied intensity, labelled as such, keeping the region the user gave.

        It may be market-based, a PPA or a measured local mix: ecotrain cannot tell, so it
        says "user-supplied" and leaves the boundary unstated.
        """
        try:
            value = float(g_per_kwh)
        except (TypeError, ValueError):
            raise UnknownRegion(
                f"grid intensity must be a number of g/kWh, got {g_per_kwh!r}"
            ) from None
        if not value >= 0:  # also rejects NaN
            raise UnknownRegion(f"grid intensity must be >= 0 g/kWh, got {g_per_kwh}")
        return cls(region=region, g_per_kwh=value, source=label)


def data_dir() -> Path:
    """The shipped copy of codecarbon's data folder (ecotrain/data/codecarbon)."""
    return DATA_DIR


def data_version() -> str:
    """Where the grid data comes from, e.g. ``"codecarbon 3.3.2 data files (shipped ...)"``."""
    return DATA_VERSION


@cache
def _json(relative: str) -> dict:
    path = data_dir() / "private_infra" / relative
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UnknownRegion(f"cannot read grid data file {path}: {e}") from None


def _countries() -> dict[str, dict]:
    return _json("global_energy_mix.json")


@cache
def _names() -> dict[str, str]:
    """Lower-case country name -> ISO-3."""
    return {v["country_name"].lower(): k for k, v in _countries().items() if "country_name" in v}


def _usa_states() -> dict[str, dict]:
    return {k: v for k, v in _json("2023/usa_emissions.json").items() if not k.startswith("_")}


@cache
def world_average() -> Intensity:
    """The default when no region is configured: the world's grid, stated as such.

    global_energy_mix.json has no world row, so this is its generation-weighted mean
    (sum of intensity x generation over sum of generation), from the same data as the
    country figures.
    """
    try:
        rows = [
            v
            for v in _countries().values()
            if v.get("total_TWh") and v.get("carbon_intensity") is not None
        ]
        total = sum(v["total_TWh"] for v in rows)
        g = sum(v["carbon_intensity"] * v["total_TWh"] for v in rows) / total
        years = sorted({v["year"] for v in rows if v.get("year")})
    except (UnknownRegion, ZeroDivisionError, TypeError, KeyError):
        return Intensity(
            "WORLD", WORLD_FALLBACK_G_PER_KWH, WORLD_FALLBACK_SOURCE, boundary=LIFECYCLE
        )
    # The rows are each country's latest year, not one year: say the range, claim no year.
    span = f"{years[0]}-{years[-1]}" if len(years) > 1 else (str(years[0]) if years else "?")
    return Intensity(
        region="WORLD",
        g_per_kwh=g,
        source=f"world average: generation-weighted mean of {len(rows)} countries' latest "
        f"rows (data years {span}) in codecarbon global_energy_mix.json (Our World in "
        "Data/Ember, lifecycle), used because no region is configured",
        year=None,
        data_version=data_version(),
        boundary=LIFECYCLE,
    )


def _usa(state: str) -> Intensity:
    states = _usa_states()
    year = _json("2023/usa_emissions.json").get("_source", {}).get("year")
    for name, entry in states.items():
        if state.upper() == entry.get("regionCode", "").upper() or state.lower() == name:
            return Intensity(
                region=f"USA/{entry['regionCode']}",
                g_per_kwh=entry["emissions"] * LBS_PER_MWH_TO_G_PER_KWH,
                source=f"EPA eGRID{year} state CO2e output rate, direct emissions, "
                "lbs/MWh x 0.45359 (codecarbon usa_emissions.json)",
                year=year,
                data_version=data_version(),
                boundary=DIRECT,
            )
    choices = {v["regionCode"]: f"USA/{v['regionCode']}" for v in states.values()}
    choices.update({k: f"USA/{v['regionCode']}" for k, v in states.items()})
    raise UnknownRegion(
        _message(f"USA/{state}", state, choices, "use a state code like USA/CA; " + WHERE_TO_SET)
    )


def _canada(province: str) -> Intensity:
    code = province.upper()
    name = CANADA_PROVINCES.get(code) or (
        province.lower() if province.lower() in CANADA_PROVINCES.values() else None
    )
    if name is None:
        choices = {c: f"CAN/{c}" for c in CANADA_PROVINCES}
        choices.update({n: f"CAN/{c}" for c, n in CANADA_PROVINCES.items()})
        known = ", ".join(sorted(CANADA_PROVINCES))
        raise UnknownRegion(
            _message(
                f"CAN/{province}", province, choices, f"use CAN/<code> ({known}); " + WHERE_TO_SET
            )
        )
    mix = _json("2023/canada_energy_mix.json")[name]
    factors = _json("carbon_intensity_per_source.json")
    # Shares are percentages that do not always add to exactly 100: normalise by their sum.
    shares = {k: float(mix[k]) for k in CANADA_SOURCES if k in mix}
    g = sum(share * factors[CANADA_SOURCES[k]] for k, share in shares.items()) / sum(
        shares.values()
    )
    code = next(c for c, n in CANADA_PROVINCES.items() if n == name)
    return Intensity(
        region=f"CAN/{code}",
        g_per_kwh=g,
        source="provincial generation mix 2023 x lifecycle factors per source, low-carbon "
        "sources included (codecarbon canada_energy_mix.json, carbon_intensity_per_source.json)",
        year=2023,
        data_version=data_version(),
        boundary=LIFECYCLE,
    )


def _country(iso3: str) -> Intensity:
    entry = _countries()[iso3]
    year = entry.get("year")
    return Intensity(
        region=iso3,
        g_per_kwh=float(entry["carbon_intensity"]),
        source=f"national grid mix {year}, lifecycle (Our World in Data/Ember, codecarbon "
        "global_energy_mix.json)",
        year=year,
        data_version=data_version(),
        boundary=LIFECYCLE,
    )


@cache
def _cloud_rows() -> dict[str, dict[str, str]]:
    """``"gcp:europe-west9"`` -> its row of cloud/impact.csv (the file starts with a BOM)."""
    path = data_dir() / "cloud" / "impact.csv"
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise UnknownRegion(f"cannot read grid data file {path}: {e}") from None
    return {f"{r['provider'].strip().lower()}:{r['region'].strip().lower()}": r for r in rows}


def _cloud(provider: str, region: str) -> Intensity:
    rows = _cloud_rows()
    key = f"{provider}:{region.strip().lower()}"
    row = rows.get(key)
    if row is None:
        choices = {k.split(":", 1)[1]: k for k in rows if k.startswith(provider + ":")}
        raise UnknownRegion(
            _message(
                key,
                region,
                choices,
                f"use one of the {len(choices)} {provider} regions "
                "in the cloud table, e.g. gcp:europe-west9; " + WHERE_TO_SET,
            )
        )
    where = ", ".join(x for x in (row.get("city"), row.get("country_name")) if x)
    return Intensity(
        region=key,
        g_per_kwh=float(row["impact"]),
        source=f"{row['providerName']} region {row['region']} ({where}): grid carbon "
        f"intensity, operational (direct) emissions, as published at {row['source']} "
        "(codecarbon cloud/impact.csv)",
        data_version=data_version(),
        boundary=DIRECT,
    )


_US = {"US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA"}
_CANADA = {"CA", "CAN", "CANADA"}


def _country_code(text: str) -> str | None:
    """ISO-3 code for an ISO-3 code or country name in the country file, else None."""
    if text.upper() in _countries():
        return text.upper()
    return _names().get(text.lower())


def canonical_region(region: str) -> str:
    """The canonical code for a region the lookup accepts ('France' -> 'FRA')."""
    return resolve_intensity(region).region


def resolve_intensity(region: str | None) -> Intensity:
    """The location-based intensity of ``region``; None or "" gives the stated world average.

    Accepts ISO-3 codes in any case (``FRA``, ``fra``), country names (``France``),
    sub-national regions ``USA/CA`` (or ``USA-CA``, ``US/California``) and ``CAN/QC``
    (or ``Canada/Quebec``), and Google Cloud regions ``gcp:europe-west9``. Anything else
    raises :class:`UnknownRegion`.
    """
    if region is None or not str(region).strip():
        return world_average()
    text = " ".join(str(region).split())
    iso = _country_code(text)
    if iso is not None:
        return _country(iso)
    if text.upper() == "WORLD":
        world = world_average()  # asked for, not a fallback: say so
        return replace(
            world,
            source=world.source.replace(
                "used because no region is configured", "region WORLD as given"
            ),
        )
    match = re.fullmatch(r"(.+?)\s*[/\-:]\s*(.+)", text)
    if match:
        head, sub = match.group(1), match.group(2)
        if head.upper() in _US:
            return _usa(sub)
        if head.upper() in _CANADA:
            return _canada(sub)
        if head.upper() in CLOUD_PROVIDERS:
            return _cloud(CLOUD_PROVIDERS[head.upper()], sub)
        if head.upper() in {"AWS", "AZURE"}:
            raise UnknownRegion(
                f"unknown region {text!r}: the cloud table has Google Cloud regions only "
                "(gcp:<region>); for other clouds give the country or US state of the data "
                "centre, e.g. USA/VA, or --intensity; " + WHERE_TO_SET
            )
        country = _country_code(head)
        if country is not None:
            raise UnknownRegion(
                f"unknown region {text!r}: no sub-national data for {country}, use {country}; "
                + WHERE_TO_SET
            )
    elif text.upper() in _US:
        return _country("USA")
    elif text.upper() == "CA":
        raise UnknownRegion(
            "ambiguous region 'CA': use USA/CA (California) or CAN (Canada); " + WHERE_TO_SET
        )
    choices = {code: code for code in _countries()}
    choices.update({name: code for name, code in _names().items()})
    raise UnknownRegion(_message(text, text, choices, HOW_TO_SET))


def _message(shown: str, text: str, choices: dict[str, str], how: str) -> str:
    """One line: what was wrong, close matches (difflib), and how to set a valid region."""
    keys = {k.lower(): v for k, v in choices.items()}
    import difflib  # only on the error path: keep it off the run path's imports

    close = difflib.get_close_matches(text.lower(), list(keys), n=5, cutoff=0.6)
    suggestions = list(dict.fromkeys(keys[c] for c in close))[:3]
    hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
    return f"unknown region {shown!r}{hint}: {how}"


def list_regions() -> list[str]:
    """Every region code the lookup accepts: ISO-3 countries, USA/xx, CAN/xx, then gcp:xx."""
    usa = sorted(f"USA/{v['regionCode']}" for v in _usa_states().values())
    canada = [f"CAN/{c}" for c in sorted(CANADA_PROVINCES)]
    return sorted(_countries()) + usa + canada + sorted(_cloud_rows())


def _zone_name() -> str | None:
    zone = os.environ.get("TZ", "").lstrip(":").strip()
    if not zone:
        try:
            zone = Path(TIMEZONE_FILE).read_text().strip()
        except OSError:
            zone = ""
    if not zone:
        # Read the link itself, not its final target: America/Montreal may link to Toronto.
        try:
            zone = os.readlink(LOCALTIME)
        except OSError:
            return None
    if "zoneinfo/" in zone:
        zone = zone.split("zoneinfo/", 1)[1]
    return zone or None


def guess_region() -> str | None:
    """The host's region from its configured time zone (TZ, /etc/timezone, /etc/localtime).

    No network. Returns None when the zone is unset, UTC, or not in the small table
    :data:`TIMEZONE_REGIONS`; the caller then uses :func:`world_average` and says so.
    """
    zone = _zone_name()
    return TIMEZONE_REGIONS.get(zone) if zone else None
