"""Schema versioning: a version number in ``ecotrain_meta`` and an ordered list of steps.

We chose this over Alembic: one schema, a handful of additive steps, and it runs the same on
SQLite and PostgreSQL with no extra files to ship. A step is a function of a connection; it
must be idempotent on a database that is already at its version.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection, Engine

from ecotrain.store.schema import SCHEMA_VERSION, meta, metadata


def _add_columns(conn: Connection, table: str, columns: dict[str, str]) -> None:
    """Add columns that are missing (idempotent); types as plain SQL for both dialects."""
    existing = {c["name"] for c in inspect(conn).get_columns(table)}
    for name, sql_type in columns.items():
        if name not in existing:
            conn.exec_driver_sql(f'ALTER TABLE {table} ADD COLUMN "{name}" {sql_type}')


def _v2_progress_prediction(conn: Connection) -> None:
    # JSON on PostgreSQL; SQLite stores SQLAlchemy's JSON type as text anyway.
    json_type = "JSON" if conn.dialect.name == "postgresql" else "TEXT"
    _add_columns(conn, "runs", {"progress": json_type, "prediction": json_type})


def _v3_intensity_boundary(conn: Connection) -> None:
    # Whether a run's grid intensity counts lifecycle or direct emissions (issue 13).
    _add_columns(conn, "runs", {"intensity_boundary": "VARCHAR(16)"})


def _v4_grid_series(conn: Connection) -> None:
    # The grid_series/grid_points tables are created by upgrade()'s create_all.
    _add_columns(
        conn,
        "runs",
        {
            "co2_series_kg": "DOUBLE PRECISION" if conn.dialect.name == "postgresql" else "REAL",
            "intensity_series_g_per_kwh": "DOUBLE PRECISION"
            if conn.dialect.name == "postgresql"
            else "REAL",
            "co2_series_method": "TEXT",
        },
    )


# Columns that hold sizes or counts able to pass 2**31 (a checkpoint of 2 GiB or more).
WIDE_COLUMNS = {"checkpoints": ("size_bytes",)}


def _v5_bigint_sizes(conn: Connection) -> None:
    # PostgreSQL's INTEGER is 32-bit: a 3 GiB checkpoint made the whole run's record fail.
    # SQLite's INTEGER already holds 64 bits, so there is nothing to change there.
    if conn.dialect.name != "postgresql":
        return
    for table, columns in WIDE_COLUMNS.items():
        for column in columns:
            conn.exec_driver_sql(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE BIGINT')


def _v6_checkpoint_write_time(conn: Connection) -> None:
    _add_columns(conn, "run_checkpoints", {"written_s": "FLOAT", "energy_share": "FLOAT"})


# version -> step that brings a database from version-1 to version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _v2_progress_prediction,
    3: _v3_intensity_boundary,
    4: _v4_grid_series,
    5: _v5_bigint_sizes,
    6: _v6_checkpoint_write_time,
}


def current_version(conn: Connection) -> int | None:
    """The schema version stored in the database, or None for an empty database."""
    if not inspect(conn).has_table(meta.name):
        return None
    row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
    return int(row[0]) if row else None


def _set_version(conn: Connection, version: int) -> None:
    updated = conn.execute(
        meta.update().where(meta.c.key == "schema_version").values(value=str(version))
    )
    if updated.rowcount == 0:
        conn.execute(meta.insert().values(key="schema_version", value=str(version)))


# Any fixed 64-bit number: the key of the PostgreSQL advisory lock that serialises upgrades.
_PG_LOCK_KEY = 0x6563_6F74_7261_696E  # "ecotrain"


def _lock(conn: Connection) -> None:
    """Serialise schema changes between processes for the rest of this transaction.

    A cluster job starting 256 ranks at once opens the store 256 times: without the lock they
    would all see an empty database and race to create the same tables. PostgreSQL: a
    transaction-scoped advisory lock (released at commit or rollback). SQLite: BEGIN
    IMMEDIATE takes the write lock now, not at the first write (pysqlite opens no
    transaction before a SELECT or DDL by itself), and waits out the busy timeout.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(engine: Engine) -> tuple[int | None, int]:
    """Bring the database to SCHEMA_VERSION; returns (version before, version after).

    Safe when many processes call it at once: a database already at this version is only
    read (no lock); otherwise the work happens under a lock held to the commit, and the
    version is read again once the lock is held, so only one process creates or migrates.
    """
    with engine.connect() as conn:
        seen = current_version(conn)
    if seen == SCHEMA_VERSION:
        return seen, seen
    _check_not_newer(seen)
    with engine.begin() as conn:
        _lock(conn)
        before = current_version(conn)
        if before is None:
            metadata.create_all(conn)
            _set_version(conn, SCHEMA_VERSION)
            return None, SCHEMA_VERSION
        _check_not_newer(before)
        for version in range(before + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
            _set_version(conn, version)
        # New tables added by a later version are created here too.
        metadata.create_all(conn)
        return before, SCHEMA_VERSION


def _check_not_newer(version: int | None) -> None:
    if version is not None and version > SCHEMA_VERSION:
        from ecotrain.errors import UserError

        raise UserError(
            f"database schema version {version} is newer than this ecotrain "
            f"({SCHEMA_VERSION}): upgrade ecotrain"
        )
