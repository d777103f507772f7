"""RAM energy model: ``P = W_PER_GB x resident memory of the process tree``.

W_PER_GB = 0.375 W per GiB (3/8 W/GB), codecarbon's original RAM model; Green Algorithms
uses 0.3725 W/GB, the same figure to within 1 %. Resident memory is the sum of the tree's
RSS (1 GB here = 2**30 bytes, as in codecarbon's model). RSS counts a page shared between
processes (fork-shared tensors, DataLoader workers, shared libraries) once per process, so
the sum over-counts; it is an upper bound for the tree's memory, stated in ``hardware()``.
Power is integrated over the ticks by trapezoid.
"""

from __future__ import annotations

from ecotrain.sensors.base import Reading, Sensor
from ecotrain.sensors.proctree import ProcessTree

W_PER_GB = 0.375
GB = 2**30
SOURCE = "0.375 W/GB (3/8 W per GB: codecarbon's RAM model; Green Algorithms: 0.3725 W/GB)"


class RAMModelSensor(Sensor):
    """Modelled RAM energy of one process tree (component "ram", method "modelled")."""

    component = "ram"
    method = "modelled"
    name = "RAM model (W/GB x tree RSS)"

    def __init__(self, tree: ProcessTree, *, w_per_gb: float = W_PER_GB) -> None:
        super().__init__()
        self.tree = tree
        self.w_per_gb = w_per_gb
        self._last: float | None = None
        self._t0: float | None = None
        self.max_gb = 0.0

    def start(self, now: float) -> None:
        """First reading of the tree's resident memory."""
        self.tree.update(now)
        self._t0 = now
        self._last = now
        self.last_power_w = self.w_per_gb * self.tree.rss_bytes / GB
        self.max_gb = max(self.max_gb, self.tree.rss_bytes / GB)

    def sample(self, now: float) -> Reading:
        """Trapezoid of W/GB x RSS since the previous tick."""
        try:
            self.tree.update(now)
        except Exception as e:  # noqa: BLE001 - a sensor never raises from sample
            note = f"process tree unreadable: {e}"
            if note not in self.notes:
                self.notes.append(note)
            return Reading(self.energy_j, self.last_power_w)
        if self._last is None:
            self.start(now)
            return Reading(self.energy_j, self.last_power_w)
        gb = self.tree.rss_bytes / GB
        power = self.w_per_gb * gb
        dt = now - self._last
        if dt > 0:
            self.energy_j += (power + self.last_power_w) / 2 * dt
            self._last = now
        self.last_power_w = power
        self.max_gb = max(self.max_gb, gb)
        return Reading(self.energy_j, power)

    def hardware(self) -> dict:
        """The model's constants and the memory the tree held."""
        hw: dict = {
            "w_per_gb": self.w_per_gb,
            "source": SOURCE,
            "max_rss_gb": round(self.max_gb, 3),
            "rss": "sum of the tree's RSS; pages shared between processes count once each",
        }
        if self._t0 is not None and self._last is not None and self._last > self._t0:
            duration = self._last - self._t0
            hw["mean_rss_gb"] = round(self.energy_j / self.w_per_gb / duration, 3)
        return hw
