"""AMD GPUs through amdsmi (ROCm's Python bindings, ``import amdsmi``).

Per device, the best source the GPU has, as for NVIDIA:

- ``measured``: difference of ``amdsmi_get_energy_count`` (``energy_accumulator`` x
  ``counter_resolution`` µJ; older amdsmi named the accumulator ``power``).
- ``integrated``: ``amdsmi_get_power_info``'s ``current_socket_power`` (W), else
  ``average_socket_power`` (MI200 reports only the average), trapezoid rule. amdsmi reports
  "N/A" for a field the GPU lacks.
- ``none``: neither; said in the notes, never a silent 0.

Which GPUs: the HIP order (``amdsmi_get_gpu_enumeration_info(h)["hip_id"]``, else KFD node
ids sorted, as Zeus does), masked first by ``ROCR_VISIBLE_DEVICES`` (indices or ``GPU-<id>``
matched to the ASIC serial or the UUID), then by ``HIP_VISIBLE_DEVICES`` (or, if that is
unset, ``CUDA_VISIBLE_DEVICES``, which HIP also reads), indices into what ROCr left. The
first invalid entry ends a list, as in CUDA; an empty list means no GPU.

A GPU other processes use too is split by device memory (``amdsmi_get_gpu_process_list``;
see :mod:`ecotrain.sensors.gpushare`). Every amdsmi call goes through :func:`_smi_call`,
which maps ``AmdSmiLibraryException`` codes to the NVIDIA module's exceptions; amdsmi is
imported lazily and can be injected (``smi=``), so tests run a recorded fake.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ecotrain.sensors.base import Reading, SensorError
from ecotrain.sensors.gpushare import GPUSensorBase, ProcessUse, ShareLedger, Unit
from ecotrain.sensors.nvidia import (
    SHARE_RULE,
    GPUError,
    GPULost,
    GPUNotSupported,
    combine_methods,
)

# amdsmi_status_t codes (amdsmi.h)
_NOT_SUPPORTED = {2, 45, 48, 49}  # NOT_SUPPORTED, NO_ENERGY_DRV, NO_HSMP_SUP, NO_HSMP_MSG_SUP
_LOST = {31, 34, 51, 0xFFFFFFFF}  # NOT_FOUND, DRIVER_NOT_LOADED, NO_DRV, UNKNOWN


def _smi_call(smi: Any, fn: str, *args: Any) -> Any:
    """Call ``smi.<fn>(*args)``, translating amdsmi errors; the only place that sees them."""
    try:
        func = getattr(smi, fn)
    except AttributeError:
        raise GPUNotSupported(f"{fn} not in this amdsmi") from None
    try:
        return func(*args)
    except smi.AmdSmiLibraryException as e:
        code = e.get_error_code() if hasattr(e, "get_error_code") else None
        text = f"{fn}: {e} (amdsmi {code})"
        if code in _NOT_SUPPORTED:
            raise GPUNotSupported(text) from None
        if code in _LOST:
            raise GPULost(text) from None
        raise GPUError(text) from None


def _number(value: Any) -> float | None:
    """amdsmi's numbers, or None for its "N/A" strings."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class AMDDevice:
    """A physical AMD GPU chosen for measurement."""

    hip_index: int  # index in HIP's unmasked order
    handle: Any
    uuid: str
    name: str
    serial: str = ""


def _all_devices(smi: Any) -> list[AMDDevice]:
    handles = list(_smi_call(smi, "amdsmi_get_processor_handles"))
    order: list[tuple[int, Any]]
    try:
        order = [
            (int(_smi_call(smi, "amdsmi_get_gpu_enumeration_info", h)["hip_id"]), h)
            for h in handles
        ]
    except (GPUError, KeyError, TypeError, ValueError):
        try:
            nodes = [
                (int(_smi_call(smi, "amdsmi_get_gpu_kfd_info", h)["node_id"]), h) for h in handles
            ]
            order = [(i, h) for i, (_n, h) in enumerate(sorted(nodes, key=lambda x: x[0]))]
        except (GPUError, KeyError, TypeError, ValueError):
            order = list(enumerate(handles))  # amd-smi's own (PCI) order
    devices = []
    for hip, h in sorted(order, key=lambda x: x[0]):
        try:
            uuid = str(_smi_call(smi, "amdsmi_get_gpu_device_uuid", h))
        except GPUError:
            uuid = f"AMD-{hip}"
        try:
            asic = _smi_call(smi, "amdsmi_get_gpu_asic_info", h)
            name = str(asic.get("market_name") or "AMD GPU")
            serial = str(asic.get("asic_serial") or "")
        except GPUError:
            name, serial = "AMD GPU", ""
        devices.append(AMDDevice(hip, h, uuid, name, serial))
    return devices


def _matches(entry: str, dev: AMDDevice) -> bool:
    """ROCr's "GPU-<hex id>" names the ASIC's unique id (amdsmi's asic_serial)."""
    want = entry[4:].lower()
    serial = dev.serial.lower().removeprefix("0x")
    return bool(want) and (serial == want.removeprefix("0x") or dev.uuid.lower().startswith(want))


def _mask(
    name: str, value: str, devices: list[AMDDevice], notes: list[str], *, uuids: bool
) -> list[AMDDevice]:
    out: list[AMDDevice] = []
    if not value.strip():
        return out
    for raw in value.split(","):
        entry = raw.strip()
        if uuids and entry.upper().startswith("GPU-"):
            hits = [d for d in devices if _matches(entry, d)]
            if len(hits) != 1:
                notes.append(f"{name} entry {entry!r} matches no single GPU; list ends there")
                break
            dev = hits[0]
        else:
            try:
                idx = int(entry)
            except ValueError:
                notes.append(f"{name} entry {entry!r} not understood; list ends there")
                break
            if not 0 <= idx < len(devices):
                notes.append(f"{name} index {idx} out of range; list ends there")
                break
            dev = devices[idx]
        if dev in out:
            notes.append(f"{name} names GPU {dev.hip_index} twice; list ends there")
            break
        out.append(dev)
    return out


def select_devices(
    env: Mapping[str, str], smi: Any, notes: list[str] | None = None
) -> list[AMDDevice]:
    """The AMD GPUs this process tree can use (see the module doc). amdsmi must be up."""
    notes = notes if notes is not None else []
    devices = _all_devices(smi)
    rocr = env.get("ROCR_VISIBLE_DEVICES")
    if rocr is not None:
        devices = _mask("ROCR_VISIBLE_DEVICES", rocr, devices, notes, uuids=True)
    for var in ("HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        if env.get(var) is not None:
            devices = _mask(var, env[var], devices, notes, uuids=False)
            break
    return devices


class _Meter:
    def __init__(self, dev: AMDDevice) -> None:
        self.dev = dev
        self.method = "none"
        self.power_key: str | None = None
        self.counter0: float | None = None  # µJ
        self.energy_j = 0.0
        self.charged_j = 0.0
        self.power_w = 0.0
        self.charged_power_w = 0.0
        self.max_power_w = 0.0
        self.lost = False
        self.last_t: float | None = None
        self.unit = Unit(f"GPU {dev.hip_index}")
        self.ledger = ShareLedger([self.unit])
        self.whole_reason: str | None = None


class AMDGPUSensor(GPUSensorBase):
    """All selected AMD GPUs as one "gpu" sensor; ``pids(now)`` as for NVIDIA."""

    component = "gpu"

    def __init__(
        self,
        devices: list[AMDDevice],
        smi: Any,
        *,
        owns_smi: bool = False,
        pids: Callable[[float], Iterable[int]] | None = None,
    ) -> None:
        super().__init__()
        if not devices:
            raise SensorError("no AMD GPU selected")
        self.smi = smi
        self.owns_smi = owns_smi
        self.pids = pids
        self.lock_fds: list[int] = []
        self.meters = [_Meter(d) for d in devices]
        self.method = "none"
        names = sorted({d.name for d in devices})
        self.name = ", ".join(f"{n} x{sum(d.name == n for d in devices)}" for n in names)
        self._t0: float | None = None
        self._t_last: float | None = None
        self.max_power_w = 0.0
        self._closed = False

    def start(self, now: float) -> None:
        """Pick each device's method (energy counter, else power) and read its baseline."""
        self._t0 = self._t_last = now
        for m in self.meters:
            label = f"AMD GPU {m.dev.hip_index} ({m.dev.uuid})"
            try:
                m.counter0 = self._counter_uj(m)
                m.method = "measured"
            except GPUError as e:
                # amdsmi answers NOT_FOUND or NO_ENERGY_DRV for a missing counter, so a
                # failed counter is not a lost GPU unless power fails that way too
                try:
                    info = _smi_call(self.smi, "amdsmi_get_power_info", m.dev.handle)
                except GPULost as e2:
                    m.lost = True
                    self._note(f"{label} lost at start: {e2}")
                    continue
                except GPUError as e2:
                    self._note(f"{label}: neither energy counter nor power reading ({e2})")
                    continue
                for key in ("current_socket_power", "average_socket_power"):
                    if _number(info.get(key)) is not None:
                        m.power_key, m.power_w = key, float(_number(info[key]) or 0.0)
                        m.method = "integrated"
                        self._note(f"{label}: no energy counter ({e}); integrating {key}")
                        break
                else:
                    self._note(f"{label}: neither energy counter nor power reading (N/A)")
            m.last_t = now
        self.method = combine_methods([m.method for m in self.meters])

    def _counter_uj(self, m: _Meter) -> float:
        data = _smi_call(self.smi, "amdsmi_get_energy_count", m.dev.handle)
        acc = data.get("energy_accumulator", data.get("power"))
        res = _number(data.get("counter_resolution"))
        if _number(acc) is None or res is None:
            raise GPUNotSupported(f"amdsmi_get_energy_count returned {data!r}")
        return float(acc) * res

    def sample(self, now: float) -> Reading:
        """Read every live device; a failing one keeps its last total."""
        if self._t0 is None:
            self.start(now)
        ours = None
        if self.pids is not None:
            try:
                ours = set(self.pids(now))
            except Exception as e:  # noqa: BLE001
                self._note(f"process tree unreadable for the GPU split: {e}")
        total = 0.0
        for m in self.meters:
            if m.lost or m.method == "none":
                continue
            try:
                self._read(m, now, ours)
            except GPULost as e:
                m.lost = True
                self._note(f"AMD GPU {m.dev.hip_index} lost: {e}; keeping its {m.charged_j:.0f} J")
                continue
            except GPUError as e:
                self._note(f"AMD GPU {m.dev.hip_index}: {e}; kept last total")
                continue
            total += m.charged_power_w
        self._t_last = now
        self.energy_j = sum(m.charged_j for m in self.meters)
        self.last_power_w = total
        self.max_power_w = max(self.max_power_w, total)
        return Reading(self.energy_j, total)

    def _read(self, m: _Meter, now: float, ours: set[int] | None) -> None:
        dt = now - m.last_t if m.last_t is not None else 0.0
        before = m.energy_j
        if m.method == "measured":
            counter = self._counter_uj(m)
            if m.counter0 is None or counter < m.counter0:
                self._note(f"AMD GPU {m.dev.hip_index}: energy counter went back; re-based")
                m.counter0 = counter - m.energy_j * 1e6
            energy = (counter - m.counter0) / 1e6
            if dt > 0:
                m.power_w = (energy - m.energy_j) / dt
            m.energy_j = energy
        else:
            info = _smi_call(self.smi, "amdsmi_get_power_info", m.dev.handle)
            power = _number(info.get(m.power_key or ""))
            if power is None:
                raise GPUError(f"{m.power_key} is {info.get(m.power_key or '')!r}")
            if dt > 0:
                m.energy_j += (power + m.power_w) / 2 * dt
            m.power_w = power
        m.max_power_w = max(m.max_power_w, m.power_w)
        m.last_t = now
        if dt <= 0:
            return
        share = m.ledger.add(
            m.energy_j - before, dt, [m.unit.share(self._processes(m, ours), ours or set())]
        )
        m.charged_j = m.ledger.charged_j
        m.charged_power_w = share * m.power_w

    def _processes(self, m: _Meter, ours: set[int] | None) -> list[ProcessUse] | None:
        if ours is None or m.whole_reason is not None:
            return None
        try:
            listed = _smi_call(self.smi, "amdsmi_get_gpu_process_list", m.dev.handle)
        except GPULost:
            raise
        except GPUError as e:
            m.whole_reason = f"no process list ({e})"
            self._note(f"AMD GPU {m.dev.hip_index}: {m.whole_reason}; charged whole")
            return None
        procs: dict[int, ProcessUse] = {}
        for p in listed or []:
            if not isinstance(p, dict):  # amdsmi < 6: process handles, info on request
                try:
                    p = _smi_call(self.smi, "amdsmi_get_gpu_process_info", m.dev.handle, p)
                except GPUError:
                    continue
            pid = int(p.get("pid", -1))
            usage = p.get("memory_usage") or {}
            memory = _number(usage.get("vram_mem")) if usage else _number(p.get("mem"))
            procs[pid] = ProcessUse(pid, memory=memory)
        return list(procs.values())

    share_rule = SHARE_RULE

    def _label(self, m: _Meter) -> str:
        return f"AMD GPU {m.dev.hip_index} ({m.dev.uuid})"

    def _device_fields(self, m: _Meter) -> dict:
        d: dict = {
            "index": m.dev.hip_index,
            "uuid": m.dev.uuid,
            "model": m.dev.name,
            "vendor": "AMD",
        }
        if m.power_key:
            d["power_source"] = m.power_key
        return d

    def _shutdown(self) -> None:
        if self.owns_smi and not self._closed:
            self._closed = True
            try:
                _smi_call(self.smi, "amdsmi_shut_down")
            except GPUError:
                pass


def import_amdsmi() -> Any:
    """``import amdsmi`` quietly (it prints to stdout when libamd_smi.so is missing)."""
    if not os.path.exists("/dev/kfd"):
        raise SensorError("no AMD GPU driver: /dev/kfd not found")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import amdsmi
    except ImportError as e:
        raise SensorError(f"amdsmi not installed ({e}); it comes with ROCm") from None
    except (OSError, AttributeError, KeyError) as e:
        # no libamd_smi.so, or amdsmi older than the installed ROCm
        raise SensorError(f"amdsmi unusable: {e}") from None
    return amdsmi


def init(smi: Any) -> None:
    """``amdsmi_init`` for GPUs only, translated."""
    flags = getattr(getattr(smi, "AmdSmiInitFlags", None), "INIT_AMD_GPUS", None)
    try:
        if flags is None:
            _smi_call(smi, "amdsmi_init")
        else:
            _smi_call(smi, "amdsmi_init", flags)
    except GPUError as e:
        raise SensorError(f"no AMD GPU driver: {e}") from None


def probe(
    env: Mapping[str, str],
    smi: Any = None,
    *,
    pids: Callable[[float], Iterable[int]] | None = None,
) -> AMDGPUSensor:
    """Initialise amdsmi and return a sensor for the visible AMD GPUs, or SensorError(why)."""
    smi = smi if smi is not None else import_amdsmi()
    init(smi)
    notes: list[str] = []
    try:
        devices = select_devices(env, smi, notes)
    except GPUError as e:
        _smi_call(smi, "amdsmi_shut_down")
        raise SensorError(f"amdsmi could not list GPUs: {e}") from None
    if not devices:
        _smi_call(smi, "amdsmi_shut_down")
        raise SensorError(f"no AMD GPU visible ({'; '.join(notes) or 'amdsmi reports none'})")
    from ecotrain.sensors.gpulock import claim

    # As for NVIDIA: a GPU that lists its processes may be measured by several runs, each
    # charged its own share; the lock guards the others.
    won, fds = claim([d.uuid for d in devices], env)
    shared = [
        d.uuid
        for d in devices
        if d.uuid not in won and pids is not None and _lists_processes(smi, d)
    ]
    others = [d.uuid for d in devices if d.uuid not in won and d.uuid not in shared]
    keep = [d for d in devices if d.uuid in won or d.uuid in shared]
    if not keep:
        from ecotrain.sensors.gpulock import release

        release(fds)
        _smi_call(smi, "amdsmi_shut_down")
        raise SensorError(
            f"AMD GPU(s) {', '.join(others)} measured by another ecotrain process on this node"
        )
    sensor = AMDGPUSensor(keep, smi, owns_smi=True, pids=pids)
    sensor.lock_fds = fds
    sensor.notes.extend(notes)
    if others:
        sensor.notes.append(
            f"AMD GPU(s) {', '.join(others)} measured by another ecotrain process on this node"
        )
    if shared:
        sensor.notes.append(
            f"AMD GPU(s) {', '.join(shared)} also measured by another ecotrain run on this "
            "node; each run is charged its own processes' share"
        )
    return sensor


def _lists_processes(smi: Any, dev: AMDDevice) -> bool:
    try:
        _smi_call(smi, "amdsmi_get_gpu_process_list", dev.handle)
    except GPUError:
        return False
    return True


def inventory(env: Mapping[str, str], smi: Any = None) -> list[dict]:
    """Every AMD GPU on the machine and what ecotrain can read on it (`ecotrain doctor`)."""
    smi = smi if smi is not None else import_amdsmi()
    init(smi)
    try:
        visible = {d.uuid for d in select_devices(env, smi)}
        out = []
        for d in _all_devices(smi):
            h = d.handle
            try:
                data = _smi_call(smi, "amdsmi_get_energy_count", h)
                has = _number(data.get("energy_accumulator", data.get("power"))) is not None
                counter = "yes (measured)" if has else f"no ({data!r})"
            except GPUError as e:
                counter = f"no ({e})"
            try:
                info = _smi_call(smi, "amdsmi_get_power_info", h)
                keys = [
                    k
                    for k in ("current_socket_power", "average_socket_power")
                    if _number(info.get(k)) is not None
                ]
                power = f"yes ({', '.join(keys)})" if keys else "no (N/A)"
            except GPUError as e:
                power = f"no ({e})"
            try:
                procs = _smi_call(smi, "amdsmi_get_gpu_process_list", h)
                processes = f"yes ({len(procs or [])} running now; split by memory)"
            except GPUError as e:
                processes = f"no ({e})"
            out.append(
                {
                    "vendor": "AMD",
                    "index": d.hip_index,
                    "name": d.name,
                    "uuid": d.uuid,
                    "visible to runs here": "yes" if d.uuid in visible else "no",
                    "energy counter": counter,
                    "power": power,
                    "processes": processes,
                    "MIG": "n/a (AMD partitions are listed as GPUs)",
                }
            )
        return out
    finally:
        try:
            _smi_call(smi, "amdsmi_shut_down")
        except GPUError:
            pass
