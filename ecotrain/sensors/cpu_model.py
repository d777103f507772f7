"""CPU energy without RAPL: TDP x the process tree's share of the machine's logical CPUs.

Model: ``P = TDP x u`` where ``u`` is the tree's CPU time per wall second divided by the
number of logical CPUs, so over a run ``E = TDP x cpu_seconds / n_logical``. Idle power of
the socket is not charged to the run (other tenants share it), unlike codecarbon's
``0.1 + 0.9·load³`` whole-machine curve.

TDP comes from codecarbon's CPU table ``hardware/cpu_power.csv`` (columns Name,TDP), shipped
in ecotrain/data/codecarbon (MIT; codecarbon itself is not needed). Unknown CPUs get
codecarbon's own fallback, 4 W per logical thread, and say so in ``tdp_source``.
"""

from __future__ import annotations

import csv
import os
import re
from functools import lru_cache
from pathlib import Path

from ecotrain.sensors.base import Reading, Sensor, SensorError
from ecotrain.sensors.proctree import ProcessTree

W_PER_THREAD_FALLBACK = 4.0  # codecarbon's DEFAULT_POWER_PER_CORE, applied per logical CPU

_NOISE = [
    re.compile(r"\((r|tm|c)\)"),
    re.compile(r"\bcpu\s*@\s*[\d.]+\s*ghz"),
    re.compile(r"@\s*[\d.]+\s*ghz"),
    re.compile(r"\b\d+-core processor\b"),
    re.compile(r"\b(processor|cpu)\b"),
]


def normalise_cpu_name(name: str) -> str:
    """Lower-case a CPU name and drop the parts vendors add to brand strings."""
    s = name.lower()
    for pattern in _NOISE:
        s = pattern.sub(" ", s)
    return " ".join(s.replace(",", " ").split())


# The shipped copy (ecotrain/data/codecarbon/README.md says where it comes from).
CPU_POWER_CSV = Path(__file__).parent.parent / "data" / "codecarbon" / "hardware" / "cpu_power.csv"


def cpu_power_csv() -> Path | None:
    """Where the CPU table is, or None if the file is missing (a broken install)."""
    return CPU_POWER_CSV if CPU_POWER_CSV.is_file() else None


@lru_cache(maxsize=4)
def load_cpu_table(path: Path | None = None) -> dict[str, float]:
    """Normalised CPU name -> TDP (W) from a Name,TDP csv (codecarbon's by default)."""
    path = path or cpu_power_csv()
    if path is None:
        return {}
    table: dict[str, float] = {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows, None)  # header Name,TDP
        for row in rows:
            try:
                name, tdp = row[0], float(row[1])
            except (IndexError, ValueError):
                continue
            low = name.lower()
            # the regexes cost ~15 ms over 4,900 rows; only ~25 names need them
            if "(" in low or "cpu" in low or "processor" in low or "ghz" in low:
                key = normalise_cpu_name(name)
            else:
                key = " ".join(low.replace(",", " ").split())
            table.setdefault(key, tdp)
    return table


def match_cpu(brand: str, table: dict[str, float]) -> tuple[str, float] | None:
    """Find ``brand`` in ``table`` as codecarbon does, without rapidfuzz.

    First an exact match of the normalised names; else the longest table name whose words
    all occur in the brand string (codecarbon's token-set match at 100). Two different TDPs
    for equally long names is ambiguous: no match.
    """
    key = normalise_cpu_name(brand)
    if key in table:
        return key, table[key]
    words = set(key.split())
    best: list[tuple[str, float]] = []
    best_len = 0
    for name, tdp in table.items():
        parts = name.split()
        # a one-word name ("3280") would match too loosely inside a long brand string
        if len(parts) < 2 or not words.issuperset(parts):
            continue
        if len(parts) > best_len:
            best, best_len = [(name, tdp)], len(parts)
        elif len(parts) == best_len:
            best.append((name, tdp))
    if best and len({tdp for _, tdp in best}) == 1:
        return best[0]
    return None


def cpu_brand(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU brand string ("model name" in /proc/cpuinfo, else platform.processor())."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def resolve_tdp(
    brand: str, n_logical: int, table: dict[str, float] | None = None
) -> tuple[float, str]:
    """(TDP W, source) for ``brand``: the table's value, or 4 W per logical thread."""
    table = load_cpu_table() if table is None else table
    found = match_cpu(brand, table)
    if found is not None:
        return found[1], f"codecarbon cpu_power.csv ({found[0]})"
    if not table:
        why = "codecarbon's cpu_power.csv not found"
    else:
        why = f"{brand!r} not in codecarbon's cpu_power.csv"
    tdp = W_PER_THREAD_FALLBACK * n_logical
    return tdp, f"fallback 4 W x {n_logical} threads (codecarbon's default; {why})"


def logical_cpu_count(host: int | None = None, root: Path = Path("/")) -> tuple[int, str]:
    """CPUs this run may use, and why: the container's cgroup quota or CPU set if smaller
    than the host's ``host`` threads (see :mod:`ecotrain.sensors.cgroups`)."""
    from ecotrain.sensors.cgroups import usable_cpus

    try:
        n, source = usable_cpus(root)
    except Exception as e:  # noqa: BLE001 - an odd cgroup tree must not stop the model
        return host or os.cpu_count() or 1, f"os.cpu_count() (cgroup unreadable: {e})"
    if host is not None and n > host:
        return host, f"given: {host}"
    return n, source


class CPUModelSensor(Sensor):
    """Modelled CPU energy of one process tree (component "cpu", method "modelled")."""

    component = "cpu"
    method = "modelled"

    def __init__(
        self,
        tree: ProcessTree,
        *,
        tdp_w: float | None = None,
        n_logical: int | None = None,
        cpu_model: str | None = None,
        tdp_source: str | None = None,
        usable: tuple[int, str] | None = None,
    ) -> None:
        super().__init__()
        self.tree = tree
        self.n_logical = n_logical or os.cpu_count() or 1
        # CPUs the run may use (container quota, cpuset): the CPU model's logical count
        # for utilisation and its power ceiling. Energy per CPU-second stays TDP over the
        # host's threads, since the TDP is the whole socket's: a 2-CPU quota on a 64-thread
        # 280 W host makes 2 busy CPUs 8.75 W, not 280 W.
        if usable is None:
            usable = (n_logical, "given") if n_logical else logical_cpu_count(self.n_logical)
        self.usable_cpus, self.usable_source = usable
        self.cpu_model = cpu_model or cpu_brand()
        if tdp_w is None:
            tdp_w, tdp_source = resolve_tdp(self.cpu_model, self.n_logical)
        if tdp_w <= 0:
            raise SensorError(f"CPU model: TDP must be positive, got {tdp_w}")
        self.tdp_w = float(tdp_w)
        self.tdp_source = tdp_source or "given"
        self.name = f"{self.cpu_model} (TDP model)"
        if self.tdp_source.startswith("fallback"):
            self.notes.append(f"CPU TDP unknown: {self.tdp_source}")
        self._cpu0 = 0.0
        self._t0: float | None = None
        self._last: tuple[float, float] | None = None  # (now, cpu_s)
        self.cpu_seconds = 0.0
        self._final_wall: float | None = None

    def start(self, now: float) -> None:
        """Baseline: CPU time the tree had already used does not count (see finish)."""
        self.tree.update(now)
        self._cpu0 = self.tree.cpu_seconds
        self._t0 = now
        self._last = (now, 0.0)

    def sample(self, now: float) -> Reading:
        """Energy of the tree's CPU seconds since start; power from the last tick's share."""
        try:
            self.tree.update(now)
        except Exception as e:  # noqa: BLE001 - a sensor never raises from sample
            self._note(f"process tree unreadable: {e}")
            return Reading(self.energy_j, self.last_power_w)
        if self._last is None:
            self.start(now)
        cpu_s = max(self.cpu_seconds, self.tree.cpu_seconds - self._cpu0)
        last_now, last_cpu = self._last  # type: ignore[misc]
        util = None
        if now > last_now:
            busy = min(float(self.usable_cpus), (cpu_s - last_cpu) / (now - last_now))
            util = busy / self.usable_cpus
            self.last_power_w = self.tdp_w * busy / self.n_logical
        self._last = (now, cpu_s)
        self.cpu_seconds = cpu_s
        self.energy_j = self.tdp_w * cpu_s / self.n_logical
        return Reading(self.energy_j, self.last_power_w, None if util is None else util * 100)

    def finish(self, cpu_seconds_total: float, wall_s: float) -> None:
        """Final exact CPU time of the child (rusage: user+sys incl. waited-for children).

        The sampled total misses descendants that lived between two scans; rusage misses
        descendants never waited for. The larger of the two is kept.
        """
        self.cpu_seconds = max(self.cpu_seconds, float(cpu_seconds_total))
        self.energy_j = self.tdp_w * self.cpu_seconds / self.n_logical
        self._final_wall = wall_s

    def hardware(self) -> dict:
        """CPU model, TDP and its source, logical CPU count, CPU seconds used."""
        hw = {
            "cpu_model": self.cpu_model,
            "tdp_w": self.tdp_w,
            "tdp_source": self.tdp_source,
            "cpu_count": self.usable_cpus,
            "cpu_count_source": self.usable_source,
            "host_cpu_count": self.n_logical,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "model": "P = TDP x tree CPU time / (wall time x host logical CPUs)",
        }
        if self._final_wall:
            hw["mean_utilisation"] = round(
                100 * self.cpu_seconds / (self._final_wall * self.usable_cpus), 2
            )
        return hw

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)
