"""A fake ``pynvml`` module driven by a clock the test controls (as Zeus's tests do).

clock = FakeClock()
nvml = FakeNVML(clock, [FakeGPU("GPU-aaaa", power_w=250.0)])
sensor = NvidiaGPUSensor(select_devices({}, nvml), nvml)
sensor.start(clock.t); clock.t = 10; sensor.sample(clock.t)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999


class NVMLError(Exception):
    """Like pynvml.NVMLError: carries the NVML return code in ``value``."""

    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeClock:
    """A settable time source (seconds)."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeGPU:
    """One device. ``power_w`` is a constant or a function of time.

    With ``has_counter`` the energy counter is the exact integral of a constant power (or
    ``energy_mj(t)`` when given). ``lost_at``: from then on every call raises GPU_IS_LOST
    (or ``lost_code``). ``mig``: UUIDs of its MIG slices.
    """

    uuid: str
    name: str = "NVIDIA A100-SXM4-80GB"
    power_w: float | Callable[[float], float] = 250.0
    has_counter: bool = True
    has_power: bool = True
    energy_mj: Callable[[float], float] | None = None
    counter_offset_mj: float = 123_456.0  # counters start at driver load, not 0
    lost_at: float | None = None
    lost_code: int = NVML_ERROR_GPU_IS_LOST
    util: int = 50
    mig: list[str] = field(default_factory=list)
    # Processes, for the shared-GPU split: pid -> device memory bytes (None: not available)
    # at time t; None here means the device cannot list processes (NOT_SUPPORTED).
    processes: Callable[[float], dict[int, int | None]] | None = None
    # SM utilisation per pid over the tick that ends at t (0 or absent: no sample);
    # None: nvmlDeviceGetProcessUtilization is not supported.
    proc_util: Callable[[float], dict[int, int]] | None = None
    mig_mode: bool = False
    # MIG UUID -> compute slices (1 for "1g.10gb"); slices not named here have 1
    mig_slices: dict[str, int] = field(default_factory=dict)
    # MIG UUID -> its processes at t, as ``processes``
    mig_processes: dict[str, Callable[[float], dict[int, int | None]]] = field(default_factory=dict)
    mig_attributes: bool = True  # False: nvmlDeviceGetAttributes unsupported (name parsed)


@dataclass
class _MigHandle:
    parent: FakeGPU
    uuid: str


class FakeNVML:
    """Enough of pynvml's surface for ecotrain.sensors.nvidia, plus call counting."""

    NVMLError = NVMLError
    NVML_ERROR_GPU_IS_LOST = NVML_ERROR_GPU_IS_LOST
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED

    def __init__(
        self, clock: FakeClock, gpus: list[FakeGPU], *, init_error: int | None = None
    ) -> None:
        self.clock = clock
        self.gpus = gpus
        self.init_error = init_error
        self.initialised = 0
        self.calls: dict[str, int] = {}

    # -- helpers -------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _check(self, gpu: FakeGPU) -> None:
        if not self.initialised:
            raise NVMLError(1)
        if gpu.lost_at is not None and self.clock.t >= gpu.lost_at:
            raise NVMLError(gpu.lost_code)

    def _power(self, gpu: FakeGPU) -> float:
        p = gpu.power_w
        return p(self.clock.t) if callable(p) else p

    # -- pynvml API ----------------------------------------------------------------

    def nvmlInit(self) -> None:
        self._count("nvmlInit")
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._count("nvmlShutdown")
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGPU:
        if not 0 <= i < len(self.gpus):
            raise NVMLError(2)
        return self.gpus[i]

    def nvmlDeviceGetUUID(self, handle: FakeGPU | _MigHandle) -> str:
        return handle.uuid

    def nvmlDeviceGetName(self, handle: FakeGPU | _MigHandle) -> str:
        if isinstance(handle, _MigHandle):
            slices = handle.parent.mig_slices.get(handle.uuid, 1)
            return f"{handle.parent.name} MIG {slices}g.{10 * slices}gb"
        return handle.name

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGPU) -> int:
        self._count("nvmlDeviceGetTotalEnergyConsumption")
        self._check(gpu)
        if not gpu.has_counter:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if gpu.energy_mj is not None:
            return int(gpu.counter_offset_mj + gpu.energy_mj(self.clock.t))
        return int(gpu.counter_offset_mj + self._power(gpu) * self.clock.t * 1000)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGPU) -> int:
        self._count("nvmlDeviceGetPowerUsage")
        self._check(gpu)
        if not gpu.has_power:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(round(self._power(gpu) * 1000))

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGPU) -> SimpleNamespace:
        self._check(gpu)
        return SimpleNamespace(gpu=gpu.util, memory=10)

    def nvmlDeviceGetMaxMigDeviceCount(self, gpu: FakeGPU) -> int:
        return 7 if gpu.mig else 0

    def nvmlDeviceGetMigMode(self, gpu: FakeGPU) -> list[int]:
        if not gpu.mig:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        mode = int(gpu.mig_mode)
        return [mode, mode]

    def nvmlDeviceGetAttributes(self, handle: FakeGPU | _MigHandle) -> SimpleNamespace:
        if not isinstance(handle, _MigHandle) or not handle.parent.mig_attributes:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        slices = handle.parent.mig_slices.get(handle.uuid, 1)
        return SimpleNamespace(
            computeInstanceSliceCount=slices, gpuInstanceSliceCount=slices, memorySizeMB=10240
        )

    def nvmlDeviceGetComputeRunningProcesses(
        self, handle: FakeGPU | _MigHandle
    ) -> list[SimpleNamespace]:
        self._count("nvmlDeviceGetComputeRunningProcesses")
        if isinstance(handle, _MigHandle):
            self._check(handle.parent)
            trace = handle.parent.mig_processes.get(handle.uuid)
            procs = trace(self.clock.t) if trace else {}
        else:
            self._check(handle)
            if handle.processes is None:
                raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
            procs = handle.processes(self.clock.t)
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in procs.items()]

    def nvmlDeviceGetProcessUtilization(
        self, handle: FakeGPU | _MigHandle, last_seen_us: int
    ) -> list[SimpleNamespace]:
        """Samples newer than ``last_seen_us`` (NVML's CPU timestamps, µs); NOT_FOUND if none."""
        self._count("nvmlDeviceGetProcessUtilization")
        if isinstance(handle, _MigHandle) or handle.proc_util is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        self._check(handle)
        stamp = int(round(self.clock.t * 1e6))
        samples = [
            SimpleNamespace(pid=pid, timeStamp=stamp, smUtil=util, memUtil=0, encUtil=0, decUtil=0)
            for pid, util in handle.proc_util(self.clock.t).items()
            if util > 0
        ]
        if stamp <= last_seen_us or not samples:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return samples

    def nvmlDeviceGetMigDeviceHandleByIndex(self, gpu: FakeGPU, j: int) -> _MigHandle:
        if j >= len(gpu.mig):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return _MigHandle(gpu, gpu.mig[j])

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, mig: _MigHandle) -> FakeGPU:
        return mig.parent


# -- amdsmi ---------------------------------------------------------------------------------

AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NOT_FOUND = 31


class AmdSmiLibraryException(Exception):
    """Like amdsmi.AmdSmiLibraryException: the amdsmi_status_t code via get_error_code()."""

    def __init__(self, code: int) -> None:
        super().__init__(f"amdsmi error {code}")
        self.code = code

    def get_error_code(self) -> int:
        return self.code

    def get_error_info(self) -> str:
        return str(self)


@dataclass
class FakeAMDGPU:
    """One AMD device as amdsmi reports it (values as amdsmi 6.x returns them).

    ``counter_resolution``: µJ per accumulator step (15.3 on MI200/MI300). Without a counter
    ``amdsmi_get_energy_count`` raises NOT_SUPPORTED; ``current_power``/``average_power``
    may be "N/A" as amdsmi reports for a field the device lacks.
    """

    uuid: str
    hip_id: int
    name: str = "AMD Instinct MI250X"
    serial: str = "0x5C7D6D5F4A7B0000"
    power_w: float | Callable[[float], float] = 300.0
    has_counter: bool = True
    counter_resolution: float = 15.3
    current_power: bool = True  # current_socket_power reported (else "N/A")
    average_power: bool = True
    processes: Callable[[float], dict[int, int]] | None = None  # pid -> VRAM bytes
    lost_at: float | None = None


class FakeAMDSMI:
    """Enough of the amdsmi module for ecotrain.sensors.amd, driven by a FakeClock."""

    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiInitFlags = SimpleNamespace(INIT_AMD_GPUS=2)

    def __init__(self, clock: FakeClock, gpus: list[FakeAMDGPU]) -> None:
        self.clock = clock
        self.gpus = gpus  # amd-smi (PCI) order; hip_id gives HIP's
        self.initialised = 0
        self.init_flags: list[int] = []

    def _check(self, gpu: FakeAMDGPU) -> None:
        if not self.initialised:
            raise AmdSmiLibraryException(32)
        if gpu.lost_at is not None and self.clock.t >= gpu.lost_at:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_FOUND)

    def _power(self, gpu: FakeAMDGPU) -> float:
        p = gpu.power_w
        return p(self.clock.t) if callable(p) else p

    def amdsmi_init(self, flags: int = 0) -> None:
        self.init_flags.append(flags)
        self.initialised += 1

    def amdsmi_shut_down(self) -> None:
        self.initialised -= 1

    def amdsmi_get_processor_handles(self) -> list[FakeAMDGPU]:
        return list(self.gpus)

    def amdsmi_get_gpu_enumeration_info(self, gpu: FakeAMDGPU) -> dict:
        return {"hip_id": gpu.hip_id, "drm_card": gpu.hip_id, "hsa_id": gpu.hip_id + 1}

    def amdsmi_get_gpu_device_uuid(self, gpu: FakeAMDGPU) -> str:
        return gpu.uuid

    def amdsmi_get_gpu_asic_info(self, gpu: FakeAMDGPU) -> dict:
        return {"market_name": gpu.name, "asic_serial": gpu.serial, "vendor_id": "0x1002"}

    def amdsmi_get_energy_count(self, gpu: FakeAMDGPU) -> dict:
        self._check(gpu)
        if not gpu.has_counter:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        uj = self._power(gpu) * self.clock.t * 1e6 + 7_000_000.0  # since driver load
        return {
            "energy_accumulator": int(uj / gpu.counter_resolution),
            "counter_resolution": gpu.counter_resolution,
            "timestamp": int(self.clock.t * 1e9),
        }

    def amdsmi_get_power_info(self, gpu: FakeAMDGPU) -> dict:
        self._check(gpu)
        watts = int(round(self._power(gpu)))
        return {
            "current_socket_power": watts if gpu.current_power else "N/A",
            "average_socket_power": watts if gpu.average_power else "N/A",
            "gfx_voltage": "N/A",
            "power_limit": 560,
        }

    def amdsmi_get_gpu_process_list(self, gpu: FakeAMDGPU) -> list[dict]:
        self._check(gpu)
        if gpu.processes is None:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        return [
            {
                "name": "python",
                "pid": pid,
                "mem": vram,
                "engine_usage": {"gfx": 0, "enc": 0},
                "memory_usage": {"gtt_mem": 0, "cpu_mem": 0, "vram_mem": vram},
            }
            for pid, vram in gpu.processes(self.clock.t).items()
        ]
