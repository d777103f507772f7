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

    def nvmlDeviceGetName(self, handle: FakeGPU) -> str:
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

    def nvmlDeviceGetMigDeviceHandleByIndex(self, gpu: FakeGPU, j: int) -> _MigHandle:
        if j >= len(gpu.mig):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return _MigHandle(gpu, gpu.mig[j])

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, mig: _MigHandle) -> FakeGPU:
        return mig.parent
