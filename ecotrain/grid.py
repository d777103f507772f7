"""The one grid carbon-intensity lookup: location-based g CO2e/kWh by country or region.

Data: codecarbon's files, read straight from its package folder (``import codecarbon``
would initialise NVML and cost ~1 s): ``global_energy_mix.json`` (Our World in Data / Ember,
by ISO-3 country), ``2023/usa_emissions.json`` (EPA eGRID 2023 by state, lbs/MWh) and
``2023/canada_energy_mix.json`` (generation shares by province, turned into an intensity
with ``carbon_intensity_per_source.json``). No web service is ever called.
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

LBS_PER_MWH_TO_G_PER_KWH = 0.45359237  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh

# Used when no region is configured, with its own source; never silently assumed as a country.
WORLD_AVERAGE_G_PER_KWH = 475.0
WORLD_AVERAGE_SOURCE = "world average (IEA Global Energy & CO2 Status Report 2019, via codecarbon)"

CANADA_PROVINCES = {
    "AB": "alberta", "BC": "british columbia", "MB": "manitoba", "NB": "new brunswick",
    "NL": "newfoundland and labrador", "NS": "nova scotia", "NT": "northwest territories",
    "NU": "nunavut", "ON": "ontario", "PE": "prince edward island", "QC": "quebec",
    "SK": "saskatchewan", "YT": "yukon",
}  # fmt: skip
# canada_energy_mix.json key -> carbon_intensity_per_source.json key
CANADA_SOURCES = {
    "naturalGas": "natural_gas", "petroleum": "petroleum", "coal": "coal", "nuclear": "nuclear",
    "hydro": "hydroelectricity", "wind": "wind", "solar": "solar", "biomass": "biomass",
    "tidal": "hydroelectricity", "other": "fossil",
}  # fmt: skip

# IANA time zones -> region, for guessing the host's location without a network call.
TIMEZONE_REGIONS = {
    "Europe/Paris": "FRA", "Europe/Berlin": "DEU", "Europe/London": "GBR",
    "Europe/Madrid": "ESP", "Europe/Rome": "ITA", "Europe/Amsterdam": "NLD",
    "Europe/Brussels": "BEL", "Europe/Zurich": "CHE", "Europe/Stockholm": "SWE",
    "Europe/Oslo": "NOR", "Europe/Helsinki": "FIN", "Europe/Copenhagen": "DNK",
    "Europe/Warsaw": "POL", "Europe/Vienna": "AUT", "Europe/Dublin": "IRL",
    "Europe/Lisbon": "PRT", "America/Los_Angeles": "USA/CA", "America/New_York": "USA/NY",
    "America/Chicago": "USA/IL", "America/Denver": "USA/CO", "America/Toronto": "CAN/ON",
    "America/Montreal": "CAN/QC", "America/Vancouver": "CAN/BC", "Asia/Tokyo": "JPN",
    "Asia/Seoul": "KOR", "Asia/Shanghai": "CHN", "Asia/Singapore": "SGP",
    "Asia/Kolkata": "IND", "Australia/Sydney": "AUS", "America/Sao_Paulo": "BRA",
}  # fmt: skip


class UnknownRegion(ValueError):
    """The region is not in the data; the message says how to set a valid one."""


@dataclass(frozen=True)
class Intensity:
    """A grid carbon intensity and where it came from."""

    region: str
    g_per_kwh: float
    source: str
    year: int | None = None
    data_version: str | None = None

    @classmethod
    def custom(cls, g_per_kwh: float, label: str = "user override") -> Intensity:
        """A user-stated intensity (market-based, a PPA, a measured local mix), labelled."""
        if g_per_kwh < 0:
            raise UnknownRegion(f"grid intensity must be >= 0 g/kWh, got {g_per_kwh}")
        return cls(region="custom", g_per_kwh=float(g_per_kwh), source=label)


@cache
def data_dir() -> Path:
    """codecarbon's data folder, found without importing codecarbon."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise UnknownRegion("codecarbon's data files are missing: pip install codecarbon")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def data_version() -> str:
    """The codecarbon version whose data files are used."""
    # Read from its _version.py: importlib.metadata costs ~30 ms on the run path.
    try:
        text = (data_dir().parent / "_version.py").read_text()
        match = re.search(r"""__version__\s*=\s*["']([^"']+)""", text)
        return f"codecarbon {match.group(1)}" if match else "codecarbon (unknown version)"
    except OSError:
        return "codecarbon (unknown version)"


@cache
def _json(relative: str) -> dict:
    return json.loads((data_dir() / "private_infra" / relative).read_text())


@cache
def _countries() -> dict[str, dict]:
    return _json("global_energy_mix.json")


@cache
def _names() -> dict[str, str]:
    """Lower-case country name -> ISO-3."""
    return {v["country_name"].lower(): k for k, v in _countries().items()}


def _usa(state: str) -> Intensity:
    data = _json("2023/usa_emissions.json")
    year = data.get("_source", {}).get("year")
    for name, entry in data.items():
        if name.startswith("_"):
            continue
        if state.upper() == entry.get("regionCode", "").upper() or state.lower() == name:
            return Intensity(
                region=f"USA/{entry['regionCode']}",
                g_per_kwh=round(entry["emissions"] * LBS_PER_MWH_TO_G_PER_KWH, 3),
                source=f"EPA eGRID{year} state CO2e output rate (codecarbon usa_emissions.json)",
                year=year,
                data_version=data_version(),
            )
    raise UnknownRegion(f"unknown US state {state!r}: use a two-letter code like USA/CA")


def _canada(province: str) -> Intensity:
    code = province.upper()
    name = CANADA_PROVINCES.get(code) or (
        province.lower() if province.lower() in CANADA_PROVINCES.values() else None
    )
    if name is None:
        known = ", ".join(sorted(CANADA_PROVINCES))
        raise UnknownRegion(f"unknown Canadian province {province!r}: use CAN/<code> ({known})")
    mix = _json("2023/canada_energy_mix.json")[name]
    factors = _json("carbon_intensity_per_source.json")
    total = sum(v for k, v in mix.items() if k in CANADA_SOURCES)
    g = sum(mix[k] * factors[CANADA_SOURCES[k]] for k in CANADA_SOURCES if k in mix) / total
    code = next(c for c, n in CANADA_PROVINCES.items() if n == name)
    return Intensity(
        region=f"CAN/{code}",
        g_per_kwh=round(g, 3),
        source="provincial generation mix 2023 x lifecycle factors per source "
        "(codecarbon canada_energy_mix.json, carbon_intensity_per_source.json)",
        year=2023,
        data_version=data_version(),
    )


def _country(iso3: str) -> Intensity:
    entry = _countries()[iso3]
    return Intensity(
        region=iso3,
        g_per_kwh=float(entry["carbon_intensity"]),
        source=f"national grid mix {entry.get('year')} (Our World in Data/Ember via codecarbon "
        "global_energy_mix.json)",
        year=entry.get("year"),
        data_version=data_version(),
    )


def resolve_intensity(region: str | None) -> Intensity:
    """The location-based intensity of ``region``; None gives the stated world average.

    Accepts ISO-3 codes (``FRA``), country names (``France``), and sub-national regions
    ``USA/CA`` (or ``USA-CA``, ``US/California``) and ``CAN/QC``.
    """
    if region is None or not str(region).strip():
        return Intensity(
            "WORLD", WORLD_AVERAGE_G_PER_KWH, WORLD_AVERAGE_SOURCE, 2019, data_version()
        )
    text = str(region).strip()
    country, sep, sub = text.replace("-", "/", 1).partition("/")
    country = country.strip()
    iso = country.upper()
    if iso in ("US", "USA") or country.lower() == "united states":
        return _usa(sub.strip()) if sep else _country("USA")
    if iso in ("CA", "CAN") and sep or country.lower() == "canada" and sep:
        return _canada(sub.strip())
    if iso in _countries() and not sep:
        return _country(iso)
    if country.lower() in _names() and not sep:
        return _country(_names()[country.lower()])
    raise UnknownRegion(_unknown_message(text))


def _unknown_message(text: str) -> str:
    choices = list(_countries()) + [v["country_name"] for v in _countries().values()]
    close = difflib.get_close_matches(text.upper(), [c.upper() for c in choices], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (
        f"unknown region {text!r}{hint}: use an ISO-3 country code like FRA or USA, or "
        'USA/CA, CAN/QC; set it with --region, ECOTRAIN_REGION or region = "..." in '
        ".ecotrain.toml"
    )


def list_regions() -> list[str]:
    """Every region code the lookup accepts."""
    usa = [
        f"USA/{v['regionCode']}"
        for k, v in _json("2023/usa_emissions.json").items()
        if not k.startswith("_")
    ]
    return sorted(_countries()) + sorted(usa) + [f"CAN/{c}" for c in sorted(CANADA_PROVINCES)]


def guess_region() -> str | None:
    """The host's region from its configured time zone (no network), or None."""
    zone = os.environ.get("TZ", "").lstrip(":")
    if not zone:
        try:
            zone = Path("/etc/timezone").read_text().strip()
        except OSError:
            try:
                zone = str(Path("/etc/localtime").resolve()).split("zoneinfo/", 1)[1]
            except (OSError, IndexError):
                return None
    return TIMEZONE_REGIONS.get(zone)
