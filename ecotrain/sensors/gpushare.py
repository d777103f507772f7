"""A run's share of a GPU that other processes (or other MIG slices) use too.

Vendor-neutral: the NVML and amdsmi sensors list the processes on a device each tick and
hand them here with the run's own process ids. Per tick and per device (or MIG slice):

- ``exclusive``: only the run's processes are on it: share 1.
- ``sm_utilisation``: NVML's per-process SM utilisation samples since the last tick
  (``nvmlDeviceGetProcessUtilization``): share = the run's SM% / everyone's SM%.
- ``memory``: no utilisation sample (all idle, MIG, AMD): share by device memory in use
  (``nvmlDeviceGetComputeRunningProcesses`` / ``amdsmi_get_gpu_process_list``).
- ``process_count``: neither known: an equal share per process.
- ``carried``: nobody on the device this tick (between steps, evaluation, checkpoint
  writing): the last share carries over, so an idle gap belongs to whoever used it last.
- ``before_first_use``: nobody has used the device yet in this run: nothing charged, so
  five users who can all see eight idle GPUs are not each charged for all eight.
- ``whole_gpu``: the device cannot list its processes (unsupported, no permission, PIDs
  from another PID namespace): the whole device is charged, and the record says so.

A MIG slice's share is further multiplied by its compute-slice fraction of the parent GPU
(``mig_fraction``), because NVML meters only the parent.

Idle power is the lowest tick power the device showed during the run (ticks of at least
:data:`IDLE_MIN_TICK_S`); the run's idle energy is that power times its charged time, so a
record states both "energy above idle" and "total".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecotrain.sensors.base import Sensor, SensorSummary

IDLE_MIN_TICK_S = 0.5  # shorter ticks (the final one at stop()) give noisy power
SPLIT_METHODS = (
    "exclusive",
    "sm_utilisation",
    "memory",
    "process_count",
    "carried",
    "before_first_use",
    "whole_gpu",
)


@dataclass
class ProcessUse:
    """One process on a device this tick, as the driver reports it."""

    pid: int
    sm_util: float | None = None  # summed SM % over the samples since the last tick
    memory: float | None = None  # bytes of device memory


def split(procs: list[ProcessUse], ours: set[int]) -> tuple[float, str]:
    """The run's share of one tick from the processes on the device, and the method.

    ``procs`` must be non-empty. A pid listed twice (several samples) is summed.
    """
    mine = [p for p in procs if p.pid in ours]
    if len(mine) == len(procs):
        return 1.0, "exclusive"
    if not mine:
        return 0.0, _best_method(procs)
    util_all = sum(p.sm_util or 0.0 for p in procs)
    if util_all > 0:
        return sum(p.sm_util or 0.0 for p in mine) / util_all, "sm_utilisation"
    if all(p.memory is not None for p in procs):
        mem_all = sum(p.memory or 0.0 for p in procs)
        if mem_all > 0:
            return sum(p.memory or 0.0 for p in mine) / mem_all, "memory"
    pids_all = {p.pid for p in procs}
    return len({p.pid for p in mine}) / len(pids_all), "process_count"


def _best_method(procs: list[ProcessUse]) -> str:
    # With none of ours on it the share is 0 whatever the method; name the one that
    # would have split it, so the record's method seconds stay meaningful.
    if sum(p.sm_util or 0.0 for p in procs) > 0:
        return "sm_utilisation"
    if all(p.memory is not None for p in procs) and sum(p.memory or 0.0 for p in procs) > 0:
        return "memory"
    return "process_count"


@dataclass
class Unit:
    """What one run sees of one device or MIG slice: its process list and its last share."""

    label: str  # "GPU 0" or the MIG UUID
    fraction: float = 1.0  # MIG compute-slice fraction of the parent; 1 for a whole GPU
    fraction_text: str = ""  # "1/7 compute slices"
    last_share: float | None = None
    whole_reason: str | None = None  # set once the process list proved unusable
    others: set[int] = field(default_factory=set)
    max_others: int = 0

    def share(self, procs: list[ProcessUse] | None, ours: set[int]) -> tuple[float, str]:
        """This tick's share of the unit (before its MIG fraction) and how it was made."""
        if procs is None:
            return 1.0, "whole_gpu"
        if not procs:
            if self.last_share is None:
                return 0.0, "before_first_use"
            return self.last_share, "carried"
        others = {p.pid for p in procs if p.pid not in ours}
        self.others |= others
        self.max_others = max(self.max_others, len(others))
        value, method = split(procs, ours)
        self.last_share = value
        return value, method


class ShareLedger:
    """Per device: the device's energy, the run's charged part, idle, and the methods used."""

    def __init__(self, units: list[Unit]) -> None:
        self.units = units
        self.device_j = 0.0
        self.charged_j = 0.0
        self.wall_s = 0.0
        self.charged_s = 0.0  # sum of share x dt: the run's device-seconds
        self.method_s: dict[str, float] = {}
        self.min_power_w: float | None = None
        self.unused_j = 0.0  # device energy before any process used it: charged to nobody

    def add(self, delta_j: float, dt: float, shares: list[tuple[float, str]]) -> float:
        """Book one tick: ``shares`` holds one (share, method) per unit. Returns the share."""
        share = sum(u.fraction * s for u, (s, _m) in zip(self.units, shares, strict=True))
        share = min(1.0, max(0.0, share))
        self.device_j += delta_j
        self.charged_j += share * delta_j
        self.wall_s += dt
        self.charged_s += share * dt
        for _s, method in shares:
            self.method_s[method] = self.method_s.get(method, 0.0) + dt
        if all(m == "before_first_use" for _s, m in shares):
            self.unused_j += delta_j
        if dt >= IDLE_MIN_TICK_S and delta_j >= 0:
            power = delta_j / dt
            self.min_power_w = power if self.min_power_w is None else min(self.min_power_w, power)
        return share

    def device_hours(self, wall_s: float) -> float:
        """GPU-hours to charge: the run's device-seconds while booked, whole wall time after
        (a device lost mid-run keeps its hours to the end, as before any split)."""
        if not self.method_s:
            return wall_s / 3600
        return (self.charged_s + max(0.0, wall_s - self.wall_s)) / 3600

    @property
    def attributed(self) -> bool:
        """Whether the device's energy was split at all (anything but whole_gpu ticks)."""
        return any(m != "whole_gpu" for m in self.method_s)

    def method(self) -> str:
        """The method that decided most of the run's charged time ("exclusive" if alone)."""
        deciding = {
            m: s for m, s in self.method_s.items() if m not in ("carried", "before_first_use")
        }
        if not deciding:
            return max(self.method_s, key=self.method_s.__getitem__) if self.method_s else "none"
        return max(deciding, key=deciding.__getitem__)

    def detail(self) -> dict:
        """The record's per-device fields (gpu_devices JSON): share, method, others, idle."""
        out: dict = {
            "device_energy_j": round(self.device_j, 3),
            "share": round(self.charged_j / self.device_j, 4) if self.device_j > 0 else None,
            "share_method": self.method(),
            "share_method_s": {m: round(s, 2) for m, s in sorted(self.method_s.items())},
            "other_processes": len(set().union(*(u.others for u in self.units))),
            "max_other_processes": max((u.max_others for u in self.units), default=0),
        }
        if self.unused_j:
            out["before_first_use_j"] = round(self.unused_j, 3)
        mig = [u for u in self.units if u.fraction_text]
        if mig:
            out["mig_fraction"] = round(sum(u.fraction for u in mig), 4)
            out["mig_slices"] = ", ".join(f"{u.label}: {u.fraction_text}" for u in mig)
        if self.min_power_w is not None:
            idle_j = self.min_power_w * self.charged_s
            out.update(
                idle_power_w=round(self.min_power_w, 2),
                idle_power_source="lowest tick power of the device during the run",
                idle_energy_j=round(idle_j, 3),
                above_idle_energy_j=round(max(0.0, self.charged_j - idle_j), 3),
                device_idle_energy_j=round(self.min_power_w * self.wall_s, 3),
            )
        return out

    def note(self, label: str) -> str | None:
        """One line for the run's notes when the device was not simply the run's alone."""
        d = self.detail()
        others = d["other_processes"]
        whole = self.method_s.get("whole_gpu", 0.0)
        parts = []
        if d.get("mig_slices"):
            parts.append(f"MIG {d['mig_slices']} of the parent's energy")
        if others:
            parts.append(
                f"shared with {others} other process(es); charged "
                f"{100 * (d['share'] or 0):.1f}% of its {self.device_j:.0f} J "
                f"by {d['share_method']}"
            )
        if whole and self.attributed:
            parts.append(f"{whole:.0f} s charged whole (process list unavailable)")
        if self.unused_j:
            before = self.method_s.get("before_first_use", 0.0)
            parts.append(
                f"{self.unused_j:.0f} J in the {before:.0f} s before any process used it "
                "charged to nobody"
            )
        if not parts:
            return None
        if "idle_power_w" in d:
            parts.append(
                f"idle {d['idle_power_w']:.0f} W: {d['above_idle_energy_j']:.0f} J above idle "
                f"of {self.charged_j:.0f} J charged"
            )
        return f"{label}: " + "; ".join(parts)


class GPUSensorBase(Sensor):
    """What every vendor's GPU sensor shares once its meters have read the devices: the
    record's hardware block, one share note per GPU, closing, and de-duplicated notes.

    A subclass keeps ``meters`` (each with ``dev``, ``method``, ``charged_j``,
    ``max_power_w``, ``lost`` and a ``ledger``), ``lock_fds``, ``_t0``/``_t_last`` and
    ``max_power_w``, and says how a device is named (:meth:`_label`), which fields identify
    it (:meth:`_device_fields`) and how the vendor library is shut down (:meth:`_shutdown`).
    """

    component = "gpu"
    share_rule = ""

    def _label(self, m: Any) -> str:
        raise NotImplementedError

    def _device_fields(self, m: Any) -> dict:
        raise NotImplementedError

    def _shutdown(self) -> None:
        """Shut the vendor library down if this sensor initialised it (never raises)."""

    def hardware(self) -> dict:
        """Model, count, GPU-hours, power (and utilisation where read), per device and
        overall."""
        wall = (self._t_last - self._t0) if self._t0 is not None and self._t_last else 0.0
        per_device = []
        for m in self.meters:
            d = {**self._device_fields(m), "method": m.method, "energy_j": round(m.charged_j, 3)}
            if wall > 0:
                d["mean_power_w"] = round(m.charged_j / wall, 2)
                d["max_power_w"] = round(m.max_power_w, 2)
            if getattr(m, "util_n", 0):
                d["mean_utilisation"] = round(m.util_sum / m.util_n, 2)
            if m.lost:
                d["lost"] = True
            if m.ledger.method_s:
                d.update(m.ledger.detail())
            per_device.append(d)
        models = sorted({m.dev.name for m in self.meters})
        hw: dict = {
            "model": models[0] if len(models) == 1 else ", ".join(models),
            "count": len(self.meters),
            "gpu_hours": sum(m.ledger.device_hours(wall) for m in self.meters),
            "uuids": [m.dev.uuid for m in self.meters],
            "method_rule": "measured if every device has an energy counter, else integrated",
            "share_rule": self.share_rule,
            "devices": per_device,
        }
        if wall > 0:
            hw["mean_power_w"] = round(self.energy_j / wall, 2)
            hw["max_power_w"] = round(self.max_power_w, 2)
        utils = [m.util_sum / m.util_n for m in self.meters if getattr(m, "util_n", 0)]
        if utils:
            hw["mean_utilisation"] = round(sum(utils) / len(utils), 2)
        return hw

    def summary(self) -> SensorSummary:
        """Totals for the record, with one note per GPU that was shared or sliced."""
        s = super().summary()
        for m in self.meters:
            note = m.ledger.note(self._label(m))
            if note and note not in s.notes:
                s.notes.append(note)
        return s

    def close(self) -> None:
        """Give the GPUs' locks back and shut the vendor library down if ours."""
        from ecotrain.sensors.gpulock import release

        release(self.lock_fds)
        self._shutdown()

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)
