"""A run record as plain data: what the run path builds without importing SQLAlchemy.

A record is ``{"run": {column: value}, "samples": [[t_s, gpu_w, cpu_w, ram_w], ...],
"checkpoints": [...], "links": [...]}``. Datetimes travel as ISO-8601 strings (UTC), so a
record can be spooled as JSON and written later, by run id, idempotently.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATETIME_FIELDS = ("started_at", "ended_at", "heartbeat_at", "first_seen_at", "seen_at")


def utcnow() -> datetime:
    """Naive UTC now (the store keeps naive UTC datetimes on every backend)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_json_value(value: Any) -> Any:
    """Datetimes to ISO strings for JSON."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def parse_datetime(value: Any) -> Any:
    """ISO strings back to naive UTC datetimes; other values pass through."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    return value


def dumps(record: dict) -> str:
    """Serialise a record to JSON."""
    return json.dumps(record, default=to_json_value, separators=(",", ":"))


def write_atomic(path: Path, text: str) -> None:
    """Write a file so a reader never sees half of it (owner-only permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # ".tmp" suffix: never mistaken for a record by the spool's "*.json", even if the
    # process dies mid-write (the run path ends with os._exit).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
