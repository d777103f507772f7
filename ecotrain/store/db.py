"""The store: open a database, write run records idempotently, push the spool.

``Store`` is the library API the CLI, the run path's background writer, the dashboard and the
reports share. Reads live in :mod:`ecotrain.store.queries`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from ecotrain.store import spool as spool_mod
from ecotrain.store.engine import make_engine, mask_url, resolve_url
from ecotrain.store.migrations import upgrade
from ecotrain.store.records import DATETIME_FIELDS, parse_datetime, utcnow
from ecotrain.store.schema import checkpoint_paths, checkpoints, run_checkpoints, runs, samples

RUN_COLUMNS = frozenset(c.name for c in runs.columns)
CHECKPOINT_COLUMNS = frozenset(c.name for c in checkpoints.columns)


def upsert(
    conn: Connection, table, row: dict, keys: Iterable[str], update_cols=None, where=None
) -> int:
    """Insert ``row`` or update it where its key exists (and ``where`` holds), on SQLite and
    PostgreSQL alike; returns the number of rows written."""
    keys = list(keys)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**row)
    cols = [c for c in (update_cols or row) if c not in keys and c in row]
    if cols:
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={c: stmt.excluded[c] for c in cols},
            where=where(stmt.excluded) if where is not None else None,
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    if conn.dialect.insert_returning:
        # psycopg reports rowcount -1 for INSERT .. ON CONFLICT: count the rows returned.
        return len(conn.execute(stmt.returning(table.c[keys[0]])).all())
    return conn.execute(stmt).rowcount


def _later_state(new):  # noqa: ANN001, ANN202 - SQL expressions over the stored and new row
    """Whether the incoming state of a run (``new``) is later than the stored one."""
    stored_final, new_final = runs.c.ended_at.isnot(None), new.ended_at.isnot(None)
    later = func.coalesce(runs.c.heartbeat_at, runs.c.started_at) <= func.coalesce(
        new.heartbeat_at, new.started_at
    )
    return or_(
        and_(new_final, ~stored_final),
        and_(new_final, stored_final, later),
        and_(~new_final, ~stored_final, later),
    )


def _clean(row: dict, allowed: frozenset[str]) -> dict:
    return {
        k: (parse_datetime(v) if k in DATETIME_FIELDS else v)
        for k, v in row.items()
        if k in allowed
    }


class Store:
    """A database holding ecotrain runs (SQLite file or PostgreSQL URL)."""

    def __init__(
        self,
        url: str | os.PathLike | None = None,
        *,
        readonly: bool = False,
        timeout_s: float = 30.0,
        migrate: bool = True,
        retry_s: float = 30.0,
    ) -> None:
        self.url = resolve_url(url)
        self.readonly = readonly
        # How long a write keeps retrying transient refusals (see _transient).
        self.retry_s = retry_s
        self.engine: Engine = make_engine(self.url, readonly=readonly, timeout_s=timeout_s)
        if migrate and not readonly:
            self._upgrade()

    def _upgrade(self) -> None:
        # upgrade() serialises creators with a lock; transient refusals (too many clients
        # while a whole job starts, SQLite busy past its timeout) are retried.
        _retrying(lambda: upgrade(self.engine), self.retry_s)

    @property
    def display_url(self) -> str:
        """The URL with any password masked."""
        return mask_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- writes -----------------------------------------------------------------------------

    def write_record(self, record: dict) -> None:
        """Write a run record (run row, timeline, checkpoints), idempotent by run id.

        One transaction; retried whole while the server refuses for a moment (too many
        clients, a deadlock, SQLite busy), which is safe because it is idempotent.
        """
        _retrying(lambda: self._write(record), self.retry_s)

    def _write(self, record: dict) -> None:
        from ecotrain.redact import redact_record

        record = redact_record(record)  # the last gate: nothing unredacted is stored
        run = _clean(record["run"], RUN_COLUMNS)
        run_id = run["run_id"]
        with self.engine.begin() as conn:
            # A run's states arrive out of order (heartbeats, spool replays, a detached sync):
            # only a later state replaces the stored one. A final state is later than any
            # running one whatever its timestamp: the sampler's last heartbeat can be stamped
            # a moment after the final record was built, and must not block or undo it.
            newer = upsert(conn, runs, run, ["run_id"], where=_later_state)
            if not newer:
                return
            if record.get("samples") is not None:
                conn.execute(delete(samples).where(samples.c.run_id == run_id))
                rows = [
                    {"run_id": run_id, "t_s": s[0], "gpu_w": s[1], "cpu_w": s[2], "ram_w": s[3]}
                    for s in record["samples"]
                ]
                if rows:
                    conn.execute(samples.insert(), rows)
            for ckpt in record.get("checkpoints") or []:
                row = _clean(ckpt, CHECKPOINT_COLUMNS)
                # A stated footprint is only overwritten by another stated footprint.
                upsert(conn, checkpoints, row, ["checkpoint_id"])
            if record.get("links") is not None:
                conn.execute(delete(run_checkpoints).where(run_checkpoints.c.run_id == run_id))
                for link in record["links"]:
                    conn.execute(run_checkpoints.insert().values(run_id=run_id, **link))
            for p in record.get("paths") or []:
                exists = conn.execute(
                    select(checkpoint_paths.c.checkpoint_id).where(
                        and_(
                            checkpoint_paths.c.checkpoint_id == p["checkpoint_id"],
                            checkpoint_paths.c.host == p["host"],
                            checkpoint_paths.c.path == p["path"],
                        )
                    )
                ).first()
                if not exists:
                    conn.execute(checkpoint_paths.insert().values(**_clean(p, frozenset(p))))
        if run.get("ended_at") is not None:
            # Beside the annual figure: the time-resolved CO2e, where a grid series covers it.
            from ecotrain.grid_series import account_run

            account_run(self.engine, run_id, run.get("region"))

    def sync_spool(
        self, directory: Path | None = None, any_target: bool = False
    ) -> tuple[int, list[str]]:
        """Push spooled records meant for this database (``any_target``: every spooled
        record, e.g. after the lab's database moved); returns (pushed, errors).

        Each record is its own transaction and is written by run id with newer-state-wins,
        so a push cut short (a crash, a dropped connection) is simply run again: records
        already written are rewritten to the same row, never duplicated. A file is removed
        only after its record is committed, and only if no newer state replaced it meanwhile.
        """
        from ecotrain.store import quarantine

        pushed, errors = 0, []
        for path in spool_mod.pending(directory):
            record = spool_mod.load(path)
            if path.exists() and not isinstance((record or {}).get("run"), dict):
                # Not a record (hand-edited, truncated by a full disk): never retried.
                quarantine.set_aside(path, "not a readable run record")
                errors.append(f"{path.name}: set aside: not a readable run record")
                continue
            if record is None or "run" not in record:
                continue
            try:
                target = spool_mod.resolve_target(record.get("target"), [self.url])
                if not any_target and resolve_url(target) != self.url:
                    continue
            except Exception:  # noqa: BLE001 - a bad target is sync_all's to report
                continue
            try:
                self.write_record(record)
            except Exception as e:  # noqa: BLE001 - keep the file; report and go on
                if quarantine.is_permanent(e):
                    # Refused for good: set aside (listed by `sync --status`), not retried
                    # by every later sync, not dropped.
                    quarantine.set_aside(path, f"{self.display_url}: {_one_line(e)}")
                    errors.append(f"{path.name}: set aside (quarantined): {_one_line(e)}")
                    continue
                errors.append(f"{path.name}: {_one_line(e)}")
                if _unreachable(e):
                    break  # the server went away: the rest would fail the same way
                continue
            spool_mod.discard_if_same(path, record)
            pushed += 1
        return pushed, errors

    def mark_lost(self, lost_after_s: float | None = None) -> int:
        """Mark runs whose wrapper died as ``lost`` (kept with their last heartbeat).

        A run on this host whose wrapper pid is gone is lost at once; elsewhere, a run whose
        heartbeat is older than ``lost_after_s`` is.
        """
        if self.readonly:
            return 0
        from ecotrain.store.queries import LOST_AFTER_S

        lost_after_s = LOST_AFTER_S if lost_after_s is None else lost_after_s
        host = socket.gethostname()
        now = utcnow()
        lost: list[str] = []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    runs.c.run_id, runs.c.host, runs.c.pid, runs.c.heartbeat_at, runs.c.started_at
                ).where(runs.c.status == "running")
            ).all()
        for run_id, run_host, pid, heartbeat_at, started_at in rows:
            last = heartbeat_at or started_at
            wrapper_gone = run_host == host and pid and not _pid_alive(pid, started_at)
            stale = last is not None and (now - last).total_seconds() > lost_after_s
            if wrapper_gone or stale:
                lost.append(run_id)
        if lost:
            with self.engine.begin() as conn:
                conn.execute(
                    update(runs)
                    .where(and_(runs.c.run_id.in_(lost), runs.c.status == "running"))
                    .values(
                        status="lost",
                        end_reason="the wrapper stopped without a final record; "
                        "totals are from its last heartbeat",
                    )
                )
        return len(lost)


def sync_all(
    directory: Path | None = None,
    default_target: str | None = None,
    timeout_s: float = 5.0,
    retarget: bool = False,
    lineage: bool = True,
) -> dict[str, tuple[int, list[str]]]:
    """Push every spooled record to the database it was meant for, and identify the
    checkpoints runs wrote in their last moments (see ecotrain.lineage.resolve_pending).

    A spooled record keeps the URL it was meant for, so a run recorded while the lab
    database was down goes there once it is back. With ``retarget`` every record goes to
    ``default_target`` instead (the URL was wrong, or the database moved). ``lineage``:
    also hash the checkpoints still pending (can take long; see ecotrain.store.detached).

    Returns {masked url: (pushed, errors)}; a database that cannot be opened keeps its
    records in the spool and reports why.
    """
    results: dict[str, tuple[int, list[str]]] = {}
    targets: dict[str, str | None] = {}
    spool_mod.clean_stale(directory)
    spooled = [] if retarget else spool_mod.pending(directory)
    # Spooled targets have their password masked: the full URL is the configured one.
    known = [default_target, os.environ.get("ECOTRAIN_SYNC_TARGET")]
    for target in [default_target] + [
        spool_mod.resolve_target((spool_mod.load(p) or {}).get("target"), known) for p in spooled
    ]:
        try:
            targets.setdefault(resolve_url(target), target)
        except Exception as e:  # noqa: BLE001 - a record for a database we cannot name
            results.setdefault(mask_url(str(target)), (0, [_one_line(e)]))
    for url, target in targets.items():
        try:
            store = Store(target, timeout_s=timeout_s)
            results[mask_url(url)] = store.sync_spool(directory, any_target=retarget)
            store.mark_lost()
            if lineage:
                from ecotrain.lineage import resolve_pending

                resolve_pending(store.engine)
        except Exception as e:  # noqa: BLE001 - unreachable: the records stay spooled
            results[mask_url(url)] = (0, [_one_line(e)])
    return results


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]


# SQLSTATEs worth another try: too many connections, cannot connect now (starting up),
# serialization failure, deadlock detected.
_TRANSIENT_SQLSTATES = {"53300", "57P03", "40001", "40P01"}


def _transient(e: BaseException) -> bool:
    """Whether ``e`` is a refusal that goes away by itself (retry), not a real fault."""
    orig = getattr(e, "orig", e)
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    text = str(orig).lower()
    return any(
        s in text
        for s in (
            "too many clients",
            # the postmaster drops connections it has no room for during a connect storm
            "server closed the connection unexpectedly",
            "remaining connection slots are reserved",
            "the database system is starting up",
            "database is locked",
            "deadlock detected",
        )
    )


def _retrying(fn, budget_s: float):  # noqa: ANN001, ANN202
    """Call ``fn`` until it succeeds, retrying transient refusals with jittered backoff for
    up to ``budget_s`` seconds; anything else (an unreachable server) is raised at once."""
    import random

    deadline = time.monotonic() + budget_s
    delay = 0.02
    while True:
        try:
            return fn()
        except (OperationalError, DBAPIError) as e:
            if not _transient(e) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 1.0)


def _unreachable(e: BaseException) -> bool:
    """Whether ``e`` says the server could not be reached at all (no point retrying now)."""
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    text = str(getattr(e, "orig", e)).lower()
    return any(
        s in text
        for s in (
            "connection refused",
            "could not connect",
            "connection failed",
            "timeout expired",
            "could not translate host name",
            "no route to host",
            "server closed the connection",
        )
    )


def _pid_alive(pid: int, started_at) -> bool:
    """Whether ``pid`` is still the wrapper that started at ``started_at`` (pids get reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except Exception:  # noqa: BLE001 - if we cannot tell, assume alive
        return True
    if started_at is None:
        return True
    from datetime import UTC

    return created <= started_at.replace(tzinfo=UTC).timestamp() + 5
