"""Per-run events file: how code inside a run talks to the `ecotrain run` wrapping it.

A process started by `ecotrain run` sees ``ECOTRAIN_RUN_ID``; ``ecotrain.track()`` (and the
framework callbacks) then append events to ``<data dir>/events/<run_id>.jsonl`` instead of
measuring a second time, and the wrapper's sampler reads new lines once per tick.

Format: one JSON object per line, written with a single ``write`` of less than PIPE_BUF
bytes in append mode, so lines from several processes (DDP ranks) never interleave::

    {"type": "progress",   "t": 1732350000.12, "step": 120, "total": 1000}
    {"type": "epoch",      "t": 1732350000.12, "epoch": 2, "total": 10}
    {"type": "checkpoint", "t": 1732350000.12, "path": "/abs/ckpt.safetensors",
     "role": "produced"}                       # role: produced | consumed
    {"type": "attach",     "t": 1732350000.12, "pid": 4242, "project": "bert-distill"}
    {"type": "mlflow",     "t": 1732350000.12, "run_id": "9ae5…", "tracking_uri": "file:…"}
    {"type": "figures_wanted", "t": 1732350000.12}   # a W&B run inside wants the figures

The other way, the wrapper shares its figures so far with code inside the run (for loggers
living there, like W&B) in ``<run_id>.figures.json``, replaced whole at each update.

``t`` is Unix time (seconds). Unknown types and malformed lines are skipped by readers, so
other features (e.g. the lineage audit hook) may add their own types to the same file. The
file is deleted by the wrapper when the run ends.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

EVENT_TYPES = ("progress", "epoch", "checkpoint", "attach", "mlflow", "figures_wanted")


def events_dir() -> Path:
    """``<data dir>/events``."""
    from ecotrain.config import user_data_dir

    return user_data_dir() / "events"


def events_path(run_id: str) -> Path:
    """The events file of one run."""
    return events_dir() / f"{run_id}.jsonl"


def append_event(run_id: str, event: dict[str, Any]) -> None:
    """Append one event (a ``t`` is added when missing); raises OSError on failure."""
    line = json.dumps({"t": time.time(), **event}, separators=(",", ":")) + "\n"
    path = events_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def figures_path(run_id: str) -> Path:
    """The figures the wrapper shares with the code it runs (see the module docstring)."""
    return events_dir() / f"{run_id}.figures.json"


def write_figures(run_id: str, figures: dict[str, Any]) -> None:
    """Replace the shared figures atomically (a reader never sees half a file)."""
    path = figures_path(run_id)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(figures, separators=(",", ":")))
    os.replace(tmp, path)


def read_figures(run_id: str) -> dict[str, Any] | None:
    """The latest shared figures, or None (not written yet, or unreadable)."""
    try:
        data = json.loads(figures_path(run_id).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class EventReader:
    """Reads the events appended since the last call; cheap when nothing changed (one stat)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read_new(self) -> list[dict[str, Any]]:
        """New complete events, in file order."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size <= self._offset:
            return []
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read(size - self._offset)
        except OSError:
            return []
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("type"), str):
                events.append(event)
        return events

    def remove(self) -> None:
        """Delete the file (the run is over)."""
        try:
            self.path.unlink()
        except OSError:
            pass
