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

Shared GPUs and MIG: the run is charged its share of each device, not the whole device
(:mod:`ecotrain.sensors.gpushare`): by per-process SM utilisation samples, else memory,
else per process, from the processes NVML lists against the run's own process tree; a MIG
slice by its compute-slice fraction of the parent GPU, which is all NVML can meter. The
record keeps the device's own energy, the split method, how many other processes were
there and the idle power beside the charged energy.

:func:`probe` takes a per-node measurer lock per GPU (or MIG slice), so ranks of a job that
all see every GPU count each once; a GPU that lists its processes may be measured by
several runs, as each is charged only its own share.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecotrain.sensors.base import Reading, SensorError
from ecotrain.sensors.gpushare import GPUSensorBase, ProcessUse, ShareLedger, Unit


class GPUError(Exception):
    """An NVML call failed."""


class GPULost(GPUError):
    """The device is gone: lost, not found, reset, or the driver answered 'unknown'."""


class GPUNotSupported(GPUError):
    """The device does not support this query."""


# NVML return codes (nvml.h); names kept so the fake module and pynvml agree.
_NOT_SUPPORTED = {3, 13}  # NOT_SUPPORTED, FUNCTION_NOT_FOUND
_LOST = {6, 15, 16, 28, 999}  # NOT_FOUND, GPU_IS_LOST, RESET_REQUIRED, GPU_NOT_FOUND, UNKNOWN
_NOT_FOUND = 6


def _nvml_call(nvml: Any, fn: str, *args: Any, empty_if_not_found: bool = False) -> Any:
    """Call ``nvml.<fn>(*args)``, translating NVML errors; the only place that sees them.

    ``empty_if_not_found``: NOT_FOUND means "no data" for this query (process utilisation
    samples), not a lost GPU; return None for it.
    """
    try:
        func = getattr(nvml, fn)
    except AttributeError:
        raise GPUNotSupported(f"{fn} not in this nvidia-ml-py") from None
    try:
        return func(*args)
    except nvml.NVMLError as e:
        code = getattr(e, "value", None)
        if empty_if_not_found and code == _NOT_FOUND:
            return None
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
    # (full MIG UUID, MIG device handle) of the chosen slices; a slice whose handle could
    # not be found (old-style entry on a driver without the ids) is charged as its parent
    mig_slices: list[tuple[str, Any]] = field(default_factory=list)

    def lock_keys(self) -> list[str]:
        """What one measurer claims: the slices when chosen by MIG, else the whole GPU."""
        return [u for u, _h in self.mig_slices] or [self.uuid]


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


def mig_slices(nvml: Any, handle: Any) -> list[tuple[str, Any]]:
    """(MIG UUID, MIG device handle) of each populated slice of a GPU; [] if none or no MIG."""
    try:
        count = _nvml_call(nvml, "nvmlDeviceGetMaxMigDeviceCount", handle)
    except GPUError:
        return []
    out = []
    for j in range(count):
        try:
            mig = _nvml_call(nvml, "nvmlDeviceGetMigDeviceHandleByIndex", handle, j)
            out.append((_text(_nvml_call(nvml, "nvmlDeviceGetUUID", mig)), mig))
        except GPUError:
            continue  # unpopulated slot
    return out


def mig_mode(nvml: Any, handle: Any) -> bool | None:
    """Whether MIG is enabled on a GPU now; None when the GPU cannot say (no MIG support)."""
    try:
        current = _nvml_call(nvml, "nvmlDeviceGetMigMode", handle)
    except GPUError:
        return None
    if isinstance(current, list | tuple):
        current = current[0]
    return bool(current)


_MIG_PROFILE = re.compile(r"(?:(\d+)c\.)?(\d+)g\.\d+gb", re.IGNORECASE)


def mig_fraction(nvml: Any, parent: Any, mig: Any) -> tuple[float, str] | None:
    """A slice's compute-slice fraction of its parent GPU, and how it was read.

    ``nvmlDeviceGetAttributes(mig).computeInstanceSliceCount`` over the parent's slice
    count (``nvmlDeviceGetMaxMigDeviceCount``: 7 on A100/H100, 4 on A30); else the profile
    in the slice's name ("MIG 1g.10gb", "MIG 1c.3g.40gb"). None if neither is known.
    """
    try:
        total = int(_nvml_call(nvml, "nvmlDeviceGetMaxMigDeviceCount", parent))
    except GPUError:
        return None
    if total <= 0:
        return None
    slices = None
    try:
        attrs = _nvml_call(nvml, "nvmlDeviceGetAttributes", mig)
        slices = int(attrs.computeInstanceSliceCount)
    except (GPUError, AttributeError, TypeError, ValueError):
        try:
            match = _MIG_PROFILE.search(_text(_nvml_call(nvml, "nvmlDeviceGetName", mig)))
        except GPUError:
            match = None
        if match:
            slices = int(match.group(1) or match.group(2))
    if not slices or slices > total:
        return None
    return slices / total, f"{slices}/{total} compute slices"


def _old_style_slice(nvml: Any, uuid: str, handle: Any, ids: str) -> tuple[str, Any] | None:
    """The slice named by a pre-R470 "<gi>/<ci>" suffix, if the driver reports its ids."""
    try:
        gi, ci = (int(x) for x in ids.split("/"))
        if (
            _nvml_call(nvml, "nvmlDeviceGetGpuInstanceId", handle) == gi
            and _nvml_call(nvml, "nvmlDeviceGetComputeInstanceId", handle) == ci
        ):
            return uuid, handle
    except (GPUError, ValueError):
        pass
    return None


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
    mig_map: dict[str, tuple[SelectedDevice, Any]] | None = None
    for raw in cvd.split(","):
        entry = raw.strip()
        if entry in seen:
            notes.append(f"CUDA_VISIBLE_DEVICES repeats {entry!r}: CUDA then sees no GPU")
            return []
        seen.add(entry)
        if entry.startswith("MIG-"):
            if mig_map is None:
                mig_map = {u: (d, h) for d in devices for u, h in mig_slices(nvml, d.handle)}
            if entry.startswith("MIG-GPU-"):  # pre-R470 form MIG-GPU-<uuid>/<gi>/<ci>
                parent, _, ids = entry[4:].partition("/")
                hits = [
                    (d, _old_style_slice(nvml, u, h, ids))
                    for u, (d, h) in mig_map.items()
                    if d.uuid == parent
                ]
                hits = [(d, s) for d, s in hits if s is not None] or [
                    (d, None) for d in devices if d.uuid == parent
                ]
            else:
                hits = [(d, (u, h)) for u, (d, h) in mig_map.items() if u.startswith(entry)]
            if len(hits) != 1:
                notes.append(f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no single MIG slice")
                break
            dev, slice_ = hits[0]
            notes.append(
                f"{entry} is a MIG slice of {dev.uuid}: NVML meters the parent GPU; the run "
                "is charged the slice's compute fraction of it"
            )
            if dev not in chosen:
                chosen.append(dev)
            dev.mig.append(entry)
            if slice_ is not None:
                dev.mig_slices.append(slice_)
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


class _UnitHandle:
    """How one run lists the processes of one device or MIG slice (see gpushare.Unit)."""

    def __init__(self, unit: Unit, handle: Any, per_process_util: bool) -> None:
        self.unit = unit
        self.handle = handle
        self.per_process_util = per_process_util  # not on MIG slices (NVML does not)
        self.last_ts = 0  # last process utilisation sample seen (NVML's µs timestamps)


class _Meter:
    """Energy of one device, and the run's share of it."""

    def __init__(self, dev: SelectedDevice) -> None:
        self.dev = dev
        self.method = "none"
        self.counter0: float | None = None  # mJ
        self.energy_j = 0.0  # the device's energy since start
        self.charged_j = 0.0  # the run's share of it
        self.power_w = 0.0
        self.charged_power_w = 0.0
        self.max_power_w = 0.0
        self.util_sum = 0.0
        self.util_n = 0
        self.lost = False
        self.last_t: float | None = None
        self.units: list[_UnitHandle] = []
        self.ledger = ShareLedger([])


class NvidiaGPUSensor(GPUSensorBase):
    """All selected NVIDIA GPUs as one "gpu" sensor (see the module doc for the method).

    ``pids(now)`` gives the run's process ids (its tree) each tick; with it, a GPU other
    processes use too is split between them (:mod:`ecotrain.sensors.gpushare`). Without
    it every selected GPU is charged whole, apart from MIG slices' compute fraction.
    ``in_container``: NVML reports host PIDs, which a container's PID namespace cannot see;
    when none of the listed PIDs is visible here, the split is impossible and said so.
    """

    component = "gpu"

    def __init__(
        self,
        devices: list[SelectedDevice],
        nvml: Any,
        *,
        owns_nvml: bool = False,
        pids: Callable[[float], Iterable[int]] | None = None,
        in_container: bool = False,
        pid_visible: Callable[[int], bool] | None = None,
    ) -> None:
        super().__init__()
        if not devices:
            raise SensorError("no NVIDIA GPU selected")
        self.nvml = nvml
        self.owns_nvml = owns_nvml
        self.pids = pids
        self.in_container = in_container
        self.pid_visible = pid_visible or (lambda pid: os.path.exists(f"/proc/{pid}"))
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
        """Pick each device's method (counter, else power), its share units; read baselines."""
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
            try:
                self._setup_units(m)
            except GPUError as e:  # lost while reading its baseline: sample() says so
                self._note(f"{label}: process split not set up ({e})")
        self.method = combine_methods([m.method for m in self.meters])

    def _setup_units(self, m: _Meter) -> None:
        """What the run's share of ``m`` is split over: the GPU, or its MIG slices."""
        m.units = []
        slices = m.dev.mig_slices
        if m.dev.mig and not slices:
            self._note(
                f"GPU {m.dev.index}: MIG slice(s) {', '.join(m.dev.mig)} not identified; "
                "charged the whole parent GPU"
            )
        if not slices and not m.dev.mig and mig_mode(self.nvml, m.dev.handle):
            # MIG on, parent chosen (CVD unset, or an index): the run's processes can be on
            # any slice, so each slice is a unit with its own fraction and process list.
            slices = mig_slices(self.nvml, m.dev.handle)
        for uuid, handle in slices:
            found = mig_fraction(self.nvml, m.dev.handle, handle)
            if found is None:
                self._note(
                    f"GPU {m.dev.index}: compute fraction of MIG slice {uuid} unknown; "
                    "charged the whole parent GPU"
                )
                m.units = []
                break
            fraction, text = found
            m.units.append(_UnitHandle(Unit(uuid, fraction, text), handle, False))
        if not m.units:
            m.units = [_UnitHandle(Unit(f"GPU {m.dev.index}"), m.dev.handle, True)]
        m.ledger = ShareLedger([u.unit for u in m.units])
        if self.pids is not None:
            for u in m.units:
                if u.per_process_util:
                    self._process_util(u)  # baseline: samples from before the run are not ours

    def sample(self, now: float) -> Reading:
        """Read every live device; a failing one keeps its last total."""
        if self._t0 is None:
            self.start(now)
        ours = self._our_pids(now)
        total_power = 0.0
        util_sum = 0.0
        util_n = 0
        for m in self.meters:
            if m.lost or m.method == "none":
                continue
            try:
                self._read(m, now, ours)
            except GPULost as e:
                m.lost = True
                at = now - self._t0 if self._t0 is not None else 0.0
                self._note(
                    f"GPU {m.dev.index} ({m.dev.uuid}) lost at {at:.1f} s: {e}; "
                    f"keeping its {m.charged_j:.0f} J to then"
                )
                continue
            except GPUError as e:
                self._note(f"GPU {m.dev.index}: {e}; kept last total")
                continue
            total_power += m.charged_power_w
            try:
                util = _nvml_call(self.nvml, "nvmlDeviceGetUtilizationRates", m.dev.handle).gpu
                m.util_sum += util
                m.util_n += 1
                util_sum += util
                util_n += 1
            except GPUError:
                pass  # utilisation is a detail; energy matters
        self._t_last = now
        self.energy_j = sum(m.charged_j for m in self.meters)
        self.last_power_w = total_power
        self.max_power_w = max(self.max_power_w, total_power)
        return Reading(self.energy_j, total_power, util_sum / util_n if util_n else None)

    def _read(self, m: _Meter, now: float, ours: set[int] | None) -> None:
        dt = now - m.last_t if m.last_t is not None else 0.0
        before = m.energy_j
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
        if dt <= 0:
            return
        shares = [u.unit.share(self._processes(u, ours), ours or set()) for u in m.units]
        share = m.ledger.add(m.energy_j - before, dt, shares)
        m.charged_j = m.ledger.charged_j
        m.charged_power_w = share * m.power_w

    # -- who is on the GPU ----------------------------------------------------------------

    def _our_pids(self, now: float) -> set[int] | None:
        if self.pids is None:
            return None
        try:
            return set(self.pids(now))
        except Exception as e:  # noqa: BLE001 - the tree is the CPU model's too; degrade
            self._note(f"process tree unreadable for the GPU split: {e}")
            return None

    def _processes(self, u: _UnitHandle, ours: set[int] | None) -> list[ProcessUse] | None:
        """The processes on a unit now, or None when they cannot be told apart (whole GPU)."""
        if ours is None or u.unit.whole_reason is not None:
            return None
        try:
            listed = _nvml_call(self.nvml, "nvmlDeviceGetComputeRunningProcesses", u.handle)
        except GPULost:
            raise
        except GPUError as e:
            return self._whole(u, f"no process list ({e})")
        procs: dict[int, ProcessUse] = {}
        for p in listed or []:
            memory = getattr(p, "usedGpuMemory", None)
            procs[int(p.pid)] = ProcessUse(int(p.pid), memory=memory)
        if u.per_process_util:
            for pid, util in self._process_util(u).items():
                procs.setdefault(pid, ProcessUse(pid)).sm_util = util
        if (
            self.in_container
            and procs
            and not (ours & procs.keys())
            and not any(self.pid_visible(pid) for pid in procs)
        ):
            return self._whole(
                u,
                "NVML lists host PIDs this container cannot see, so processes can't be told apart",
            )
        return list(procs.values())

    def _process_util(self, u: _UnitHandle) -> dict[int, float]:
        """SM utilisation per pid, summed over the samples since the last call."""
        try:
            samples = _nvml_call(
                self.nvml,
                "nvmlDeviceGetProcessUtilization",
                u.handle,
                u.last_ts,
                empty_if_not_found=True,
            )
        except GPULost:
            raise
        except GPUError as e:
            u.per_process_util = False
            self._note(f"{u.unit.label}: no per-process utilisation ({e}); split by memory")
            return {}
        out: dict[int, float] = {}
        for s in samples or []:
            if s.timeStamp <= u.last_ts:
                continue
            out[int(s.pid)] = out.get(int(s.pid), 0.0) + float(s.smUtil)
        u.last_ts = max([u.last_ts, *(s.timeStamp for s in samples or [])])
        return out

    def _whole(self, u: _UnitHandle, why: str) -> None:
        u.unit.whole_reason = why
        self._note(f"{u.unit.label}: {why}; charged whole")
        return None

    # -- the record ----------------------------------------------------------------------

    share_rule = property(lambda self: SHARE_RULE)

    def _label(self, m: _Meter) -> str:
        return f"GPU {m.dev.index} ({m.dev.uuid})"

    def _device_fields(self, m: _Meter) -> dict:
        d: dict = {"index": m.dev.index, "uuid": m.dev.uuid, "model": m.dev.name}
        if m.dev.mig:
            d["mig"] = list(m.dev.mig)
        return d

    def _shutdown(self) -> None:
        if self.owns_nvml and not self._closed:
            self._closed = True
            try:
                _nvml_call(self.nvml, "nvmlShutdown")
            except GPUError:
                pass


SHARE_RULE = (
    "a GPU used by other processes is split per tick by SM utilisation samples, else by "
    "memory, else per process; a MIG slice is charged its compute-slice fraction of the "
    "parent; idle gaps carry the last split; nothing is charged before the first use"
)


def _power_w(nvml: Any, handle: Any) -> float:
    return _nvml_call(nvml, "nvmlDeviceGetPowerUsage", handle) / 1000


def combine_methods(methods: list[str]) -> str:
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


def probe(
    env: Mapping[str, str],
    nvml: Any = None,
    *,
    pids: Callable[[float], Iterable[int]] | None = None,
    in_container: bool | None = None,
) -> NvidiaGPUSensor:
    """Initialise NVML and return a sensor for the visible GPUs, or raise SensorError(why).

    ``pids``: the run's process ids at a tick, for the split of shared GPUs (see
    :class:`NvidiaGPUSensor`). ``in_container`` defaults to what :mod:`cgroups` detects.
    """
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

    # One measurer per GPU (or per MIG slice: two runs on two slices of one GPU each
    # measure the parent and are charged their own slice's fraction).
    # One measurer per GPU (or per MIG slice: two runs on two slices of one GPU each
    # measure the parent and are charged their own slice's fraction). A GPU that lists its
    # processes may be measured by several runs at once: each is charged only its own
    # processes' share, so nothing is counted twice (the lock still guards GPUs that can't).
    won, fds = claim([k for d in devices for k in d.lock_keys()], env)
    keep: list[SelectedDevice] = []
    refused: list[str] = []
    shared: list[str] = []
    for d in devices:
        lost = [k for k in d.lock_keys() if k not in won]
        if not lost:
            keep.append(d)
        elif pids is not None and _lists_processes(nvml, d):
            keep.append(d)
            shared.extend(lost)
        else:
            refused.extend(lost)
            if len(lost) < len(d.lock_keys()):  # some of its slices won: keep those
                d.mig_slices = [(u, h) for u, h in d.mig_slices if u in won]
                keep.append(d)
    if not keep:
        from ecotrain.sensors.gpulock import release

        release(fds)
        _nvml_call(nvml, "nvmlShutdown")
        raise SensorError(
            f"GPU(s) {', '.join(refused)} measured by another ecotrain process on this node "
            "(one measurer per GPU per node; see that run's record)"
        )
    devices = keep
    if in_container is None:
        from ecotrain.sensors.cgroups import in_container as detect

        in_container = detect() is not None
    sensor = NvidiaGPUSensor(
        devices, nvml, owns_nvml=True, pids=pids, in_container=bool(in_container)
    )
    sensor.lock_fds = fds
    sensor.notes.extend(notes)
    if refused:
        sensor.notes.append(
            f"GPU(s) {', '.join(refused)} measured by another ecotrain process on this node"
        )
    if shared:
        sensor.notes.append(
            f"GPU(s) {', '.join(shared)} also measured by another ecotrain run on this node; "
            "each run is charged its own processes' share"
        )
    return sensor


def _lists_processes(nvml: Any, dev: SelectedDevice) -> bool:
    """Whether NVML lists the processes on every part of ``dev`` the run would use."""
    try:
        for handle in [h for _u, h in dev.mig_slices] or [dev.handle]:
            _nvml_call(nvml, "nvmlDeviceGetComputeRunningProcesses", handle)
    except GPUError:
        return False
    return True


def _can(fn: Callable[[], Any], ok: Callable[[Any], str] = lambda _v: "yes") -> str:
    """ "yes ..." or "no (why)" for one capability query, for `ecotrain doctor`."""
    try:
        return ok(fn())
    except GPUError as e:
        return f"no ({e})"


def inventory(env: Mapping[str, str], nvml: Any = None) -> list[dict]:
    """Every NVIDIA GPU on the machine and what ecotrain can read on it (`ecotrain doctor`).

    Raises SensorError when there is no driver. Does not take the measurer locks.
    """
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
    try:
        visible = {d.uuid for d in select_devices(env, nvml)}
        out = []
        for d in _all_devices(nvml):
            h = d.handle
            mode = mig_mode(nvml, h)
            if mode is None:
                mig = "not supported"
            elif not mode:
                mig = "off"
            else:
                parts = []
                for uuid, mh in mig_slices(nvml, h):
                    found = mig_fraction(nvml, h, mh)
                    parts.append(f"{uuid} ({found[1] if found else 'fraction unknown'})")
                mig = f"on: {len(parts)} slice(s)" + (f": {', '.join(parts)}" if parts else "")
            out.append(
                {
                    "vendor": "NVIDIA",
                    "index": d.index,
                    "name": d.name,
                    "uuid": d.uuid,
                    "visible to runs here": "yes" if d.uuid in visible else "no",
                    "energy counter": _can(
                        lambda h=h: _nvml_call(nvml, "nvmlDeviceGetTotalEnergyConsumption", h),
                        lambda _v: "yes (measured)",
                    ),
                    "power": _can(lambda h=h: _power_w(nvml, h), lambda w: f"yes ({w:.0f} W now)"),
                    "processes": _can(
                        lambda h=h: _nvml_call(nvml, "nvmlDeviceGetComputeRunningProcesses", h),
                        lambda ps: f"yes ({len(ps or [])} running now)",
                    ),
                    "per-process utilisation": _can(
                        lambda h=h: _nvml_call(
                            nvml, "nvmlDeviceGetProcessUtilization", h, 0, empty_if_not_found=True
                        ),
                        lambda _v: "yes (split by SM utilisation)",
                    ),
                    "MIG": mig,
                }
            )
        return out
    finally:
        try:
            _nvml_call(nvml, "nvmlShutdown")
        except GPUError:
            pass
