"""Published training footprints of well-known models (data/catalogue.toml, each cited).

The last resort for a checkpoint's footprint, after ecotrain-recorded runs, a registered
footprint and a local model card. Matched by Hugging Face repo id (case-insensitive).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOGUE_FILE = Path(__file__).parent / "data" / "catalogue.toml"


@dataclass(frozen=True)
class Published:
    """One model's published training footprint."""

    key: str
    aliases: tuple[str, ...]
    citation: str
    gpu_model: str | None = None
    gpu_hours: float | None = None
    energy_kwh: float | None = None  # the energy as published
    it_energy_kwh: float | None = None  # set when the published energy is before any PUE
    co2_kg: float | None = None
    pue: float | None = None
    intensity_g_per_kwh: float | None = None
    verified: bool = False
    checked: str | None = None  # where a verified figure was re-checked


@cache
def entries() -> dict[str, Published]:
    """Every catalogue entry by key."""
    with CATALOGUE_FILE.open("rb") as f:
        data = tomllib.load(f)
    return {
        key: Published(key=key, aliases=tuple(e.pop("aliases", ())), **e) for key, e in data.items()
    }


@cache
def _by_alias() -> dict[str, Published]:
    out = {}
    for entry in entries().values():
        out[entry.key.lower()] = entry
        for alias in entry.aliases:
            out[alias.lower()] = entry
    return out


def lookup(name: str | None) -> Published | None:
    """The published footprint of a model by repo id or catalogue key, or None."""
    if not name:
        return None
    return _by_alias().get(name.strip().lower())
