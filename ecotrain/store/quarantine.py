"""Spooled records a database refused for good: set aside, listed, never retried by themselves,
never dropped.

A record the database rejects for a reason a retry cannot fix (a value out of range for a
column, a constraint, a spool file that is not a record) would otherwise be retried by every
sync after every run, forever, and ``ecotrain sync`` would say nothing. Instead its spool file
moves to ``<spool>/quarantine/`` with a ``.why`` file beside it; ``ecotrain sync --status``
lists it, ``ecotrain sync`` exits non-zero while any is there, and once the cause is fixed
(e.g. ``ecotrain db upgrade``) ``ecotrain sync --retry-quarantined`` puts them back.

The quarantine folder is below the spool folder, so the spool's own ``*.json`` listing never
sees these files. Light: no SQLAlchemy import here.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

WHY_SUFFIX = ".why"


def quarantine_dir(spool_directory: Path | None = None) -> Path:
    """The quarantine folder below the spool folder (created owner-only)."""
    if spool_directory is None:
        from ecotrain.store.spool import spool_dir

        spool_directory = spool_dir()
    path = spool_directory / "quarantine"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def is_permanent(e: BaseException) -> bool:
    """Whether a failed write of a record will fail the same way every time.

    Data and integrity errors (a number too large for its column, a NUL byte PostgreSQL will
    not store, a broken constraint) and a record that is not shaped like one are permanent.
    Anything about the connection (unreachable, locked, too many clients, permission that an
    administrator may grant) is not: the record stays in the spool and is retried.
    """
    from sqlalchemy import exc

    if isinstance(e, exc.DataError | exc.IntegrityError):
        return True
    if isinstance(e, exc.DBAPIError):
        return False
    if isinstance(e, exc.StatementError):
        # Raised by the driver before the statement reached the server: the value itself.
        e = e.orig or e
    return isinstance(e, OverflowError | TypeError | KeyError | ValueError)


def set_aside(path: Path, reason: str) -> Path:
    """Move a spool file into quarantine with why; returns its new path. A newer state of
    the same run replaces an older one already set aside (same file name)."""
    folder = quarantine_dir(path.parent)
    target = folder / path.name
    (folder / (path.name + WHY_SUFFIX)).write_text(
        f"{datetime.now(UTC).isoformat(timespec='seconds')} {reason.strip()}\n"
    )
    os.replace(path, target)
    return target


def listing(spool_directory: Path | None = None) -> list[dict[str, str]]:
    """The records set aside: file, run id, when and why."""
    folder = quarantine_dir(spool_directory)
    out = []
    for path in sorted(folder.glob("*.json")):
        why_file = folder / (path.name + WHY_SUFFIX)
        try:
            when, _, why = why_file.read_text().strip().partition(" ")
        except OSError:
            when, why = "", "(reason not recorded)"
        out.append({"file": str(path), "run_id": path.stem, "since": when, "reason": why})
    return out


def release(spool_directory: Path | None = None) -> int:
    """Put every quarantined record back in the spool for the next sync; returns how many."""
    folder = quarantine_dir(spool_directory)
    moved = 0
    for path in sorted(folder.glob("*.json")):
        target = folder.parent / path.name
        if target.exists():
            # A newer state of the run is already spooled; it supersedes this one.
            path.unlink()
        else:
            os.replace(path, target)
        (folder / (path.name + WHY_SUFFIX)).unlink(missing_ok=True)
        moved += 1
    return moved
