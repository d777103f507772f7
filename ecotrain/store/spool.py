"""The local spool: records that could not (yet) be written to the database.

One JSON file per run id; a newer state of the same run replaces the older file, so a run
is never written twice and its latest heartbeat wins. Light on purpose: the run path spools
without importing SQLAlchemy.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecotrain.store.records import dumps, write_atomic


def spool_dir() -> Path:
    """The spool folder in the user data dir."""
    from ecotrain.config import user_data_dir

    path = user_data_dir() / "spool"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def spool_path(run_id: str, directory: Path | None = None) -> Path:
    """Where the record of ``run_id`` is spooled."""
    return (directory or spool_dir()) / f"{run_id}.json"


def spool(record: dict, directory: Path | None = None, target: str | None = None) -> Path:
    """Save a record to the spool; ``target`` is the database URL it is meant for."""
    from ecotrain.redact import redact_record

    path = spool_path(record["run"]["run_id"], directory)
    record = redact_record(record)
    if target is not None:
        record = {**record, "target": target}
    write_atomic(path, dumps(record))
    return path


def pending(directory: Path | None = None) -> list[Path]:
    """Spooled record files, oldest first (half-written temporary files are not records)."""
    files = [p for p in (directory or spool_dir()).glob("*.json") if not p.name.startswith(".")]
    return sorted(files, key=_mtime)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # taken by a concurrent sync meanwhile
        return 0.0


def load(path: Path) -> dict | None:
    """A spooled record, or None if it vanished or is unreadable (a concurrent sync took it)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def discard_if_same(path: Path, record: dict) -> bool:
    """Remove a spooled file once ``record`` is safely stored, unless a newer state of the
    run replaced the file meanwhile (then that one stays for the next sync)."""
    current = load(path)
    if current is None:
        return False
    from ecotrain.redact import redact_record

    record = redact_record(record)  # as it was spooled
    strip = {k: v for k, v in current.items() if k != "target"}
    if dumps(strip) != dumps({k: v for k, v in record.items() if k != "target"}):
        return False
    path.unlink(missing_ok=True)
    return True


def clean_stale(directory: Path | None = None, max_age_s: float = 3600.0) -> int:
    """Remove temporary files a process left when it died mid-write; returns how many."""
    import time

    removed = 0
    for tmp in (directory or spool_dir()).glob(".*.tmp"):
        if time.time() - _mtime(tmp) > max_age_s:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
