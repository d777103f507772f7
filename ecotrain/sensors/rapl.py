"""Linux powercap RAPL: package and DRAM energy counters (method "measured").

Layout read (``root`` is injectable so tests build a fake tree)::

    /sys/class/powercap/intel-rapl:0/name                  "package-0"
    /sys/class/powercap/intel-rapl:0/energy_uj             cumulative microjoules
    /sys/class/powercap/intel-rapl:0/max_energy_range_uj   where the counter wraps
    /sys/class/powercap/intel-rapl:0:1/name                "dram" (a subdomain)

AMD CPUs expose the same ``intel-rapl`` names. RAPL counts the whole socket (every process
on it, and idle power), not the child's process tree: on a shared node it over-states the
run; the sensors say so in their notes and ``hardware()``.

Since Linux 5.10 (CVE-2020-8694) ``energy_uj`` is readable by root only; that is reported
as the reason RAPL is unavailable, and the CPU/RAM models are used instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ecotrain.sensors.base import Component, Reading, Sensor, SensorError

POWERCAP = Path("/sys/class/powercap")
WHOLE_SOCKET = "RAPL measures the whole socket (all processes and idle power), not only this run"


@dataclass
class RaplDomain:
    """One RAPL counter file and its wrap-around range."""

    name: str
    path: Path  # the domain directory
    max_uj: int

    def read_uj(self) -> int:
        """The counter now (raises OSError/ValueError if unreadable)."""
        with open(self.path / "energy_uj", "rb") as f:
            return int(f.read())


def delta_uj(old: int, new: int, max_uj: int) -> int:
    """Counter difference, allowing for one wrap-around at ``max_uj``."""
    if new >= old:
        return new - old
    return new + max_uj - old


def find_domains(root: Path = POWERCAP) -> tuple[list[RaplDomain], list[RaplDomain]]:
    """(package domains, dram domains) under ``root``; raises SensorError if none usable."""
    if not root.is_dir():
        raise SensorError(f"RAPL: no powercap interface ({root} does not exist)")
    packages: list[RaplDomain] = []
    drams: list[RaplDomain] = []
    denied: list[str] = []
    for entry in sorted(os.listdir(root)):
        # intel-rapl:N is a package, intel-rapl:N:M a subdomain (core, uncore, dram)
        if not entry.startswith("intel-rapl:"):
            continue
        path = root / entry
        try:
            name = (path / "name").read_text().strip()
        except OSError:
            continue
        is_package = entry.count(":") == 1 and name.startswith("package")
        if not (is_package or name == "dram"):
            continue  # psys counts the whole platform; core/uncore sit inside the package
        try:
            max_uj = int((path / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            max_uj = 2**32  # the counter is a 32-bit register scaled; a safe guess
        domain = RaplDomain(name=f"{name} ({entry})", path=path, max_uj=max_uj)
        try:
            domain.read_uj()
        except PermissionError:
            denied.append(str(path / "energy_uj"))
            continue
        except (OSError, ValueError) as e:
            denied.append(f"{path / 'energy_uj'} ({e.__class__.__name__})")
            continue
        (packages if is_package else drams).append(domain)
    if not packages and not drams:
        if denied:
            raise SensorError(
                f"RAPL: permission denied reading {denied[0]} (root-only since Linux 5.10; "
                "`sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` to allow)"
            )
        raise SensorError(f"RAPL: no package or dram domain under {root}")
    return packages, drams


class RaplSensor(Sensor):
    """Sum of some RAPL domains' energy counters since ``start``."""

    method = "measured"

    def __init__(self, component: Component, domains: list[RaplDomain], name: str) -> None:
        super().__init__()
        if not domains:
            raise SensorError(f"RAPL: no {component} domain")
        self.component = component
        self.domains = domains
        self.name = name
        self.notes.append(WHOLE_SOCKET)
        self._last_uj: list[int | None] = [None] * len(domains)
        self._last_t: float | None = None

    def start(self, now: float) -> None:
        """Baseline each counter."""
        for i, d in enumerate(self.domains):
            try:
                self._last_uj[i] = d.read_uj()
            except (OSError, ValueError) as e:
                self._note(f"{d.name}: unreadable at start ({e.__class__.__name__})")
        self._last_t = now

    def sample(self, now: float) -> Reading:
        """Add each counter's increase since the previous tick (wrap-around aware)."""
        added_uj = 0
        for i, d in enumerate(self.domains):
            try:
                value = d.read_uj()
            except (OSError, ValueError) as e:
                self._note(f"{d.name}: read failed ({e.__class__.__name__}); kept last total")
                continue
            last = self._last_uj[i]
            if last is not None:
                added_uj += delta_uj(last, value, d.max_uj)
            self._last_uj[i] = value
        added_j = added_uj / 1e6
        self.energy_j += added_j
        if self._last_t is not None and now > self._last_t:
            self.last_power_w = added_j / (now - self._last_t)
        self._last_t = now
        return Reading(self.energy_j, self.last_power_w)

    def hardware(self) -> dict:
        """The domains read, and the scope caveat."""
        return {
            "source": "Linux powercap RAPL",
            "domains": [d.name for d in self.domains],
            "count": len(self.domains),
            "scope": WHOLE_SOCKET,
        }

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


class RaplCPUSensor(RaplSensor):
    """CPU package energy (component "cpu", "measured")."""

    def __init__(self, domains: list[RaplDomain]) -> None:
        super().__init__("cpu", domains, "RAPL package")


class RaplDRAMSensor(RaplSensor):
    """DRAM energy (component "ram", "measured")."""

    def __init__(self, domains: list[RaplDomain]) -> None:
        super().__init__("ram", domains, "RAPL dram")


def rapl_sensors(root: Path = POWERCAP) -> tuple[dict[str, RaplSensor], list[str]]:
    """Available RAPL sensors by component, and why the others are not.

    Raises SensorError when RAPL is not usable at all (no powercap, permission denied).
    """
    packages, drams = find_domains(root)
    found: dict[str, RaplSensor] = {}
    reasons: list[str] = []
    if packages:
        found["cpu"] = RaplCPUSensor(packages)
    else:
        reasons.append("cpu: RAPL has no readable package domain")
    if drams:
        found["ram"] = RaplDRAMSensor(drams)
    else:
        reasons.append("ram: RAPL has no dram domain on this CPU")
    return found, reasons
