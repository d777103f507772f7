"""The one grid carbon-intensity lookup: location-based g CO2e/kWh by country or region.

Data: codecarbon's files, read straight from its package folder (``import codecarbon``
would initialise NVML and cost ~1 s): ``global_energy_mix.json`` (Our World in Data / Ember,
by ISO-3 country), ``2023/usa_emissions.json`` (EPA eGRID 2023 by state, lbs/MWh) and
``2023/canada_energy_mix.json`` (generation shares by province, turned into an intensity
with ``carbon_intensity_per_source.json``). No web service is ever called, and nothing is
read until the first lookup.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ecotrain.errors import UserError

LBS_PER_MWH_TO_G_PER_KWH = 0.45359237  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh

# Only if the country file cannot be read: the same file's generation-weighted mean
# (codecarbon 3.3.2 data: 480.6 g/kWh), kept so a missing file still gives a stated figure.
WORLD_FALLBACK_G_PER_KWH = 481.0
WORLD_FALLBACK_SOURCE = (
    "world average 481 g/kWh (generation-weighted mean of codecarbon 3.3.2 "
    "global_energy_mix.json, Our World in Data/Ember 2022-23), built-in constant"
)

WHERE_TO_SET = 'set it with --region, ECOTRAIN_REGION or region = "..." in .ecotrain.toml'
HOW_TO_SET = "use an ISO-3 country code like FRA or USA, or USA/CA, CAN/QC; " + WHERE_TO_SET

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

    region: str  # canonical: "FRA", "USA/CA", "CAN/QC", "WORLD", or "custom"
    g_per_kwh: float
    source: str
    year: int | None = None
    data_version: str | None = None  # e.g. "codecarbon 3.3.2"; None for user figures

    @classmethod
    def custom(
        cls,
        g_per_kwh: float,
        label: str = "user override (market-based)",
        region: str = "custom",
    ) -> Intensity:
        """A user-stated intensity (market-based, a PPA, a measured local mix), labelled."""
        try:
            value = float(g_per_kwh)
        except (TypeError, ValueError):
            raise UnknownRegion(
                f"grid intensity must be a number of g/kWh, got {g_per_kwh!r}"
            ) from None
        if not value >= 0:  # also rejects NaN
            raise UnknownRegion(f"grid intensity must be >= 0 g/kWh, got {g_per_kwh}")
        return cls(region=region, g_per_kwh=value, source=label)


@cache
def data_dir() -> Path:
    """codecarbon's data folder, found without importing codecarbon."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise UnknownRegion("codecarbon's data files are missing: pip install codecarbon")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def data_version() -> str:
    """The codecarbon version whose data files are used, e.g. ``"codecarbon 3.3.2"``."""
    # Read from its _version.py: importlib.metadata costs ~30 ms on the run path.
    try:
        text = (data_dir().parent / "_version.py").read_text()
        match = re.search(r"""__version__\s*=\s*["']([^"']+)""", text)
        return f"codecarbon {match.group(1)}" if match else "codecarbon (unknown version)"
    except (OSError, UnknownRegion):
        return "codecarbon (unknown version)"


@cache
def _json(relative: str) -> dict:
    path = data_dir() / "private_infra" / relative
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UnknownRegion(f"cannot read codecarbon data file {path}: {e}") from None


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
        return Intensity("WORLD", WORLD_FALLBACK_G_PER_KWH, WORLD_FALLBACK_SOURCE)
    return Intensity(
        region="WORLD",
        g_per_kwh=g,
        source=f"world average: generation-weighted mean of {len(rows)} countries in "
        "codecarbon global_energy_mix.json (Our World in Data/Ember), used because no "
        "region is configured",
        year=years[-1] if years else None,
        data_version=data_version(),
    )


def _usa(state: str) -> Intensity:
    states = _usa_states()
    year = _json("2023/usa_emissions.json").get("_source", {}).get("year")
    for name, entry in states.items():
        if state.upper() == entry.get("regionCode", "").upper() or state.lower() == name:
            return Intensity(
                region=f"USA/{entry['regionCode']}",
                g_per_kwh=entry["emissions"] * LBS_PER_MWH_TO_G_PER_KWH,
                source=f"EPA eGRID{year} state CO2e output rate, lbs/MWh x 0.45359 "
                "(codecarbon usa_emissions.json)",
                year=year,
                data_version=data_version(),
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
    )


def _country(iso3: str) -> Intensity:
    entry = _countries()[iso3]
    year = entry.get("year")
    return Intensity(
        region=iso3,
        g_per_kwh=float(entry["carbon_intensity"]),
        source=f"national grid mix {year} (Our World in Data/Ember, codecarbon "
        "global_energy_mix.json)",
        year=year,
        data_version=data_version(),
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

    Accepts ISO-3 codes in any case (``FRA``, ``fra``), country names (``France``), and
    sub-national regions ``USA/CA`` (or ``USA-CA``, ``US/California``) and ``CAN/QC``
    (or ``Canada/Quebec``). Anything else raises :class:`UnknownRegion`.
    """
    if region is None or not str(region).strip():
        return world_average()
    text = " ".join(str(region).split())
    iso = _country_code(text)
    if iso is not None:
        return _country(iso)
    if text.upper() == "WORLD":
        return world_average()
    match = re.fullmatch(r"(.+?)\s*[/\-:]\s*(.+)", text)
    if match:
        head, sub = match.group(1), match.group(2)
        if head.upper() in _US:
            return _usa(sub)
        if head.upper() in _CANADA:
            return _canada(sub)
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
    close = difflib.get_close_matches(text.lower(), list(keys), n=5, cutoff=0.6)
    suggestions = list(dict.fromkeys(keys[c] for c in close))[:3]
    hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
    return f"unknown region {shown!r}{hint}: {how}"


def list_regions() -> list[str]:
    """Every region code the lookup accepts: ISO-3 countries, then USA/xx, then CAN/xx."""
    usa = sorted(f"USA/{v['regionCode']}" for v in _usa_states().values())
    return sorted(_countries()) + usa + [f"CAN/{c}" for c in sorted(CANADA_PROVINCES)]


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
