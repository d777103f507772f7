"""Energy sources behind one interface (see base.py), and :func:`discover` to pick them.

Order of preference per component:

- gpu: replayed traces if ``ECOTRAIN_REPLAY`` is set (NVML is then not touched), else NVML
  and amdsmi (skipped with ``ECOTRAIN_NO_GPU=1``). Both get the child's tree, to charge a
  GPU other processes share by the run's share (see gpushare.py).
- cpu: RAPL package counters, else the TDP x utilisation model of the child's tree.
- ram: RAPL dram counters, else the W/GB x RSS model of the child's tree.

RAPL is not used when several ranks of a job share the node (torchrun's LOCAL_WORLD_SIZE,
srun's SLURM_STEP_TASKS_PER_NODE), nor in a container limited to part of the host's CPUs:
it counts the whole socket, so each would record all of it; the tree's share is modelled.

A replay trace for cpu or ram replaces that component's sensor too, so nothing is counted
twice. The CPU and RAM models share one :class:`ProcessTree`, read once per tick.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ecotrain.sensors.base import Reading, Sensor, SensorError, SensorSummary

__all__ = ["Reading", "Sensor", "SensorError", "SensorSummary", "discover"]

_TRUE = ("1", "true", "yes", "on")


def discover(
    child_pid: int | None, env: Mapping[str, str], config: Any = None
) -> tuple[list[Sensor], list[str]]:
    """The sensors available for a run of ``child_pid``, and why others are not.

    Returns ``(sensors, reasons)``: sensors not yet started (call ``start(now)``), and one
    line per source not used, prefixed with its component ("gpu: no NVIDIA driver: ...").
    ``config`` (Settings or a mapping) may set ``powercap_root`` (tests); otherwise unused.
    Never raises for a missing source.
    """
    sensors: list[Sensor] = []
    reasons: list[str] = []
    covered: set[str] = set()
    tree = None
    if child_pid is not None:
        from ecotrain.sensors.proctree import ProcessTree

        tree = ProcessTree(child_pid)  # one read of /proc/PID/stat; shared by every sensor

    replay = env.get("ECOTRAIN_REPLAY")
    if replay:
        from ecotrain.sensors.replay import ReplaySensor

        for path in filter(None, replay.split(os.pathsep)):
            try:
                sensor = ReplaySensor(path)
            except SensorError as e:
                reasons.append(f"{_guess_component(path)}: {e}")
                continue
            sensors.append(sensor)
            covered.add(sensor.component)
        reasons.append("gpu: NVML not used (ECOTRAIN_REPLAY is set)")
        covered.add("gpu")
    elif env.get("ECOTRAIN_NO_GPU", "").lower() in _TRUE:
        reasons.append("gpu: disabled by ECOTRAIN_NO_GPU")
    else:
        # The GPU split needs the run's process ids; the tree is the CPU/RAM models' too.
        pids = None if tree is None else _tree_pids(tree)
        sensors.extend(_gpus(env, pids, reasons))

    if covered >= {"cpu", "ram"}:
        return sensors, reasons

    from ecotrain.context import ranks_on_node
    from ecotrain.sensors.rapl import POWERCAP, rapl_sensors

    root = Path(_setting(config, "powercap_root") or POWERCAP)
    shared = ranks_on_node(env)
    if shared > 1:
        # Every rank would read the same whole-socket counters: n ranks, n times the energy.
        rapl, rapl_reasons = (
            {},
            [
                f"cpu/ram: RAPL not used: {shared} ranks of this job share the node and RAPL "
                "counts the whole socket; each rank models its own process tree"
            ],
        )
    elif (boxed := _container_slice(config)) is not None:
        rapl, rapl_reasons = {}, [boxed]
    else:
        try:
            rapl, rapl_reasons = rapl_sensors(root)
        except SensorError as e:
            rapl, rapl_reasons = {}, [f"cpu/ram: {e}"]
    reasons.extend(r for r in rapl_reasons if r.split(":", 1)[0] not in covered)

    for component in ("cpu", "ram"):
        if component in covered:
            continue
        if component in rapl:
            sensors.append(rapl[component])
            continue
        if child_pid is None:
            reasons.append(f"{component}: no process to model (no child pid)")
            continue
        try:
            sensors.append(_model(component, tree))
        except SensorError as e:
            reasons.append(f"{component}: {e}")
    return sensors, reasons


def _tree_pids(tree: Any) -> Callable[[float], list[int]]:
    def pids(now: float) -> list[int]:
        tree.update(now)  # free when the CPU/RAM model already read it this tick
        return tree.live_pids

    return pids


def _gpus(
    env: Mapping[str, str], pids: Callable[[float], list[int]] | None, reasons: list[str]
) -> list[Sensor]:
    """NVIDIA (NVML) and AMD (amdsmi) GPUs; each vendor's absence is one reason line."""
    found: list[Sensor] = []
    why: list[str] = []
    for vendor, module in (("NVML", "nvidia"), ("amdsmi", "amd")):
        try:
            probe = importlib.import_module(f"ecotrain.sensors.{module}").probe
            found.append(probe(env, pids=pids))
        except SensorError as e:
            why.append(f"gpu: {e}")
        except Exception as e:  # noqa: BLE001 - a broken driver must not stop the run
            why.append(f"gpu: {vendor} failed: {e}")
    # on an NVIDIA node, "no AMD driver" in every record is noise; a real fault is not
    reasons.extend(w for w in why if not (found and "driver" in w and "failed" not in w))
    return found


def _container_slice(config: Any) -> str | None:
    """Why RAPL is not used in a container limited to part of the host, else None.

    RAPL counts the whole host socket, whatever other containers run on it; a container
    whose quota or CPU set is smaller than the host is not alone there, so its tree is
    modelled instead. A configured ``powercap_root`` (tests, odd mounts) is taken as is.
    """
    if _setting(config, "powercap_root"):
        return None
    from ecotrain.sensors.cgroups import in_container, usable_cpus

    try:
        why = in_container()
        if why is None:
            return None
        n, source = usable_cpus()
    except Exception:  # noqa: BLE001 - an odd /proc must not cost the run its RAPL
        return None
    host = os.cpu_count() or 1
    if n >= host:
        return None
    return (
        f"cpu/ram: RAPL not used: in a container ({why}) that may use {n} of the host's "
        f"{host} CPUs ({source}), and RAPL counts the whole socket; the tree is modelled"
    )


def _model(component: str, tree: Any) -> Sensor:
    if component == "cpu":
        from ecotrain.sensors.cpu_model import CPUModelSensor

        return CPUModelSensor(tree)
    from ecotrain.sensors.memory import RAMModelSensor

    return RAMModelSensor(tree)


def _setting(config: Any, name: str) -> Any:
    getter = getattr(config, "get", None)
    return getter(name) if getter is not None else None


def _guess_component(path: str) -> str:
    return next((c for c in ("cpu", "ram") if c in Path(path).name), "gpu")
