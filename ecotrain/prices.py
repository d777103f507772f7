"""Price tables: electricity USD/kWh by region, cloud USD/GPU-hour by GPU model.

The built-in table is ecotrain/data/prices.toml: each entry names its provider, source and
date, and figures that could not be checked are marked approximate. A user file of the same
shape (the ``prices_file`` setting) is merged over it, entry by entry::

    [gpu_hour."H100"]
    price = 2.50
    source = "our 2025 reserved contract"

    [electricity.FRA]
    price = 0.15

Stdlib only (tomllib): this module is on the run path.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ecotrain.errors import UserError

BUILTIN = Path(__file__).parent / "data" / "prices.toml"
SECTIONS = ("meta", "electricity", "gpu_hour")
UNITS = {"electricity": "USD/kWh", "gpu_hour": "USD/GPU-hour"}

EU = {"AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC",
      "HUN", "IRL", "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK",
      "SVN", "ESP", "SWE"}  # fmt: skip


class PriceError(UserError, ValueError):
    """A malformed or unreadable price table, or a price that is not a number >= 0."""


@dataclass(frozen=True)
class Price:
    """A price, its unit, and where it came from."""

    value: float
    unit: str  # "USD/kWh" or "USD/GPU-hour"
    source: str  # provider, source, date, and "(approximate)" where it applies
    key: str = ""  # the table entry it came from, e.g. "A100-80GB" or "H100@gcp"
    approximate: bool = False

    @property
    def price(self) -> float:
        """The value (older name, kept for callers that read ``.price``)."""
        return self.value


@dataclass
class PriceTable:
    """The merged price table: entries keyed by region (electricity) or GPU model."""

    electricity: dict[str, dict[str, Any]] = field(default_factory=dict)
    gpu_hour: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # the files merged, built-in first


@cache
def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PriceError(f"malformed price table {path}: {e}") from None
    except OSError as e:
        raise PriceError(f"cannot read price table {path}: {e.strerror}") from None


def _entry(path: str, section: str, key: str, raw: Any) -> dict[str, Any]:
    """One entry, checked; a bare number is shorthand for ``{price = number}``."""
    entry = dict(raw) if isinstance(raw, dict) else {"price": raw}
    value = entry.get("price")
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise PriceError(
            f"{path}: [{section}] {key!r} needs price = a number >= 0 ({UNITS[section]}), "
            f"got {value!r}"
        )
    if math.isinf(value):
        raise PriceError(f"{path}: [{section}] {key!r} price must be finite")
    entry["price"] = float(value)
    return entry


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The built-in price table, with the user's TOML file at ``path`` merged over it."""
    table = PriceTable(files=(str(BUILTIN),))
    sources = [(str(BUILTIN), _read(str(BUILTIN)), "price table")]
    if path:
        user = str(Path(path).expanduser())
        sources.append((user, _read(user), f"user price table {path}"))
        table.files += (user,)
    for file, data, default_source in sources:
        for section, entries in data.items():
            if section not in SECTIONS:
                raise PriceError(
                    f"{file}: unknown section [{section}] (known: {', '.join(SECTIONS)})"
                )
            if not isinstance(entries, dict):
                raise PriceError(f"{file}: [{section}] must be a table")
            if section == "meta":
                table.meta.update(entries)
                continue
            target = getattr(table, section)
            for key, raw in entries.items():
                entry = _entry(file, section, key, raw)
                entry.setdefault("source", default_source)
                target[key] = entry
    return table


def _price(key: str, entry: dict[str, Any], unit: str) -> Price:
    parts = [entry.get("provider"), entry.get("source", "price table"), entry.get("date")]
    text = ", ".join(str(p) for p in parts if p)
    approximate = bool(entry.get("approximate"))
    if approximate:
        text += " (approximate)"
    return Price(float(entry["price"]), unit, text, key, approximate)


def electricity_price(region: str | None, table: PriceTable | None = None) -> Price:
    """USD/kWh for ``region``: its own entry, its country's, the EU's, else the default."""
    table = table or load_prices()
    entries = table.electricity
    region = (region or "").strip().upper()
    country = region.split("/")[0]
    for key in (region, country, "EU" if country in EU else "", "default"):
        if key and key in entries:
            price = _price(key, entries[key], UNITS["electricity"])
            if key == "default" and country and country != "CUSTOM":
                # Say so: a default price for a country with none of its own is a stand-in.
                source = f"no price for {country}, default: {price.source}"
                price = Price(price.value, price.unit, source, key, price.approximate)
            return price
    raise PriceError("the price table has no [electricity.default] entry: set price_per_kwh")


def normalise_gpu(name: str) -> str:
    """A table key for a GPU name as NVML or a person writes it.

    'NVIDIA A100-SXM4-80GB' -> 'A100-80GB', 'NVIDIA H100 80GB HBM3' -> 'H100',
    'Tesla V100-SXM2-16GB' -> 'V100', 'NVIDIA GeForce RTX 4090' -> 'RTX-4090',
    'TPU v4' -> 'TPUv4'. A bare 'A100' is taken as the 80GB part, today's common one.
    """
    text = name.upper().replace("NVIDIA", "").replace("TESLA", "").replace("GEFORCE", "")
    text = " ".join(text.split())
    if rtx := re.search(r"\bRTX[\s-]*(\d{4})\b", text):
        return f"RTX-{rtx.group(1)}"
    if tpu := re.search(r"\bTPU[\s-]*V?(\d+)", text):
        return f"TPUv{tpu.group(1)}"
    model = re.search(r"\b([A-Z]+\d{1,4}[A-Z]?)\b", text)
    if not model:
        return text
    base = model.group(1)
    if base == "A100":
        return "A100-40GB" if "40G" in text else "A100-80GB"
    return base


def gpu_hour_price(
    gpu_model: str, table: PriceTable | None = None, provider: str | None = None
) -> Price | None:
    """USD/GPU-hour for a GPU model name (as NVML reports it, or a table key), or None.

    ``provider`` picks a "MODEL@provider" entry (e.g. ``"gcp"``) where the table has one.
    """
    table = table or load_prices()
    entries = table.gpu_hour
    for key in (gpu_model, gpu_model.upper(), normalise_gpu(gpu_model)):
        if provider:
            # Only that provider's price: another provider's is not an answer.
            qualified = f"{key}@{provider.lower()}"
            if qualified in entries:
                return _price(qualified, entries[qualified], UNITS["gpu_hour"])
            entry = entries.get(key)
            if entry and str(entry.get("provider", "")).lower() == provider.lower():
                return _price(key, entry, UNITS["gpu_hour"])
        elif key in entries:
            return _price(key, entries[key], UNITS["gpu_hour"])
    return None
