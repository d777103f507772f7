"""NVML's total-energy counter vs integrated power samples, over one window of real GPU work.

    python bench/gpu_nvml.py [--seconds 30] [--index 0] [--interval 0.1] [--share]

--share starts a second process running the same kind of work on the same GPU (a lighter
batch) and measures both with ecotrain's split (SM utilisation samples, else memory): each
one's charged energy, their sum over the counter (should be ~1) and the methods used.
When the GPU is in MIG mode, each slice's charged energy by its compute-slice fraction is
reported too (no work is placed on the slices: the fractions and their sum, <= 1).

Runs a small CUDA training loop with PyTorch (an MLP, bf16 autocast, AdamW) when torch with
CUDA is importable, else measures the idle GPU (and says so). Over the same window it reads:
- the NVML total-energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ; Volta and newer),
  after a CUDA synchronise at both ends;
- nvmlDeviceGetPowerUsage (mW) every --interval seconds, integrated by the trapezoid rule;
- ecotrain's own GPU sensor (ecotrain.sensors.discover), when this ecotrain has one.
and prints them with their ratios to the counter: Markdown rows, then one JSON line (the
bench/run.py hook protocol). Without a GPU or NVML it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time


def skip(reason: str) -> int:
    """No GPU here: say so in the hook protocol and succeed."""
    print(f"gpu_nvml: skipped: {reason}", file=sys.stderr)
    print(json.dumps({"name": "gpu_nvml", "skipped": reason}))
    return 0


class PowerPoller(threading.Thread):
    """Reads power every ``interval`` s; integrates it (trapezoid) and feeds ecotrain's sensor."""

    def __init__(self, nvml, handle, interval: float, sensor=None, extra=None) -> None:
        super().__init__(daemon=True)
        self.nvml, self.handle, self.interval, self.sensor = nvml, handle, interval, sensor
        self.extra = dict(extra or {})  # name -> more ecotrain sensors (shares, MIG slices)
        self.points: list[tuple[float, float]] = []  # (monotonic s, watts)
        self.stop_event = threading.Event()
        self.errors: list[str] = []

    def read(self) -> None:
        now = time.monotonic()
        try:
            self.points.append((now, self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0))
        except self.nvml.NVMLError as e:
            self.errors.append(str(e))
        if self.sensor is not None:
            try:
                self.sensor.sample(now)
            except Exception as e:  # noqa: BLE001 - report, keep measuring
                self.errors.append(f"ecotrain sensor: {e}")
                self.sensor = None
        for name, sensor in list(self.extra.items()):
            try:
                sensor.sample(now)
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"{name}: {e}")
                del self.extra[name]

    def run(self) -> None:
        self.read()
        while not self.stop_event.wait(self.interval):
            self.read()

    def energy_j(self, t0: float, t1: float) -> float:
        """Trapezoid over the samples, holding the first/last value out to the window edges."""
        pts = [(t, w) for t, w in self.points if t0 <= t <= t1]
        if not pts:
            return 0.0
        total = (pts[0][0] - t0) * pts[0][1] + (t1 - pts[-1][0]) * pts[-1][1]
        for (ta, wa), (tb, wb) in zip(pts, pts[1:], strict=False):
            total += (tb - ta) * (wa + wb) / 2
        return total


def make_workload(index: int, batch: int = 8192):
    """A step function doing real training work on the GPU, or None without torch+CUDA."""
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # CUDA index == NVML index
    try:
        import torch
    except ImportError:
        return None, None, "torch not installed: idle GPU"
    if not torch.cuda.is_available():
        return None, None, "torch without CUDA: idle GPU"
    device = torch.device("cuda", index)
    torch.manual_seed(0)
    width = 4096
    model = torch.nn.Sequential(
        *[m for _ in range(4) for m in (torch.nn.Linear(width, width), torch.nn.GELU())],
        torch.nn.Linear(width, 16),
    ).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, width, device=device)
    y = torch.randint(0, 16, (batch,), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        torch.cuda.synchronize(device)

    name = f"torch {torch.__version__}: 5-layer MLP 4096 wide, batch {batch}, bf16, AdamW"
    return step, sync, name


def ecotrain_gpu_sensor():
    """ecotrain's GPU sensor for this process, or (None, why not)."""
    try:
        from ecotrain.config import load_settings
        from ecotrain.sensors import discover

        sensors, _reasons = discover(os.getpid(), os.environ, load_settings())
    except Exception as e:  # noqa: BLE001 - an older or partial ecotrain: report without it
        return None, f"unavailable ({type(e).__name__}: {e})"
    gpus = [s for s in sensors if getattr(s, "component", None) == "gpu"]
    if not gpus:
        return None, "no GPU sensor discovered"
    return gpus[0], f"{gpus[0].name} ({gpus[0].method})"


WORKER_START_S = 3.0  # the other tenant imports torch and creates its CUDA context first


def worker(index: int, seconds: float) -> int:
    """--worker: the other tenant of --share, a lighter batch on the same GPU until told."""
    step, sync, _name = make_workload(index, batch=2048)
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        if step is None:
            time.sleep(0.05)
        else:
            step()
    if sync is not None:
        sync()
    return 0


def start_worker(index: int, seconds: float):
    """The second process of --share (its own CUDA context on the same GPU)."""
    import subprocess

    return subprocess.Popen(
        [sys.executable, __file__, "--worker", "--index", str(index), "--seconds", str(seconds)]
    )


def share_sensors(nvml, index: int, pids: dict[str, int]) -> dict:
    """One ecotrain GPU sensor per named process, each charged its own share of GPU ``index``."""
    from ecotrain.sensors.nvidia import NvidiaGPUSensor, select_devices

    devices = lambda: select_devices({"CUDA_VISIBLE_DEVICES": str(index)}, nvml)  # noqa: E731
    return {
        name: NvidiaGPUSensor(devices(), nvml, pids=lambda now, pid=pid: [pid])
        for name, pid in pids.items()
    }


def mig_sensors(nvml, handle) -> dict:
    """One sensor per MIG slice of a GPU in MIG mode ({} otherwise): its fraction of the GPU."""
    from ecotrain.sensors.nvidia import NvidiaGPUSensor, mig_mode, mig_slices, select_devices

    if not mig_mode(nvml, handle):
        return {}
    out = {}
    for uuid, _h in mig_slices(nvml, handle):
        devices = select_devices({"CUDA_VISIBLE_DEVICES": uuid}, nvml)
        if devices:
            out[f"mig {uuid}"] = NvidiaGPUSensor(devices, nvml)
    return out


def split_figures(sensors: dict, t_end: float, counter_j: float | None) -> dict:
    """Each extra sensor's charged energy and split, and the sum over the counter."""
    out: dict = {}
    for name, sensor in sensors.items():
        reading = sensor.sample(t_end)
        device = sensor.hardware()["devices"][0]
        out[name] = {
            "charged_j": round(reading.energy_j, 2),
            "share_method": device.get("share_method"),
            "share_method_s": device.get("share_method_s"),
            "other_processes": device.get("other_processes"),
            "mig_fraction": device.get("mig_fraction"),
            "idle_power_w": device.get("idle_power_w"),
            "above_idle_energy_j": device.get("above_idle_energy_j"),
        }
    total = sum(v["charged_j"] for v in out.values())
    return {
        "sensors": out,
        "sum_j": round(total, 2),
        "sum_over_counter": round(total / counter_j, 4) if counter_j else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured work first")
    ap.add_argument("--index", type=int, default=0, help="NVML device index")
    ap.add_argument("--interval", type=float, default=0.1, help="power sampling period, s")
    ap.add_argument("--share", action="store_true", help="a second process on the same GPU")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.index, args.seconds)
    if os.environ.get("ECOTRAIN_NO_GPU"):
        return skip("ECOTRAIN_NO_GPU is set")
    try:
        import pynvml as nvml
    except ImportError:
        return skip("pynvml (nvidia-ml-py) not installed")
    try:
        nvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded...
        return skip(f"no NVML: {e}")
    try:
        if args.index >= nvml.nvmlDeviceGetCount():
            return skip(f"no GPU with index {args.index}")
        handle = nvml.nvmlDeviceGetHandleByIndex(args.index)
        gpu_name = nvml.nvmlDeviceGetName(handle)
        gpu_name = gpu_name.decode() if isinstance(gpu_name, bytes) else gpu_name
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            has_counter = True
        except nvml.NVMLError:
            has_counter = False

        step, sync, workload = make_workload(args.index)
        sync = sync or (lambda: None)
        t_end = time.monotonic() + args.warmup
        while step is not None and time.monotonic() < t_end:
            step()
        sync()

        sensor, sensor_state = ecotrain_gpu_sensor()
        other = None
        extra: dict = {}
        if args.share:
            # the other tenant gets CUDA up during our warm-up-free start; measured from t0
            other = start_worker(args.index, args.seconds + 5.0)
            time.sleep(WORKER_START_S)
            extra.update(share_sensors(nvml, args.index, {"this": os.getpid(), "other": other.pid}))
        extra.update(mig_sensors(nvml, handle))
        poller = PowerPoller(nvml, handle, args.interval, sensor, extra)
        t0 = time.monotonic()
        for s in extra.values():
            s.start(t0)
        e0 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle) if has_counter else None
        if sensor is not None:
            sensor.start(t0)
        poller.start()
        steps = 0
        t_end = t0 + args.seconds
        while time.monotonic() < t_end:
            if step is None:
                time.sleep(0.05)
            else:
                step()
                steps += 1
        sync()
        e1 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle) if has_counter else None
        t1 = time.monotonic()
        poller.stop_event.set()
        poller.join()
        window = t1 - t0
        if poller.sensor is not None:
            reading = poller.sensor.sample(t1)
            sensor_j = reading.energy_j
            poller.sensor.close()
        else:
            sensor_j = None
        counter_j = (e1 - e0) / 1000.0 if has_counter else None
        split = split_figures(poller.extra, t1, counter_j) if poller.extra else None
        if other is not None:
            other.terminate()
            other.wait(timeout=30)
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass

    integrated_j = poller.energy_j(t0, t1)

    def ratio(value: float | None) -> str:
        return f"{value / counter_j:.4f}" if value is not None and counter_j else "—"

    def watts(value: float | None) -> str:
        return f"{value / window:.1f} W" if value is not None else "—"

    print(f"GPU {args.index}: {gpu_name}; work: {workload or 'idle'}; {steps} steps")
    print(f"window {window:.2f} s, {len(poller.points)} power samples every {args.interval} s")
    print("| source | energy | mean power | ÷ counter |")
    print("|---|---|---|---|")
    counter_text = f"{counter_j:.1f} J" if counter_j is not None else "not supported"
    print(f"| NVML total-energy counter | {counter_text} | {watts(counter_j)} | 1 |")
    print(
        f"| nvmlDeviceGetPowerUsage × time (trapezoid, {args.interval} s) | "
        f"{integrated_j:.1f} J | {watts(integrated_j)} | {ratio(integrated_j)} |"
    )
    sensor_text = f"{sensor_j:.1f} J" if sensor_j is not None else sensor_state
    print(
        f"| ecotrain sensor: {sensor_state} | {sensor_text} | {watts(sensor_j)} | "
        f"{ratio(sensor_j)} |"
    )
    if split:
        for name, v in split["sensors"].items():
            print(
                f"| ecotrain split: {name} ({v['share_method']}, "
                f"{v['other_processes']} other process(es), MIG {v['mig_fraction']}) | "
                f"{v['charged_j']:.1f} J | {watts(v['charged_j'])} | {ratio(v['charged_j'])} |"
            )
        print(f"| ecotrain split: sum | {split['sum_j']:.1f} J | — | {ratio(split['sum_j'])} |")
    if poller.errors:
        print(f"errors: {sorted(set(poller.errors))[:3]}", file=sys.stderr)
    figures = {
        "gpu": gpu_name,
        "workload": workload or "idle",
        "window_s": round(window, 3),
        "steps": steps,
        "power_samples": len(poller.points),
        "counter_j": None if counter_j is None else round(counter_j, 2),
        "integrated_j": round(integrated_j, 2),
        "integrated_over_counter": None if not counter_j else round(integrated_j / counter_j, 4),
        "ecotrain_sensor": sensor_state,
        "ecotrain_sensor_j": None if sensor_j is None else round(sensor_j, 2),
        "ecotrain_over_counter": None
        if not counter_j or sensor_j is None
        else round(sensor_j / counter_j, 4),
    }
    if split:
        figures["split"] = split
    print(json.dumps({"name": "gpu_nvml", "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
