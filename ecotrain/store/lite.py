"""Write a finished run's record into an existing SQLite store with the standard library.

A short command's record used to cost a detached ``ecotrain sync`` that imported
SQLAlchemy: 0.3 s of CPU and 40 MiB, more than the wrapper itself. For the common case (a
SQLite store that already exists, a record with no checkpoints to link) this module writes
it in a few milliseconds with ``sqlite3``, with the same newer-state-wins upsert as
:meth:`ecotrain.store.db.Store.write_record` (tests/test_hostile_run.py checks the rows are
identical). Anything else — a new or older store that needs its schema made or migrated,
checkpoints, a server, a lock held too long, a final record whose region has a grid
series (its time-resolved CO2e, ecotrain.grid_series.account_run, needs the full store) —
returns False, and the full store does it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ecotrain.store.records import DATETIME_FIELDS, parse_datetime

# Columns SQLAlchemy's JSON type stores (ecotrain.store.schema): a None there is JSON null.
_JSON_COLUMNS = frozenset({"command", "tags", "notes", "gpu_devices", "progress", "prediction"})
# SQLAlchemy's text form of a DateTime on SQLite, which comparisons in SQL rely on.
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
# ecotrain.store.db._later_state, in SQL: only a later state of a run replaces the stored one.
_LATER = (
    "(excluded.ended_at IS NOT NULL AND runs.ended_at IS NULL)"
    " OR (excluded.ended_at IS NOT NULL AND runs.ended_at IS NOT NULL AND {cmp})"
    " OR (excluded.ended_at IS NULL AND runs.ended_at IS NULL AND {cmp})"
).format(
    cmp="coalesce(runs.heartbeat_at, runs.started_at)"
    " <= coalesce(excluded.heartbeat_at, excluded.started_at)"
)


def sqlite_file(target: str | None) -> Path | None:
    """The file of a SQLite target (a path, ``sqlite:///path`` or None for the default
    store); None for a database server."""
    if not target:
        from ecotrain.config import user_data_dir

        return user_data_dir() / "ecotrain.db"
    if target.startswith("sqlite:///"):
        rest = target[len("sqlite:///") :]
        return Path(rest) if rest and rest != ":memory:" else None
    if "://" in target:
        return None
    return Path(target).expanduser().resolve()


def _value(key: str, value: Any) -> Any:
    if key in DATETIME_FIELDS and value is not None:
        return parse_datetime(value).strftime(_DATETIME_FORMAT)
    if key in _JSON_COLUMNS or isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def write(path: Path, record: dict, timeout_s: float = 0.05) -> bool:
    """Write ``record`` into the SQLite store at ``path``; whether it did. Never raises."""
    if record.get("checkpoints") or record.get("links") or record.get("paths"):
        return False
    try:
        if path.stat().st_size == 0:
            return False  # a new store: the full store creates its schema
        conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    except (OSError, sqlite3.Error):
        return False
    try:
        conn.execute(f"PRAGMA busy_timeout={max(1, int(timeout_s * 1000))}")
        conn.execute("PRAGMA foreign_keys=ON")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        run = record["run"]
        if not columns or not set(run) <= columns:
            return False  # an older schema: the full store migrates it first
        if run.get("ended_at") is not None and run.get("region"):
            has_series = conn.execute(
                "SELECT 1 FROM grid_series WHERE region = ? LIMIT 1", (run["region"],)
            ).fetchone()
            if has_series:
                return False  # the full store adds the time-resolved CO2e
        names = list(run)
        quoted = ", ".join(f'"{n}"' for n in names)
        updates = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n != "run_id")
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            f"INSERT INTO runs ({quoted}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT (run_id) DO UPDATE SET {updates} WHERE {_LATER}",
            [_value(n, run[n]) for n in names],
        )
        if cur.rowcount and record.get("samples") is not None:
            conn.execute("DELETE FROM samples WHERE run_id = ?", (run["run_id"],))
            conn.executemany(
                "INSERT INTO samples (run_id, t_s, gpu_w, cpu_w, ram_w) VALUES (?, ?, ?, ?, ?)",
                [(run["run_id"], *point[:4]) for point in record["samples"]],
            )
        conn.execute("COMMIT")
        return True
    except (sqlite3.Error, KeyError, TypeError, ValueError, OverflowError):
        # OverflowError: an int SQLite cannot hold; the full store quarantines such a record.
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        return False
    finally:
        conn.close()
