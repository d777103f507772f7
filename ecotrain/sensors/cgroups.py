"""Containers: whether ecotrain runs in one, and how many CPUs its cgroup lets it use.

Docker, Kubernetes and SLURM limit CPU with a cgroup quota while ``os.cpu_count()`` still
reports every CPU of the host. The quota is read where the kernel keeps it:

- cgroup v2: ``cpu.max`` ("200000 100000" = 2 CPUs; "max 100000" = no limit) of this
  process's cgroup (``0::/path`` in ``/proc/self/cgroup``) and each parent, the smallest
  limit winning;
- cgroup v1: ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = no limit) in the
  ``cpu`` controller's hierarchy, the same walk.

The CPU set (``--cpuset-cpus``, SLURM's binding) comes from ``os.sched_getaffinity``.
Everything takes a ``root`` so tests run on a fake tree. Nothing here raises for a missing
or unreadable file: no answer is ``None``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_CONTAINER_MARKERS = ("docker", "kubepods", "containerd", "libpod", "lxc", "crio")


@dataclass(frozen=True)
class CPULimit:
    """CPUs a cgroup quota allows (may be fractional: 1.5), and where it was read."""

    cpus: float
    source: str


def _cgroup_paths(root: Path) -> tuple[str | None, str | None]:
    """(v2 path, v1 cpu-controller path) of this process from /proc/self/cgroup."""
    v2 = v1 = None
    try:
        text = (root / "proc/self/cgroup").read_text()
    except OSError:
        return None, None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier, controllers, path = parts
        if hier == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _walk(base: Path, path: str) -> list[Path]:
    """The cgroup directory for ``path`` under ``base`` and its parents up to ``base``.

    Inside a container the cgroup namespace usually makes the path "/" while the files sit
    at ``base`` itself; a path that does not exist under ``base`` is tried as ``base``.
    """
    parts = [p for p in path.split("/") if p]
    dirs = [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]
    return [d for d in dirs if d.is_dir()] or [base]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_quota(root: Path = Path("/")) -> CPULimit | None:
    """The CPU quota of this process's cgroup (v2 then v1), or None when unlimited/unknown."""
    v2, v1 = _cgroup_paths(root)
    fs = root / "sys/fs/cgroup"
    best: CPULimit | None = None
    if v2 is not None:
        for d in _walk(fs, v2):
            text = _read(d / "cpu.max")
            if not text:
                continue
            quota, _, period = text.partition(" ")
            try:
                cpus = int(quota) / int(period or 100000)
            except ValueError:
                continue  # "max": no limit at this level
            if cpus > 0 and (best is None or cpus < best.cpus):
                best = CPULimit(cpus, f"cgroup v2 cpu.max ({text}) in {d.relative_to(root)}")
        if best is not None:
            return best
    if v1 is not None:
        for name in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
            base = fs / name
            if not base.is_dir():
                continue
            for d in _walk(base, v1):
                quota, period = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
                try:
                    q, p = int(quota or "-1"), int(period or "0")
                except ValueError:
                    continue
                if q > 0 and p > 0 and (best is None or q / p < best.cpus):
                    best = CPULimit(
                        q / p,
                        f"cgroup v1 cpu.cfs_quota_us/period ({q}/{p}) in {d.relative_to(root)}",
                    )
            break
    return best


def affinity_cpus() -> int | None:
    """CPUs this process may run on (cpuset / taskset / SLURM binding), if the OS says."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def usable_cpus(root: Path = Path("/")) -> tuple[int, str]:
    """Logical CPUs this process can use: min(CPU set, quota rounded up), and why.

    A quota of 1.5 CPUs lets the process keep two CPUs busy 75% of the time, so the count
    is rounded up; the source string keeps the exact quota.
    """
    host = os.cpu_count() or 1
    n, source = host, f"os.cpu_count() = {host}"
    aff = affinity_cpus()
    if aff is not None and aff < n:
        n, source = aff, f"CPU affinity: {aff} of {host} CPUs"
    quota = cpu_quota(root)
    if quota is not None and math.ceil(quota.cpus) < n:
        n, source = max(1, math.ceil(quota.cpus)), f"{quota.source}: {quota.cpus:g} CPUs"
    return n, source


def in_container(root: Path = Path("/"), env: Mapping[str, str] | None = None) -> str | None:
    """Why this looks like a container (Docker, Podman, Kubernetes, Apptainer), or None."""
    env = os.environ if env is None else env
    if (root / ".dockerenv").exists():
        return "/.dockerenv exists (Docker)"
    if (root / "run/.containerenv").exists():
        return "/run/.containerenv exists (Podman)"
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "KUBERNETES_SERVICE_HOST is set (Kubernetes pod)"
    for var in ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER"):
        if env.get(var):
            return f"{var} is set (Apptainer/Singularity)"
    for who in ("self", "1"):
        text = _read(root / f"proc/{who}/cgroup") or ""
        for marker in _CONTAINER_MARKERS:
            if marker in text:
                return f"/proc/{who}/cgroup names {marker}"
    return None
