"""NVML's total-energy counter vs integrated power samples, over one window of real GPU work.

    python bench/gpu_nvml.py [--seconds 30] [--index 0] [--interval 0.1]

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

    def __init__(self, nvml, handle, interval: float, sensor=None) -> None:
        super().__init__(daemon=True)
        self.nvml, self.handle, self.interval, self.sensor = nvml, handle, interval, sensor
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


def make_workload(index: int):
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
    x = torch.randn(8192, width, device=device)
    y = torch.randint(0, 16, (8192,), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        torch.cuda.synchronize(device)

    name = f"torch {torch.__version__}: 5-layer MLP 4096 wide, batch 8192, bf16, AdamW"
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured work first")
    ap.add_argument("--index", type=int, default=0, help="NVML device index")
    ap.add_argument("--interval", type=float, default=0.1, help="power sampling period, s")
    args = ap.parse_args(argv)
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
        poller = PowerPoller(nvml, handle, args.interval, sensor)
        t0 = time.monotonic()
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
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass

    counter_j = (e1 - e0) / 1000.0 if has_counter else None
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
    print(json.dumps({"name": "gpu_nvml", "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
