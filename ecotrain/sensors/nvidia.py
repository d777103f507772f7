"""NVIDIA GPUs through NVML (nvidia-ml-py, ``import pynvml``).

Per device, the best source the GPU has:

- ``measured``: difference of ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver
  load; Volta and newer). The counter updates about every 100 ms.
- ``integrated``: ``nvmlDeviceGetPowerUsage`` (mW) sampled each tick, trapezoid rule.
- ``none``: neither works (very old GPUs, some vGPUs). Said in the notes; never a silent 0.

The sensor's method over several devices is the weakest among the devices that report
energy (``measured`` only if all of them are measured, else ``integrated``); devices with
``none`` add nothing and a note; ``none`` if no device reports energy.

Every NVML call goes through :func:`_nvml_call`, the one place that maps
``pynvml.NVMLError`` to this module's exceptions (the Zeus pattern): :class:`GPULost` for a
device that is gone (fell off the bus, reset, unknown), :class:`GPUNotSupported` for a
query the device lacks, :class:`GPUError` otherwise. pynvml is imported lazily and can be
injected (``nvml=``), so tests run a fake module with no GPU.

A GPU lost mid-run keeps the energy it had when last read and adds a note; the run goes on.
Locks for a per-node "measuring" role are the caller's: it passes the devices to measure.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecotrain.sensors.base import Reading, Sensor, SensorError


class GPUError(Exception):
    """An NVML call failed."""


class GPULost(GPUError):
    """The device is gone: lost, not found, reset, or the driver answered 'unknown'."""


class GPUNotSupported(GPUError):
    """The device does not support this query."""


# NVML return codes (nvml.h); names kept so the fake module and pynvml agree.
_NOT_SUPPORTED = {3, 13}  # NOT_SUPPORTED, FUNCTION_NOT_FOUND
_LOST = {6, 15, 16, 28, 999}  # NOT_FOUND, GPU_IS_LOST, RESET_REQUIRED, GPU_NOT_FOUND, UNKNOWN


def _nvml_call(nvml: Any, fn: str, *args: Any) -> Any:
    """Call ``nvml.<fn>(*args)``, translating NVML errors; the only place that sees them."""
    try:
        func = getattr(nvml, fn)
    except AttributeError:
        raise GPUNotSupported(f"{fn} not in this nvidia-ml-py") from None
    try:
        return func(*args)
    except nvml.NVMLError as e:
        code = getattr(e, "value", None)
        text = f"{fn}: {e} (NVML {code})"
        if code in _NOT_SUPPORTED:
            raise GPUNotSupported(text) from None
        if code in _LOST:
            raise GPULost(text) from None
        raise GPUError(text) from None


def _text(value: Any) -> str:
    # older pynvml returned bytes for names and UUIDs
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class SelectedDevice:
    """A physical GPU chosen for measurement."""

    index: int  # NVML (physical) index
    handle: Any
    uuid: str
    name: str
    mig: list[str] = field(default_factory=list)  # MIG slices visible on it, if chosen by MIG


def _all_devices(nvml: Any) -> list[SelectedDevice]:
    devices = []
    for i in range(_nvml_call(nvml, "nvmlDeviceGetCount")):
        handle = _nvml_call(nvml, "nvmlDeviceGetHandleByIndex", i)
        uuid = _text(_nvml_call(nvml, "nvmlDeviceGetUUID", handle))
        try:
            name = _text(_nvml_call(nvml, "nvmlDeviceGetName", handle))
        except GPUError:
            name = "NVIDIA GPU"
        devices.append(SelectedDevice(i, handle, uuid, name))
    return devices


def _mig_uuids(nvml: Any, dev: SelectedDevice) -> list[str]:
    try:
        count = _nvml_call(nvml, "nvmlDeviceGetMaxMigDeviceCount", dev.handle)
    except GPUError:
        return []
    out = []
    for j in range(count):
        try:
            mig = _nvml_call(nvml, "nvmlDeviceGetMigDeviceHandleByIndex", dev.handle, j)
            out.append(_text(_nvml_call(nvml, "nvmlDeviceGetUUID", mig)))
        except GPUError:
            continue  # unpopulated slot
    return out


def _strtoul(s: str) -> int:
    """Leading integer of ``s`` like C's strtoul as CUDA uses it ("1gpu" -> 1); -1 if none."""
    s = s.strip()
    digits = ""
    for i, c in enumerate(s):
        if c.isdigit() or (i == 0 and c in "+-"):
            digits += c
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return -1


def _parse_indices(value: str) -> list[int]:
    """SLURM GPU lists: "0,2", "0-3", "0-1,4"."""
    out: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def select_devices(
    env: Mapping[str, str], nvml: Any, notes: list[str] | None = None
) -> list[SelectedDevice]:
    """The physical GPUs this process tree can use. NVML must be initialised.

    ``CUDA_VISIBLE_DEVICES`` (if set) decides, read as CUDA does: entries are indices,
    ``GPU-<uuid>`` (a unique prefix is enough) or ``MIG-<uuid>`` (mapped to its parent GPU,
    whose energy is what NVML can measure); "" / "-1" / "NoDevFiles" mean no GPU; the
    first invalid, out-of-range or ambiguous entry ends the list. A repeated entry makes
    CUDA see no device at all, as does PyTorch's parser. Unlike PyTorch's parser, index and
    UUID entries may be mixed. Else ``SLURM_STEP_GPUS`` / ``SLURM_JOB_GPUS`` (physical
    indices), else every GPU. Why entries were dropped goes to ``notes``.
    """
    notes = notes if notes is not None else []
    devices = _all_devices(nvml)
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is None:
        for var in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
            if env.get(var):
                try:
                    wanted = _parse_indices(env[var])
                except ValueError:
                    notes.append(f"{var}={env[var]!r} not understood; measuring all GPUs")
                    return devices
                chosen = [d for d in devices if d.index in set(wanted)]
                if len(chosen) < len(set(wanted)):
                    notes.append(f"{var}={env[var]!r} names GPUs this node does not have")
                return chosen
        return devices
    first = cvd.split(",")[0].strip()
    if first in ("", "NoDevFiles") or (first[:4] not in ("GPU-", "MIG-") and _strtoul(first) < 0):
        return []  # "", "-1", "NoDevFiles" or garbage first: CUDA sees no device
    chosen: list[SelectedDevice] = []
    seen: set[str] = set()
    mig_map: dict[str, SelectedDevice] | None = None
    for raw in cvd.split(","):
        entry = raw.strip()
        if entry in seen:
            notes.append(f"CUDA_VISIBLE_DEVICES repeats {entry!r}: CUDA then sees no GPU")
            return []
        seen.add(entry)
        if entry.startswith("MIG-"):
            if mig_map is None:
                mig_map = {u: d for d in devices for u in _mig_uuids(nvml, d)}
            key = entry
            if entry.startswith("MIG-GPU-"):  # pre-R470 form MIG-GPU-<uuid>/<gi>/<ci>
                parent = entry[4:].split("/", 1)[0]
                hits = [d for d in devices if d.uuid == parent]
            else:
                hits = [d for u, d in mig_map.items() if u.startswith(key)]
            if len(hits) != 1:
                notes.append(f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no single MIG slice")
                break
            dev = hits[0]
            notes.append(
                f"{entry} is a MIG slice of {dev.uuid}: NVML meters the whole GPU, so the "
                "energy is the parent GPU's"
            )
            if dev not in chosen:
                chosen.append(dev)
            dev.mig.append(entry)
            continue
        if entry.startswith("GPU-"):
            hits = [d for d in devices if d.uuid.startswith(entry)]
            if len(hits) != 1:
                what = "is ambiguous" if hits else "matches no GPU"
                notes.append(f"CUDA_VISIBLE_DEVICES entry {entry!r} {what}; list ends there")
                break
            dev = hits[0]
        else:
            idx = _strtoul(entry)
            if idx < 0 or idx >= len(devices):
                if idx >= len(devices):
                    notes.append(f"CUDA_VISIBLE_DEVICES index {idx} out of range; list ends there")
                break
            dev = devices[idx]
        if dev in chosen:
            notes.append(f"CUDA_VISIBLE_DEVICES names {dev.uuid} twice: CUDA then sees no GPU")
            return []
        chosen.append(dev)
    return chosen


class _Meter:
    """Energy of one device."""

    def __init__(self, dev: SelectedDevice) -> None:
        self.dev = dev
        self.method = "none"
        self.counter0: float | None = None  # mJ
        self.energy_j = 0.0
        self.power_w = 0.0
        self.max_power_w = 0.0
        self.util_sum = 0.0
        self.util_n = 0
        self.lost = False
        self.last_t: float | None = None


class NvidiaGPUSensor(Sensor):
    """All selected NVIDIA GPUs as one "gpu" sensor (see the module doc for the method)."""

    component = "gpu"

    def __init__(
        self, devices: list[SelectedDevice], nvml: Any, *, owns_nvml: bool = False
    ) -> None:
        super().__init__()
        if not devices:
            raise SensorError("no NVIDIA GPU selected")
        self.nvml = nvml
        self.owns_nvml = owns_nvml
        self.lock_fds: list[int] = []  # per-node measurer locks (ecotrain.sensors.gpulock)
        self.meters = [_Meter(d) for d in devices]
        self.method = "none"
        names = sorted({d.name for d in devices})
        self.name = ", ".join(f"{n} x{sum(d.name == n for d in devices)}" for n in names)
        self._t0: float | None = None
        self._t_last: float | None = None
        self.max_power_w = 0.0
        self._closed = False

    # -- the sampling loop --------------------------------------------------------------

    def start(self, now: float) -> None:
        """Pick each device's method (counter, else power) and read its baseline."""
        self._t0 = self._t_last = now
        for m in self.meters:
            label = f"GPU {m.dev.index} ({m.dev.uuid})"
            try:
                m.counter0 = _nvml_call(
                    self.nvml, "nvmlDeviceGetTotalEnergyConsumption", m.dev.handle
                )
                m.method = "measured"
            except GPULost as e:
                m.lost = True
                self._note(f"{label} lost at start: {e}")
                continue
            except GPUError:
                try:
                    m.power_w = _power_w(self.nvml, m.dev.handle)
                    m.method = "integrated"
                    self._note(f"{label}: no energy counter (pre-Volta?); integrating power")
                except GPUError as e:
                    self._note(f"{label}: neither energy counter nor power reading ({e})")
            m.last_t = now
        self.method = _combine([m.method for m in self.meters])

    def sample(self, now: float) -> Reading:
        """Read every live device; a failing one keeps its last total."""
        if self._t0 is None:
            self.start(now)
        total_power = 0.0
        util_sum = 0.0
        util_n = 0
        for m in self.meters:
            if m.lost or m.method == "none":
                continue
            try:
                self._read(m, now)
            except GPULost as e:
                m.lost = True
                at = now - self._t0 if self._t0 is not None else 0.0
                self._note(
                    f"GPU {m.dev.index} ({m.dev.uuid}) lost at {at:.1f} s: {e}; "
                    f"keeping its {m.energy_j:.0f} J to then"
                )
                continue
            except GPUError as e:
                self._note(f"GPU {m.dev.index}: {e}; kept last total")
                continue
            total_power += m.power_w
            try:
                util = _nvml_call(self.nvml, "nvmlDeviceGetUtilizationRates", m.dev.handle).gpu
                m.util_sum += util
                m.util_n += 1
                util_sum += util
                util_n += 1
            except GPUError:
                pass  # utilisation is a detail; energy matters
        self._t_last = now
        self.energy_j = sum(m.energy_j for m in self.meters)
        self.last_power_w = total_power
        self.max_power_w = max(self.max_power_w, total_power)
        return Reading(self.energy_j, total_power, util_sum / util_n if util_n else None)

    def _read(self, m: _Meter, now: float) -> None:
        dt = now - m.last_t if m.last_t is not None else 0.0
        if m.method == "measured":
            counter = _nvml_call(self.nvml, "nvmlDeviceGetTotalEnergyConsumption", m.dev.handle)
            if m.counter0 is None or counter < m.counter0:
                # the driver was reloaded or the GPU reset: start a new baseline
                self._note(f"GPU {m.dev.index}: energy counter went back; re-based")
                m.counter0 = counter - m.energy_j * 1000
            energy = (counter - m.counter0) / 1000
            # power from the counter's increase saves an NVML call per device per tick
            if dt > 0:
                m.power_w = (energy - m.energy_j) / dt
            m.energy_j = energy
        else:
            power = _power_w(self.nvml, m.dev.handle)
            if dt > 0:
                m.energy_j += (power + m.power_w) / 2 * dt
            m.power_w = power
        m.max_power_w = max(m.max_power_w, m.power_w)
        m.last_t = now

    # -- the record ----------------------------------------------------------------------

    def hardware(self) -> dict:
        """Model, count, GPU-hours, power and utilisation, per device and overall."""
        wall = (self._t_last - self._t0) if self._t0 is not None and self._t_last else 0.0
        per_device = []
        for m in self.meters:
            d = {
                "index": m.dev.index,
                "uuid": m.dev.uuid,
                "model": m.dev.name,
                "method": m.method,
                "energy_j": round(m.energy_j, 3),
            }
            if m.dev.mig:
                d["mig"] = list(m.dev.mig)
            if wall > 0:
                d["mean_power_w"] = round(m.energy_j / wall, 2)
                d["max_power_w"] = round(m.max_power_w, 2)
            if m.util_n:
                d["mean_utilisation"] = round(m.util_sum / m.util_n, 2)
            if m.lost:
                d["lost"] = True
            per_device.append(d)
        models = sorted({m.dev.name for m in self.meters})
        hw: dict = {
            "model": models[0] if len(models) == 1 else ", ".join(models),
            "count": len(self.meters),
            "gpu_hours": len(self.meters) * wall / 3600,
            "uuids": [m.dev.uuid for m in self.meters],
            "method_rule": "measured if every device has an energy counter, else integrated",
            "devices": per_device,
        }
        if wall > 0:
            hw["mean_power_w"] = round(self.energy_j / wall, 2)
            hw["max_power_w"] = round(self.max_power_w, 2)
        utils = [m.util_sum / m.util_n for m in self.meters if m.util_n]
        if utils:
            hw["mean_utilisation"] = round(sum(utils) / len(utils), 2)
        return hw

    def close(self) -> None:
        """Shut NVML down if this sensor initialised it; give the GPUs' locks back."""
        from ecotrain.sensors.gpulock import release

        release(self.lock_fds)
        if self.owns_nvml and not self._closed:
            self._closed = True
            try:
                _nvml_call(self.nvml, "nvmlShutdown")
            except GPUError:
                pass

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


def _power_w(nvml: Any, handle: Any) -> float:
    return _nvml_call(nvml, "nvmlDeviceGetPowerUsage", handle) / 1000


def _combine(methods: list[str]) -> str:
    """The sensor's method: the weakest of the devices that report energy."""
    useful = [m for m in methods if m != "none"]
    if not useful:
        return "none"
    return "measured" if all(m == "measured" for m in useful) else "integrated"


def _nvml_library_present() -> bool:
    """Cheap check before importing pynvml (~30 ms) on machines with no NVIDIA driver."""
    if not sys.platform.startswith("linux"):
        return True  # let nvmlInit decide elsewhere
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def probe(env: Mapping[str, str], nvml: Any = None) -> NvidiaGPUSensor:
    """Initialise NVML and return a sensor for the visible GPUs, or raise SensorError(why)."""
    if nvml is None:
        if not _nvml_library_present():
            raise SensorError("no NVIDIA driver: libnvidia-ml.so.1 not found")
        try:
            import pynvml as nvml
        except ImportError as e:
            raise SensorError(f"nvidia-ml-py not installed ({e})") from None
    try:
        _nvml_call(nvml, "nvmlInit")
    except GPUError as e:
        raise SensorError(f"no NVIDIA driver: {e}") from None
    notes: list[str] = []
    try:
        devices = select_devices(env, nvml, notes)
    except GPUError as e:
        _nvml_call(nvml, "nvmlShutdown")
        raise SensorError(f"NVML could not list GPUs: {e}") from None
    if not devices:
        _nvml_call(nvml, "nvmlShutdown")
        why = "; ".join(notes) or "NVML reports none"
        cvd = env.get("CUDA_VISIBLE_DEVICES")
        if cvd is not None:
            why = f"CUDA_VISIBLE_DEVICES={cvd!r}" + (f"; {'; '.join(notes)}" if notes else "")
        raise SensorError(f"no GPU visible ({why})")
    from ecotrain.sensors.gpulock import claim

    won, fds = claim([d.uuid for d in devices], env)
    others = [d.uuid for d in devices if d.uuid not in won]
    if not won:
        _nvml_call(nvml, "nvmlShutdown")
        raise SensorError(
            f"GPU(s) {', '.join(others)} measured by another ecotrain process on this node "
            "(one measurer per GPU per node; see that run's record)"
        )
    devices = [d for d in devices if d.uuid in won]
    sensor = NvidiaGPUSensor(devices, nvml, owns_nvml=True)
    sensor.lock_fds = fds
    sensor.notes.extend(notes)
    if others:
        sensor.notes.append(
            f"GPU(s) {', '.join(others)} measured by another ecotrain process on this node"
        )
    return sensor
