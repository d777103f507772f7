"""The one accounting function: IT energy -> facility energy (PUE) -> CO2e; energy or
GPU-hours -> dollars.

    it_kwh       = (gpu_j + cpu_j + ram_j) / 3.6e6
    facility_kwh = it_kwh x PUE
    co2_kg       = facility_kwh x intensity_g_per_kwh / 1000
    cost_usd     = facility_kwh x USD/kWh              (cost_method "electricity", on-premise)
                 = gpu_hours x USD/GPU-hour            (cost_method "gpu_hour", cloud)

Every result carries the inputs it was computed with (PUE and its source, intensity and its
source, price and its source), so a record can be re-derived and an old run keeps its numbers.
The reuse counterfactual ("produce this checkpoint again here") goes through the same
:func:`account`. Stdlib only: this module is on the run path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecotrain.errors import UserError
from ecotrain.grid import Intensity, guess_region, resolve_intensity
from ecotrain.prices import electricity_price, gpu_hour_price, load_prices

J_PER_KWH = 3.6e6
# Uptime Institute's global average data-centre PUE (2023-24 surveys: 1.56-1.58), the
# figure Green Algorithms and ML CO2 Impact also use. Stated in every record, overridable.
DEFAULT_PUE = 1.56
DEFAULT_PUE_SOURCE = "default: global average data-centre PUE 1.56 (Uptime Institute 2024)"
COST_METHODS = ("electricity", "gpu_hour")


@dataclass(frozen=True)
class Site:
    """Where energy is turned into CO2e and dollars: PUE, grid intensity, price."""

    pue: float
    pue_source: str
    intensity: Intensity
    cost_method: str = "electricity"
    price: float | None = None  # USD/kWh or USD/GPU-hour; None: look up by GPU model
    price_source: str = ""
    prices: Any = None  # the price table, for per-GPU-model lookups


@dataclass
class Energy:
    """IT energy by component, each with how it was obtained."""

    gpu_j: float | None = None
    gpu_method: str | None = None
    cpu_j: float | None = None
    cpu_method: str | None = None
    ram_j: float | None = None
    ram_method: str | None = None

    @property
    def it_kwh(self) -> float:
        return sum(v or 0.0 for v in (self.gpu_j, self.cpu_j, self.ram_j)) / J_PER_KWH

    @classmethod
    def from_kwh(cls, it_kwh: float, method: str = "recorded") -> Energy:
        """A total known only as kWh (a published or recorded footprint), put on the GPU line."""
        return cls(gpu_j=it_kwh * J_PER_KWH, gpu_method=method)


@dataclass
class Accounting:
    """The result of :func:`account`, with every input kept."""

    energy: Energy
    site: Site
    it_energy_kwh: float
    facility_energy_kwh: float
    co2_kg: float
    cost_usd: float | None
    price: float | None
    price_source: str
    notes: list[str] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        """The runs-table columns this accounting fills."""
        e = self.energy
        return {
            "gpu_energy_j": e.gpu_j,
            "gpu_method": e.gpu_method,
            "cpu_energy_j": e.cpu_j,
            "cpu_method": e.cpu_method,
            "ram_energy_j": e.ram_j,
            "ram_method": e.ram_method,
            "it_energy_kwh": self.it_energy_kwh,
            "pue": self.site.pue,
            "pue_source": self.site.pue_source,
            "facility_energy_kwh": self.facility_energy_kwh,
            "region": self.site.intensity.region,
            "intensity_g_per_kwh": self.site.intensity.g_per_kwh,
            "intensity_source": self.site.intensity.source,
            "co2_kg": self.co2_kg,
            "cost_usd": self.cost_usd,
            "cost_method": self.site.cost_method,
            "price": self.price,
            "price_source": self.price_source,
            "data_version": self.site.intensity.data_version,
        }


def account(
    energy: Energy, site: Site, gpu_hours: float = 0.0, gpu_model: str | None = None
) -> Accounting:
    """Turn IT energy (and GPU-hours) at ``site`` into facility energy, CO2e and cost."""
    it_kwh = energy.it_kwh
    facility_kwh = it_kwh * site.pue
    co2_kg = facility_kwh * site.intensity.g_per_kwh / 1000.0
    price, price_source, notes = site.price, site.price_source, []
    if site.cost_method == "gpu_hour":
        if price is None and gpu_model:
            found = gpu_hour_price(gpu_model, site.prices)
            if found is not None:
                price, price_source = found.price, found.source
        if not gpu_hours:
            cost = 0.0
        elif price is None:
            cost = None
            notes.append(f"no GPU-hour price for {gpu_model or 'this GPU'}: set price_per_gpu_hour")
        else:
            cost = gpu_hours * price
    else:
        cost = facility_kwh * price if price is not None else None
    return Accounting(
        energy=energy,
        site=site,
        it_energy_kwh=it_kwh,
        facility_energy_kwh=facility_kwh,
        co2_kg=co2_kg,
        cost_usd=cost,
        price=price,
        price_source=price_source,
        notes=notes,
    )


def site_from_settings(settings: Mapping[str, Any]) -> Site:
    """Build the Site from flat settings (region, pue, intensity, cost_method, prices)."""
    pue = settings.get("pue")
    if pue is None:
        pue, pue_source = DEFAULT_PUE, DEFAULT_PUE_SOURCE
    else:
        pue_source = "configured"
    if not 1.0 <= float(pue) <= 5.0:
        raise UserError(f"PUE must be between 1.0 and 5.0, got {pue}")
    region = settings.get("region")
    region_note = ""
    if not region:
        region = guess_region()
        region_note = " (region guessed from the host's time zone)" if region else ""
    intensity = resolve_intensity(region)
    if region_note:
        intensity = Intensity(
            intensity.region,
            intensity.g_per_kwh,
            intensity.source + region_note,
            intensity.year,
            intensity.data_version,
        )
    if settings.get("intensity") is not None:
        intensity = Intensity(
            region=intensity.region,
            g_per_kwh=float(settings["intensity"]),
            source="user override (market-based or custom), not location-based",
            data_version=None,
        )
        if intensity.g_per_kwh < 0:
            raise UserError("grid intensity must be >= 0 g/kWh")
    method = settings.get("cost_method") or "electricity"
    if method not in COST_METHODS:
        raise UserError(f"cost_method must be one of {', '.join(COST_METHODS)}, got {method!r}")
    prices = load_prices(settings.get("prices_file"))
    if method == "electricity":
        if settings.get("price_per_kwh") is not None:
            price, source = float(settings["price_per_kwh"]), "configured"
        else:
            found = electricity_price(intensity.region, prices)
            price, source = found.price, found.source
    else:
        if settings.get("price_per_gpu_hour") is not None:
            price, source = float(settings["price_per_gpu_hour"]), "configured"
        else:
            price, source = None, ""
    if price is not None and price < 0:
        raise UserError(f"price must be >= 0, got {price}")
    return Site(
        pue=float(pue),
        pue_source=pue_source,
        intensity=intensity,
        cost_method=method,
        price=price,
        price_source=source,
        prices=prices,
    )


def account_summaries(
    summaries: Sequence[Any], site: Site, duration_s: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Account a run's sensor summaries: (accounting columns, hardware columns)."""
    energy = Energy()
    hardware: dict[str, Any] = {}
    for s in summaries:
        current = getattr(energy, f"{s.component}_j")
        setattr(energy, f"{s.component}_j", (current or 0.0) + s.energy_j)
        previous = getattr(energy, f"{s.component}_method")
        setattr(
            energy,
            f"{s.component}_method",
            s.method if previous in (None, s.method) else "mixed",
        )
        hw = s.hardware or {}
        if s.component == "gpu":
            hardware.update(
                gpu_model=hw.get("model"),
                gpu_count=hw.get("count"),
                gpu_hours=hw.get("gpu_hours"),
                gpu_mean_power_w=hw.get("mean_power_w"),
                gpu_max_power_w=hw.get("max_power_w"),
                gpu_util_pct=hw.get("mean_utilisation"),
                gpu_devices=hw.get("devices"),
            )
        elif s.component == "cpu":
            hardware.update(
                cpu_model=hw.get("cpu_model"),
                cpu_count=hw.get("cpu_count"),
                cpu_seconds=hw.get("cpu_seconds"),
            )
        elif s.component == "ram":
            hardware["ram_gb_mean"] = hw.get("mean_rss_gb")
    acc = account(
        energy,
        site,
        gpu_hours=hardware.get("gpu_hours") or 0.0,
        gpu_model=hardware.get("gpu_model"),
    )
    record = acc.as_record()
    if acc.notes:
        record["accounting_notes"] = acc.notes
    return record, hardware
