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
:func:`account`, via :func:`reprice`. Stdlib only: this module is on the run path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ecotrain.errors import UserError
from ecotrain.grid import Intensity, guess_region, resolve_intensity, world_average
from ecotrain.prices import PriceTable, electricity_price, gpu_hour_price, load_prices

J_PER_KWH = 3.6e6
# Uptime Institute's global average data-centre PUE (2023-24 surveys: 1.56-1.58), the
# figure Green Algorithms and ML CO2 Impact also use. Stated in every record, overridable.
DEFAULT_PUE = 1.56
DEFAULT_PUE_SOURCE = "default: global average data-centre PUE 1.56 (Uptime Institute 2024)"
MAX_PUE = 5.0  # beyond this a value is a typo (e.g. 15 for 1.5), not a data centre
COST_METHODS = ("electricity", "gpu_hour")
CURRENCY = "USD"

# The runs-table columns as_record() fills, in schema order (ecotrain/store/schema.py).
RECORD_KEYS = (
    "gpu_energy_j", "gpu_method", "cpu_energy_j", "cpu_method", "ram_energy_j", "ram_method",
    "it_energy_kwh", "pue", "pue_source", "facility_energy_kwh", "region",
    "intensity_g_per_kwh", "intensity_source", "intensity_boundary", "co2_kg", "cost_usd",
    "cost_method", "price", "price_source",
)  # fmt: skip


class SettingsError(UserError, ValueError):
    """A bad accounting setting (PUE, intensity, price, cost method); one line."""


@dataclass(frozen=True)
class Site:
    """Where energy is turned into CO2e and dollars: PUE, grid intensity, price."""

    pue: float
    pue_source: str
    intensity: Intensity
    cost_method: str = "electricity"  # "electricity" | "gpu_hour"
    price: float | None = None  # USD/kWh or USD/GPU-hour; None: look up by the run's GPU
    price_source: str = ""
    prices: PriceTable | None = field(default=None, repr=False, compare=False)
    currency: str = CURRENCY  # every price and cost is in US dollars


@dataclass
class Energy:
    """IT energy by component in joules, each tagged with how it was obtained.

    Methods: ``measured`` (NVML energy counter, RAPL), ``integrated`` (power samples),
    ``modelled`` (TDP x utilisation, RAM model), ``estimated`` (the calculator),
    ``recorded`` (a past or published total). The hardware fields are optional context:
    :func:`account` uses ``gpu_hours`` and ``gpu_model`` when not given explicitly.
    """

    gpu_j: float | None = None
    gpu_method: str | None = None
    cpu_j: float | None = None
    cpu_method: str | None = None
    ram_j: float | None = None
    ram_method: str | None = None
    duration_s: float | None = None
    gpu_count: int | None = None
    gpu_hours: float | None = None
    gpu_model: str | None = None

    @property
    def it_kwh(self) -> float:
        """GPU + CPU + RAM energy in kWh; a missing component counts as nothing measured."""
        return sum(v or 0.0 for v in (self.gpu_j, self.cpu_j, self.ram_j)) / J_PER_KWH

    @classmethod
    def from_kwh(cls, it_kwh: float, method: str = "recorded") -> Energy:
        """A total known only as kWh (a published or recorded footprint), put on the GPU line."""
        return cls(gpu_j=it_kwh * J_PER_KWH, gpu_method=method)

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> Energy:
        """The energy of a stored run (a runs-table row), to account it again elsewhere."""
        return cls(
            gpu_j=row.get("gpu_energy_j"),
            gpu_method=row.get("gpu_method"),
            cpu_j=row.get("cpu_energy_j"),
            cpu_method=row.get("cpu_method"),
            ram_j=row.get("ram_energy_j"),
            ram_method=row.get("ram_method"),
            duration_s=row.get("duration_s"),
            gpu_count=row.get("gpu_count"),
            gpu_hours=row.get("gpu_hours"),
            gpu_model=row.get("gpu_model"),
        )


@dataclass
class Accounting:
    """The result of :func:`account`, with every input kept."""

    energy: Energy
    site: Site
    it_energy_kwh: float
    facility_energy_kwh: float
    co2_kg: float
    cost_usd: float | None  # None: no price applies; cost_reason says why
    price: float | None
    price_source: str
    notes: list[str] = field(default_factory=list)
    gpu_hours: float = 0.0
    cost_reason: str | None = None

    def as_record(self) -> dict[str, Any]:
        """Exactly the runs-table columns this accounting fills (see :data:`RECORD_KEYS`)."""
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
            "intensity_boundary": self.site.intensity.boundary,
            "co2_kg": self.co2_kg,
            "cost_usd": self.cost_usd,
            "cost_method": self.site.cost_method,
            "price": self.price,
            "price_source": self.price_source,
        }


def account(
    energy: Energy,
    site: Site,
    gpu_hours: float | None = None,
    gpu_model: str | None = None,
) -> Accounting:
    """Turn IT energy (and GPU-hours) at ``site`` into facility energy, CO2e and cost.

    ``gpu_hours`` and ``gpu_model`` default to the ones ``energy`` carries. Under GPU-hour
    pricing without a site price, the price is looked up by ``gpu_model``. When no price
    applies (no GPU under GPU-hour pricing, an unknown GPU, no electricity price), the cost
    is None and ``cost_reason`` says why: never a silent zero.
    """
    hours = float(gpu_hours if gpu_hours is not None else energy.gpu_hours or 0.0)
    model = gpu_model or energy.gpu_model
    it_kwh = energy.it_kwh
    facility_kwh = it_kwh * site.pue
    co2_kg = facility_kwh * site.intensity.g_per_kwh / 1000.0
    price, price_source = site.price, site.price_source
    cost: float | None = None
    reason: str | None = None
    if site.cost_method == "gpu_hour":
        if price is None and model:
            found = gpu_hour_price(model, site.prices)
            if found is not None:
                price, price_source = found.value, found.source
        if hours <= 0:
            reason = "no GPU-hours: GPU-hour pricing does not apply to a run without a GPU"
        elif price is None:
            reason = f"no GPU-hour price for {model or 'this GPU'}: set price_per_gpu_hour"
        else:
            cost = hours * price
    elif price is None:
        reason = "no electricity price: set price_per_kwh"
    else:
        cost = facility_kwh * price
    return Accounting(
        energy=energy,
        site=site,
        it_energy_kwh=it_kwh,
        facility_energy_kwh=facility_kwh,
        co2_kg=co2_kg,
        cost_usd=cost,
        price=price,
        price_source=price_source,
        notes=[reason] if reason else [],
        gpu_hours=hours,
        cost_reason=reason,
    )


def reprice(
    site: Site,
    *,
    it_energy_kwh: float | None = None,
    gpu_hours: float | None = None,
    gpu_model: str | None = None,
    energy: Energy | None = None,
) -> Accounting:
    """A past footprint accounted again at ``site`` (the ``reproduce`` counterfactual).

    Give the past IT energy (``energy``, or ``it_energy_kwh``) and, for GPU-hour pricing,
    its ``gpu_hours`` and ``gpu_model``. With GPU-hours and a model but no energy, the
    energy is estimated from the GPU's board power (:mod:`ecotrain.estimate`). Either way
    the figures come from :func:`account`, like a measured run's.
    """
    if energy is None and it_energy_kwh is None:
        if not (gpu_hours and gpu_model):
            raise SettingsError("reprice needs the IT energy, or GPU-hours with a GPU model")
        from ecotrain.estimate import estimate  # the calculator itself calls account()

        return estimate(gpu_model, site, gpu_hours=gpu_hours).accounting
    if energy is None:
        energy = Energy.from_kwh(float(it_energy_kwh or 0.0))
    return account(energy, site, gpu_hours=gpu_hours, gpu_model=gpu_model)


def _number(settings: Mapping[str, Any], key: str, what: str) -> float | None:
    """A numeric setting, or None when unset; anything else is a one-line SettingsError."""
    value = settings.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} must be a number ({what}), got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise SettingsError(f"{key} must be a finite number ({what}), got {value!r}")
    return number


def site_from_settings(settings: Mapping[str, Any]) -> Site:
    """Build the Site from flat settings.

    Keys (all optional): ``region``, ``pue``, ``intensity`` (g/kWh override, labelled as
    such), ``cost_method`` ("electricity" or "gpu_hour"), ``price_per_kwh``,
    ``price_per_gpu_hour``, ``gpu_model`` (the site's GPU, for a GPU-hour price from the
    table), ``prices_file`` (a TOML table merged over the built-in). Unset values take
    stated defaults: PUE 1.56, the region guessed from the host's time zone or else the
    world average, the price table's price. A bad region raises
    :class:`ecotrain.grid.UnknownRegion`; other bad values a one-line :class:`SettingsError`
    (both are ValueErrors).
    """
    pue = _number(settings, "pue", "the data centre's PUE, >= 1.0")
    if pue is None:
        pue, pue_source = DEFAULT_PUE, DEFAULT_PUE_SOURCE
    else:
        pue_source = f"configured: PUE {pue:g}"
    if not 1.0 <= pue <= MAX_PUE:
        raise SettingsError(f"pue must be between 1.0 and {MAX_PUE:g}, got {pue:g}")

    region = settings.get("region")
    region = str(region).strip() if region is not None else ""
    guessed = None
    if region:
        intensity = resolve_intensity(region)
    else:
        guessed = guess_region()
        intensity = resolve_intensity(guessed) if guessed else world_average()
        if guessed:
            intensity = replace(
                intensity,
                source=f"{intensity.source}; region {guessed} guessed from the host's time zone",
            )

    override = _number(settings, "intensity", "grid intensity override, g CO2e/kWh")
    if override is not None:
        if override < 0:
            raise SettingsError(f"intensity must be >= 0 g/kWh, got {override:g}")
        # Labelled user-supplied; it keeps the region the user gave (or the host's), and
        # claims no region when there is none rather than the world average's "WORLD".
        where = intensity.region if (region or guessed) else "custom"
        intensity = Intensity.custom(override, region=where)

    method = str(settings.get("cost_method") or "electricity").strip()
    if method not in COST_METHODS:
        raise SettingsError(f"cost_method must be one of {', '.join(COST_METHODS)}, got {method!r}")
    prices = load_prices(settings.get("prices_file"))
    price: float | None
    if method == "electricity":
        price = _number(settings, "price_per_kwh", "electricity price, USD/kWh")
        if price is not None:
            source = f"configured: {price:g} USD/kWh"
        else:
            found = electricity_price(intensity.region, prices)
            price, source = found.value, found.source
    else:
        price = _number(settings, "price_per_gpu_hour", "cloud price, USD/GPU-hour")
        source = f"configured: {price:g} USD/GPU-hour" if price is not None else ""
        gpu_model = settings.get("gpu_model")
        if price is None and gpu_model:
            found_gpu = gpu_hour_price(str(gpu_model), prices)
            if found_gpu is None:
                raise SettingsError(
                    f"no GPU-hour price for {gpu_model!r} in the price table: set "
                    "price_per_gpu_hour, or add it to a prices_file"
                )
            price, source = found_gpu.value, found_gpu.source
    if price is not None and price < 0:
        raise SettingsError(f"price must be >= 0, got {price:g}")
    return Site(
        pue=pue,
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
    """Account a run's sensor summaries: (accounting columns, hardware columns).

    The accounting columns are :meth:`Accounting.as_record` plus ``data_version`` (the
    grid data's version) and, when a cost could not be computed, ``accounting_notes``.
    """
    energy = Energy(duration_s=duration_s)
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
    energy.gpu_count = hardware.get("gpu_count")
    energy.gpu_hours = hardware.get("gpu_hours")
    energy.gpu_model = hardware.get("gpu_model")
    acc = account(energy, site)
    record = acc.as_record()
    record["data_version"] = site.intensity.data_version
    if acc.notes:
        record["accounting_notes"] = acc.notes
    return record, hardware
