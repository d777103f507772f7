"""Who, where and what: the context recorded with a run (user, host, git, job, rank)."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path


def current_user(configured: str | None = None) -> str:
    """The user recorded with a run: config/env first, else the login name."""
    if configured:
        return configured
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return str(os.getuid())


def git_state(cwd: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree at ``cwd``, or (None, None) outside one."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return commit.stdout.strip(), dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def job_context(env: Mapping[str, str], job: str | None = None) -> dict:
    """Job, rank and node of this process under SLURM or torchrun, or an explicit --job."""
    job_id = job or env.get("SLURM_JOB_ID") or env.get("TORCHELASTIC_RUN_ID")
    rank = _int(env.get("RANK")) if env.get("RANK") else _int(env.get("SLURM_PROCID"))
    local_rank = (
        _int(env.get("LOCAL_RANK")) if env.get("LOCAL_RANK") else _int(env.get("SLURM_LOCALID"))
    )
    return {
        "job_id": job_id,
        "rank": rank,
        "local_rank": local_rank,
        "node": env.get("SLURMD_NODENAME") or socket.gethostname(),
    }


def _expand_slurm_counts(value: str) -> list[int]:
    """SLURM's compressed per-node counts, "2(x3),1" -> [2, 2, 2, 1]; [] if unparsable."""
    counts: list[int] = []
    for part in value.split(","):
        count, _, repeat = part.partition("(x")
        n, times = _int(count), _int(repeat.rstrip(")")) if repeat else 1
        if n is None or times is None:
            return []
        counts.extend([n] * times)
    return counts


def ranks_on_node(env: Mapping[str, str]) -> int:
    """How many ranks of this job run on this node (1 outside a multi-rank launch).

    torchrun sets LOCAL_WORLD_SIZE; srun sets SLURM_STEP_TASKS_PER_NODE ("8", or "2(x3),1"
    over several nodes, indexed by SLURM_NODEID). The job-level SLURM_TASKS_PER_NODE is not
    used: a batch script runs once whatever the job's task count.
    """
    local = _int(env.get("LOCAL_WORLD_SIZE"))
    if local:
        return local
    counts = _expand_slurm_counts(env.get("SLURM_STEP_TASKS_PER_NODE", ""))
    if not counts:
        return 1
    node = _int(env.get("SLURM_NODEID"))
    return counts[node] if node is not None and 0 <= node < len(counts) else max(counts)
