"""The local spool: records that could not (yet) be written to the database.

One JSON file per run id; a newer state of the same run replaces the older file, so a run
is never written twice and its latest heartbeat wins. Light on purpose: the run path spools
without importing SQLAlchemy.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterable
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


# A URL's password: everything between the user's ":" and the last "@" before the host.
_URL_PASSWORD = re.compile(r"(?P<pre>://[^/:@\s]*+:)[^/\s]*@")
MASKED = "***"
# Space kept in the spool folder for the day the disk is full: freed to let one record in.
RESERVE_NAME = ".reserve"
RESERVE_BYTES = 1 << 20
used_reserve = False  # set once this process has given the reserve up


def public_target(target: str | None) -> str | None:
    """The database a record is meant for, as the spool keeps it: the URL with its password
    masked. The password stays in the configuration (file, ECOTRAIN_DB, --db) and is found
    again by :func:`resolve_target`."""
    if target is None:
        return None
    return _URL_PASSWORD.sub(rf"\g<pre>{MASKED}@", target)


def resolve_target(spooled: str | None, known: Iterable[str | None]) -> str | None:
    """The full URL for a spooled (masked) target: the known URL (configured, given with
    --db, or handed to a detached sync by environment) that masks to the same string; else
    the URL without a password, so libpq may still find it (PGPASSWORD, ~/.pgpass)."""
    if spooled is None or f":{MASKED}@" not in spooled:
        return spooled
    for url in known:
        if url and _same_scheme(public_target(url)) == _same_scheme(spooled):
            return url
    return spooled.replace(f":{MASKED}@", "@", 1)


def _same_scheme(url: str | None) -> str | None:
    # postgres://, postgresql:// and postgresql+psycopg:// name the same database
    for alias in ("postgres://", "postgresql://"):
        if url and url.startswith(alias):
            return "postgresql+psycopg://" + url[len(alias) :]
    return url


def spool(record: dict, directory: Path | None = None, target: str | None = None) -> Path:
    """Save a record to the spool; ``target`` is the database URL it is meant for (kept
    with its password masked).

    When the disk is full, the reserve file is given up to make room for this record; it
    is made again by a later spool once there is space."""
    from ecotrain.redact import redact_record

    directory = directory or spool_dir()
    path = spool_path(record["run"]["run_id"], directory)
    record = redact_record(record)
    if target is not None:
        record = {**record, "target": public_target(target)}
    data = dumps(record)
    try:
        write_atomic(path, data)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        reserve = directory / RESERVE_NAME
        if not reserve.exists():
            raise
        reserve.unlink()
        global used_reserve
        used_reserve = True
        note = "disk full: this record was spooled into the space ecotrain keeps in reserve"
        run = {**record["run"], "notes": [*(record["run"].get("notes") or []), note]}
        write_atomic(path, dumps({**record, "run": run}))
        return path
    _keep_reserve(directory)
    return path


def _keep_reserve(directory: Path) -> None:
    reserve = directory / RESERVE_NAME
    if reserve.exists():
        return
    try:
        fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return  # another process makes it, or no room: nothing to keep
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError:
        os.close(fd)
        reserve.unlink(missing_ok=True)
        return
    os.close(fd)


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
