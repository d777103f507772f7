"""One measurer per GPU per node: a GPU is never counted twice in a job.

Under ``srun ecotrain run …`` with 8 tasks that each see all 8 GPUs, every wrapper would
measure every GPU. Each wrapper instead tries a non-blocking ``flock`` on one lock file per
GPU UUID in a node-local directory, and measures only the GPUs it won; the others' energy is
in the record of the rank that holds the lock, and this rank records its CPU and RAM share.
The kernel drops the locks when the wrapper exits, however it exits.

A lock is per GPU UUID, or per MIG slice UUID when the run was given slices. A GPU whose
processes NVML (or amdsmi) can list is measured even without its lock: each run is then
charged only its own processes' share (ecotrain.sensors.gpushare), so nothing is counted
twice; the lock matters for GPUs that cannot tell whose work is on them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path


def lock_dir(env: Mapping[str, str]) -> Path:
    """Node-local directory for the lock files (ECOTRAIN_LOCK_DIR, XDG_RUNTIME_DIR, /tmp)."""
    if env.get("ECOTRAIN_LOCK_DIR"):
        path = Path(env["ECOTRAIN_LOCK_DIR"])
    elif env.get("XDG_RUNTIME_DIR"):
        path = Path(env["XDG_RUNTIME_DIR"]) / "ecotrain"
    else:
        path = Path("/tmp") / f"ecotrain-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def claim(uuids: list[str], env: Mapping[str, str]) -> tuple[list[str], list[int]]:
    """Try to become the measurer of each GPU: (UUIDs won, open lock fds to keep)."""
    won, fds = [], []
    directory = lock_dir(env)
    for uuid in uuids:
        fd = os.open(directory / f"gpu-{uuid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        won.append(uuid)
        fds.append(fd)
    return won, fds


def release(fds: list[int]) -> None:
    """Give the GPUs back (also happens when the process exits)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()
