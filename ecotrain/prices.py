"""Price tables: electricity USD/kWh by region, cloud USD/GPU-hour by GPU model.

The built-in table is ecotrain/data/prices.toml (each entry with source and date); a user
file of the same shape (``prices_file`` setting) is merged over it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ecotrain.errors import UserError

BUILTIN = Path(__file__).parent / "data" / "prices.toml"


@dataclass(frozen=True)
class Price:
    """A price and where it came from."""

    price: float
    source: str


@cache
def _read(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"malformed price table {path}: {e}") from None
    except OSError as e:
        raise UserError(f"cannot read price table {path}: {e.strerror}") from None


def load_prices(path: str | Path | None = None) -> dict:
    """The built-in price table with a user's file merged over it."""
    table = {k: dict(v) for k, v in _read(str(BUILTIN)).items()}
    if path:
        for section, entries in _read(str(Path(path).expanduser())).items():
            for key, entry in entries.items():
                entry = dict(entry)
                entry.setdefault("source", f"user price table {path}")
                table.setdefault(section, {})[key] = entry
    return table


def _price(entry: dict) -> Price:
    date = f", {entry['date']}" if entry.get("date") else ""
    return Price(float(entry["price"]), f"{entry.get('source', 'price table')}{date}")


EU = {"AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC",
      "HUN", "IRL", "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK",
      "SVN", "ESP", "SWE"}  # fmt: skip


def electricity_price(region: str | None, table: dict | None = None) -> Price:
    """USD/kWh for ``region`` (country part), else the EU or default entry."""
    table = table or load_prices()
    entries = table.get("electricity", {})
    country = (region or "").split("/")[0].upper()
    for key in (region or "", country, "EU" if country in EU else "", "default"):
        if key and key in entries:
            return _price(entries[key])
    raise UserError("the price table has no electricity default: set price_per_kwh")


def normalise_gpu(name: str) -> str:
    """'NVIDIA A100-SXM4-80GB' -> 'A100-80GB'; 'NVIDIA H100 80GB HBM3' -> 'H100'."""
    text = name.upper().replace("NVIDIA", "").replace("TESLA", "").strip()
    model = re.search(r"\b([A-Z]+\d{2,4}[A-Z]?)\b", text)
    if not model:
        return text
    base = model.group(1)
    if base == "A100":
        return "A100-80GB" if "80G" in text else "A100-40GB"
    return base


def gpu_hour_price(gpu_model: str, table: dict | None = None) -> Price | None:
    """USD/GPU-hour for a GPU model name as NVML reports it, or None if unknown."""
    table = table or load_prices()
    entries = table.get("gpu_hour", {})
    if gpu_model in entries:
        return _price(entries[gpu_model])
    key = normalise_gpu(gpu_model)
    return _price(entries[key]) if key in entries else None
