"""Published training footprints of well-known models (data/catalogue.toml, each cited).

The last resort for a checkpoint's footprint, after ecotrain-recorded runs, a registered
footprint and a local model card. Matched by Hugging Face repo id (case-insensitive).

Each entry keeps what its source states and on what basis, so its CO2e can be recomputed
from its own inputs (:meth:`Published.recompute`; a regression test does this for every
entry):

    IT energy       = GPU-hours x per-GPU power           (power_w: what the source used)
                    = total system power x hours          (system_power_w, e.g. Strubell)
                    = the stated energy (/ PUE when the source states facility energy)
    facility energy = IT energy x pue                     (pue: the PUE the source applied;
                                                           1.0 when it applied none)
    CO2e            = facility energy x intensity         (the intensity the source used)

``it_energy_kwh`` and ``energy_kwh`` (facility) are filled from these when the source does
not state them, so the reuse counterfactual never multiplies a facility figure by a PUE
again. Every number has a source (``sources``); ``verified`` entries cite primary sources
only (the paper, its table, the official model card); others say what they rest on.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

CATALOGUE_FILE = Path(__file__).parent / "data" / "catalogue.toml"
ENERGY_BASES = ("it", "facility")


@dataclass(frozen=True)
class Recomputed:
    """A catalogue entry's figures recomputed from its stored inputs (None: not derivable)."""

    it_energy_kwh: float | None
    facility_energy_kwh: float | None
    co2_kg: float | None
    how: str


@dataclass(frozen=True)
class Published:
    """One model's published training footprint, with the basis of every figure."""

    key: str
    aliases: tuple[str, ...]
    citation: str
    gpu_model: str | None = None  # key in data/gpus.toml
    gpus: int | None = None  # accelerators used at once
    hours: float | None = None  # wall-clock hours
    gpu_hours: float | None = None
    power_w: float | None = None  # per-GPU power the source used (TDP, cap or measured)
    system_power_w: float | None = None  # measured total system power (all GPUs + host)
    energy_kwh: float | None = None  # facility energy (derived: stated, or IT x pue)
    it_energy_kwh: float | None = None  # IT energy (derived: stated, or from the inputs)
    stated_energy_kwh: float | None = None  # the energy figure the source prints
    energy_basis: str | None = None  # what stated_energy_kwh is: "it" | "facility"
    co2_kg: float | None = None  # the CO2e as published
    pue: float | None = None  # the PUE applied in the published CO2e (1.0: none applied)
    intensity_g_per_kwh: float | None = None  # the grid intensity the source used
    co2_basis: str = "location-based"  # location-based | market-based | unstated
    verified: bool = False  # every number checked against a primary source
    checked: str | None = None  # where the verified figures were checked
    secondary: bool = False  # built (partly) from secondary sources; `note` says which
    note: str | None = None
    sources: dict[str, str] = field(default_factory=dict)  # input name -> page/table

    def recompute(self) -> Recomputed:
        """The entry's IT energy, facility energy and CO2e from its own stored inputs."""
        pue = self.pue if self.pue is not None else 1.0
        if self.gpu_hours and self.power_w:
            it = self.gpu_hours * self.power_w / 1000.0
            how = f"{self.gpu_hours:,.0f} GPU-h x {self.power_w:g} W"
        elif self.system_power_w and self.hours:
            it = self.system_power_w * self.hours / 1000.0
            how = f"{self.system_power_w:,.2f} W total system power x {self.hours:g} h"
        elif self.gpus and self.hours and self.power_w:
            it = self.gpus * self.hours * self.power_w / 1000.0
            how = f"{self.gpus} x {self.hours:g} h x {self.power_w:g} W"
        elif self.stated_energy_kwh is not None:
            it = self.stated_energy_kwh / (pue if self.energy_basis == "facility" else 1.0)
            how = f"stated {self.energy_basis or 'it'} energy {self.stated_energy_kwh:,.0f} kWh"
        else:
            return Recomputed(None, None, None, "no energy inputs published")
        facility = it * pue
        how += f" x PUE {pue:g}"
        co2 = None
        if self.intensity_g_per_kwh is not None:
            co2 = facility * self.intensity_g_per_kwh / 1000.0
            how += f" x {self.intensity_g_per_kwh:g} g/kWh"
        return Recomputed(it, facility, co2, how)


def _entry(key: str, raw: dict[str, Any]) -> Published:
    """A Published from one TOML table, with IT and facility energy derived where missing."""
    raw = dict(raw)
    aliases = tuple(raw.pop("aliases", ()))
    sources = dict(raw.pop("sources", {}))
    basis = raw.get("energy_basis")
    if basis is not None and basis not in ENERGY_BASES:
        raise ValueError(f"catalogue entry {key}: energy_basis must be 'it' or 'facility'")
    entry = Published(key=key, aliases=aliases, sources=sources, **raw)
    pue = entry.pue if entry.pue is not None else 1.0
    stated = entry.stated_energy_kwh
    if stated is not None:  # a published energy wins over one derived from the inputs
        it = stated / pue if basis == "facility" else stated
    else:
        it = entry.recompute().it_energy_kwh
    facility = stated if stated is not None and basis == "facility" else None
    if facility is None and it is not None and entry.pue is not None:
        facility = it * entry.pue  # no PUE published: the facility energy stays unknown
    return replace(entry, it_energy_kwh=it, energy_kwh=facility)


@cache
def entries() -> dict[str, Published]:
    """Every catalogue entry by key."""
    with CATALOGUE_FILE.open("rb") as f:
        data = tomllib.load(f)
    return {key: _entry(key, e) for key, e in data.items()}


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
