"""Formatting of energy, CO2e, money, durations and plain numbers for people: one place for
the CLI, the run summary, the dashboard and the reports. Stdlib only (the run path uses it).

Rules (issue 14): three significant figures, the unit scaled to the value (mWh..GWh,
mg..t), dollars with cents (three significant figures below a cent), never e-notation, and
an unknown value reads "unknown", never 0 or ``None``. Machine outputs (JSON, CSV, Parquet)
keep full precision and never come through here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Unit:
    """A display unit: its symbol and how many base units (kWh, kg) one of it is."""

    symbol: str
    factor: float


ENERGY_UNITS: tuple[Unit, ...] = (
    Unit("mWh", 1e-6),
    Unit("Wh", 1e-3),
    Unit("kWh", 1.0),
    Unit("MWh", 1e3),
    Unit("GWh", 1e6),
)
MASS_UNITS: tuple[Unit, ...] = (
    Unit("mg", 1e-6),
    Unit("g", 1e-3),
    Unit("kg", 1.0),
    Unit("t", 1e3),
)
KWH = ENERGY_UNITS[2]
KG = MASS_UNITS[2]
SCALES = {"energy": ENERGY_UNITS, "co2": MASS_UNITS}

# A value that rounds up to 1.00 of the next unit is shown in that unit (999.7 Wh -> 1.00 kWh).
_ROUND_UP = 1 - 0.5e-3


def _finite(value: object) -> bool:
    # Accepts Decimal and numpy scalars too (PostgreSQL numerics, pandas cells).
    if value is None or isinstance(value, str | bool):
        return False
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, thousands separators, never e-notation.

    sig(1234.5) == "1,230", sig(0.000012) == "0.0000120", sig(0) == "0".
    """
    if value == 0:
        return "0"
    exp = math.floor(math.log10(abs(value)))
    rounded = round(value, digits - 1 - exp)
    if rounded != 0:
        exp = math.floor(math.log10(abs(rounded)))  # 999.7 -> 1000: one digit more to the left
    decimals = max(0, digits - 1 - exp)
    return f"{rounded:,.{decimals}f}"


def fmt_number(value: float | None, digits: int = 3) -> str:
    """A plain number to ``digits`` significant figures; "unknown" when unknown."""
    if not _finite(value):
        return UNKNOWN
    return sig(float(value), digits)


def fmt(value: float | None, unit: str = "", digits: int = 3) -> str:
    """A number to ``digits`` significant figures followed by ``unit``; "unknown" if unknown."""
    if not _finite(value):
        return UNKNOWN
    return f"{sig(float(value), digits)} {unit}".strip()


def pick_unit(value: float | None, units: Sequence[Unit]) -> Unit:
    """The unit ``value`` (in base units) reads best in: 1 <= shown value < 1000."""
    base = next(u for u in units if u.factor == 1.0)
    if not _finite(value) or value == 0:
        return base
    size = abs(float(value))
    for unit in reversed(units):
        if size >= unit.factor * _ROUND_UP:
            return unit
    return units[0]


def _quantity(value: float | None, units: Sequence[Unit], unit: Unit | None, digits: int) -> str:
    if not _finite(value):
        return UNKNOWN
    u = unit or pick_unit(value, units)
    return f"{sig(float(value) / u.factor, digits)} {u.symbol}"


def fmt_energy(kwh: float | None, unit: Unit | None = None, digits: int = 3) -> str:
    """Energy given in kWh, in the unit that reads best (or ``unit``): "1.20 kWh", "350 Wh"."""
    return _quantity(kwh, ENERGY_UNITS, unit, digits)


def fmt_co2(kg: float | None, unit: Unit | None = None, digits: int = 3) -> str:
    """A mass of CO2e given in kg, in the unit that reads best (or ``unit``): "900 g"."""
    return _quantity(kg, MASS_UNITS, unit, digits)


def fmt_usd(usd: float | None) -> str:
    """Dollars: "$3.60", "$1,234.57", "$0.00260" below a cent, "$2.25M" from a million."""
    if not _finite(usd):
        return UNKNOWN
    usd = float(usd)
    sign = "-" if usd < 0 else ""
    size = abs(usd)
    if size == 0:
        return "$0.00"
    if size < 0.01:
        return f"{sign}${sig(size)}"
    if size < 1e6 * _ROUND_UP:
        return f"{sign}${size:,.2f}"
    if size < 1e9 * _ROUND_UP:
        return f"{sign}${sig(size / 1e6)}M"
    return f"{sign}${sig(size / 1e9)}B"


def fmt_duration(seconds: float | None) -> str:
    """0.0840s, 1.23s, 12s, 4m05s, 2h13m, 3d04h; "unknown" when unknown. Under ten seconds
    with three significant figures: an 84 ms run is not "0s"."""
    if not _finite(seconds):
        return UNKNOWN
    if 0 < abs(float(seconds)) < 9.995:
        return f"{sig(float(seconds))}s"
    seconds = int(round(float(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


# -- one unit per column ----------------------------------------------------------------------


def column_unit(values: Iterable[float | None], kind: str) -> Unit:
    """The one unit a table column of ``kind`` ("energy" or "co2") is shown in.

    Chosen for the column's typical (median non-zero) value, so most rows read with three
    figures and no row switches unit: a reader compares rows at a glance.
    """
    units = SCALES[kind]
    sizes = [abs(float(v)) for v in values if _finite(v) and v != 0]
    if not sizes:
        return next(u for u in units if u.factor == 1.0)
    return pick_unit(statistics.median(sizes), units)


def fmt_in(value: float | None, unit: Unit, digits: int = 3) -> str:
    """``value`` (base units) as a bare number in ``unit`` (for a column whose header names
    the unit); "unknown" when unknown."""
    if not _finite(value):
        return UNKNOWN
    return sig(float(value) / unit.factor, digits)


def fmt_column(values: Sequence[float | None], kind: str) -> tuple[Unit, list[str]]:
    """A column's unit and each value as a bare number in it."""
    unit = column_unit(values, kind)
    return unit, [fmt_in(v, unit) for v in values]


def short_id(checkpoint_id: str) -> str:
    """A checkpoint id as lists show it: a content hash cut to ``sha256:`` + 12 hex digits
    (unique enough to type back); any other id (``hf:org/name``, ``pending:...``) whole,
    since its tail is what tells two apart (Llama-2-7b-hf, Llama-2-13b-hf)."""
    return checkpoint_id[:19] if checkpoint_id.startswith("sha256:") else checkpoint_id
