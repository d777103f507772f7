"""Per-run budgets (CO2e, dollars, energy): parsing their units and watching a run against them.

Limits come from `ecotrain run --budget-co2/--budget-usd/--budget-kwh` or from config::

    [budget]                      # every run (in a project's .ecotrain.toml: that project)
    co2 = "50kg"
    usd = 200
    kwh = 3
    on_budget = "stop"            # warn (default) | stop
    grace = "10s"                 # SIGTERM -> SIGKILL delay when stopping

    [budget.projects.bert-distill]   # runs of one project (user config), over [budget]
    co2 = "20kg"

The energy budget is on facility energy (IT energy x PUE), the figure CO2e and electricity
cost are derived from. Crossing 80 % of a limit warns once; crossing 100 % warns once and,
with ``on_budget = "stop"``, the wrapper stops the child. Kept to the stdlib: run path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ecotrain.errors import UserError

WARN_FRACTION = 0.8
_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"

# unit -> factor to the base unit of each quantity
_CO2_UNITS = {"": 1.0, "kg": 1.0, "g": 1e-3, "t": 1000.0, "tonne": 1000.0, "tonnes": 1000.0}
_KWH_UNITS = {"": 1.0, "kwh": 1.0, "wh": 1e-3, "mwh": 1000.0, "j": 1 / 3.6e6, "mj": 1 / 3.6}
_USD_UNITS = {"": 1.0, "usd": 1.0, "$": 1.0}
_DURATION_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def _parse(text: Any, units: dict[str, float], what: str, example: str) -> float:
    raw = str(text).strip()
    value = raw.lower().removeprefix("$").replace("co2e", "").replace("co2", "")
    m = re.fullmatch(_NUMBER + r"([a-z$]*)\s*", value)
    if not m or m.group(2) not in units:
        allowed = ", ".join(u for u in units if u)
        raise UserError(f"bad {what} {raw!r}: use e.g. {example} (units: {allowed})")
    number = float(m.group(1)) * units[m.group(2)]
    if number <= 0:
        raise UserError(f"bad {what} {raw!r}: must be positive")
    return number


def parse_co2_kg(text: Any) -> float:
    """'50kg', '500g', '1.5t', '2' (kg) -> kilograms."""
    return _parse(text, _CO2_UNITS, "CO2 budget", "50kg or 500g")


def parse_kwh(text: Any) -> float:
    """'3', '3kWh', '500Wh', '1MWh' -> kWh."""
    return _parse(text, _KWH_UNITS, "energy budget", "3kWh or 500Wh")


def parse_usd(text: Any) -> float:
    """'200', '$200', '200usd' -> dollars."""
    return _parse(text, _USD_UNITS, "dollar budget", "200 or $200")


def parse_duration_s(text: Any, what: str = "duration") -> float:
    """'2h', '90m', '10s', '1.5d', '30' (seconds) -> seconds."""
    return _parse(text, _DURATION_UNITS, what, "2h, 90m or 10s")


# quantity -> (record column, parser, unit shown)
QUANTITIES = {
    "co2": ("co2_kg", parse_co2_kg, "kg CO2e"),
    "usd": ("cost_usd", parse_usd, "USD"),
    "kwh": ("facility_energy_kwh", parse_kwh, "kWh"),
}


@dataclass
class Budget:
    """The limits of one run and what to do when one is exceeded."""

    limits: dict[str, float] = field(default_factory=dict)  # quantity -> limit
    on_budget: str = "warn"  # warn | stop
    grace_s: float = 10.0

    def __bool__(self) -> bool:
        return bool(self.limits)


def budget_from(settings: Any, cli: dict[str, Any], on_budget: str | None, grace: str | None):
    """The run's budget: CLI options over ``[budget.projects.<project>]`` over ``[budget]``."""
    project = settings.get("project", "default")
    get = settings.get
    limits: dict[str, float] = {}
    for quantity, (_, parse, _) in QUANTITIES.items():
        value = cli.get(quantity)
        if value is None:
            value = get(f"budget.projects.{project}.{quantity}")
        if value is None:
            value = get(f"budget.{quantity}")
        if value is not None:
            limits[quantity] = parse(value)
    action = (
        on_budget
        or get(f"budget.projects.{project}.on_budget")
        or get("budget.on_budget")
        or "warn"
    )
    if action not in ("warn", "stop"):
        raise UserError(f"bad on_budget {action!r}: use warn or stop")
    grace_value = grace or get("budget.grace")
    grace_s = parse_duration_s(grace_value, "grace period") if grace_value else 10.0
    return Budget(limits=limits, on_budget=action, grace_s=grace_s)


class BudgetWatch:
    """Compares a run's running totals with its budget; each threshold fires once."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._warned: set[str] = set()
        self.exceeded: str | None = None  # the end reason, once a limit is crossed

    def check(self, totals: dict[str, Any]) -> list[str]:
        """Messages for thresholds crossed since the last call (80 % warnings, 100 %)."""
        messages = []
        for quantity, limit in self.budget.limits.items():
            column, _, unit = QUANTITIES[quantity]
            value = totals.get(column)
            if value is None:
                continue
            used = value / limit
            if used >= 1.0 and f"{quantity}:100" not in self._warned:
                self._warned.update({f"{quantity}:100", f"{quantity}:80"})
                reason = (
                    f"budget exceeded: {quantity} {value:.4g} {unit} >= limit {limit:.4g} {unit}"
                )
                self.exceeded = self.exceeded or reason
                messages.append(reason)
            elif used >= WARN_FRACTION and f"{quantity}:80" not in self._warned:
                self._warned.add(f"{quantity}:80")
                messages.append(
                    f"budget warning: {quantity} at {used:.0%} of {limit:.4g} {unit} "
                    f"({value:.4g} {unit})"
                )
        return messages
