"""Formatting of energy, CO2e, money and numbers for people: one place for the CLI, the
run summary, the dashboard and the reports. Stdlib only (the run path uses it)."""

from __future__ import annotations

UNKNOWN = "—"


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    """A number with thousands separators and a unit; an em dash when unknown."""
    if value is None:
        return UNKNOWN
    tiny = value and abs(value) < 10 ** (-digits)
    text = f"{value:.2g}" if tiny else f"{value:,.{digits}f}"
    return f"{text} {unit}".strip()


def fmt_energy(kwh: float | None) -> str:
    """Energy in the unit that reads best: MWh, kWh or Wh."""
    if kwh is None:
        return UNKNOWN
    if abs(kwh) >= 1000:
        return fmt(kwh / 1000, "MWh", 2)
    if abs(kwh) >= 1:
        return fmt(kwh, "kWh", 2)
    return f"{kwh * 1000:.3g} Wh"


def fmt_co2(kg: float | None) -> str:
    """CO2e: tonnes above 10 t, kg from 1 kg, grams below."""
    if kg is None:
        return UNKNOWN
    if abs(kg) >= 10_000:
        return f"{kg / 1000:,.1f} t"
    if abs(kg) >= 1 or kg == 0:
        return fmt(kg, "kg", 2 if abs(kg) < 10 else 1)
    return f"{kg * 1000:.3g} g"


def fmt_usd(usd: float | None) -> str:
    """Dollars; sub-cent amounts keep two significant digits."""
    if usd is None:
        return UNKNOWN
    if usd and abs(usd) < 0.01:
        return f"${usd:.2g}"
    return f"${usd:,.2f}"


def fmt_duration(seconds: float | None) -> str:
    """12s, 4m05s, 2h13m."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
