"""The sync a run leaves behind when its final record did not reach the database in time.

``python -m ecotrain.store.detached RUN_ID [--lineage]``, the database URL in the environment
(``ECOTRAIN_SYNC_TARGET``): argv is readable by every local user (`ps`), a password in it
would not be a secret.

When 64 runs on a node end together, 64 of these start. They queue on one lock in the
spool folder (a blocked process costs nothing) and the first pushes every record waiting;
the others find the spool empty and exit without importing SQLAlchemy. Checkpoint
hashing (``--lineage``), which can take minutes, runs after the lock is released.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys

TARGET_ENV = "ECOTRAIN_SYNC_TARGET"
# Every step has a deadline: a sync stuck on a dead server or a file that never answers
# must not hold the lock that every later run's sync queues on.
LOCK_TIMEOUT_S = 120
SYNC_TIMEOUT_S = 300
LINEAGE_TIMEOUT_S = 3600


def _deadline(seconds: int) -> None:
    """Raise TimeoutError in this (main) thread after ``seconds``; 0 cancels."""
    signal.alarm(seconds)


def _timeout(_signum: int, _frame: object) -> None:
    raise TimeoutError("ecotrain detached sync: step timed out")


def _push_lite(directory: object, target: str | None) -> None:
    """Write what the standard library can (records for an existing SQLite store), so most
    syncs end without importing SQLAlchemy."""
    from ecotrain.store import lite, spool

    for path in spool.pending(directory):
        record = spool.load(path)
        if record is None or "run" not in record:
            continue
        try:
            db = lite.sqlite_file(spool.resolve_target(record.get("target"), [target]))
            if db is not None and lite.write(db, record, timeout_s=5.0):
                spool.discard_if_same(path, record)
        except Exception:  # noqa: BLE001 - one odd file must not stop the rest: the full
            continue  # store after this writes it, or quarantines it


def main(argv: list[str]) -> int:
    """Push the spool if anything is in it; then resolve pending hashes. ``argv[0]`` is the
    run that left this sync behind (there to be seen in `ps`). Returns 0, or 1 if a step
    ran out of time (what it did not finish stays in the spool for the next sync)."""
    lineage = "--lineage" in argv
    target = os.environ.get(TARGET_ENV) or None
    from ecotrain.store import spool

    signal.signal(signal.SIGALRM, _timeout)
    directory = spool.spool_dir()
    fd = os.open(directory / ".sync.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _deadline(LOCK_TIMEOUT_S)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Anything pending, not only this run's record: the wrapper's writer may have pushed
        # this run's record and been cut off (the wrapper exits at once) before the rest.
        _deadline(SYNC_TIMEOUT_S)
        _push_lite(directory, target)
        if spool.pending(directory):
            from ecotrain.store.db import sync_all

            sync_all(directory, default_target=target, lineage=False)
    except TimeoutError:
        return 1
    finally:
        _deadline(0)
        os.close(fd)  # releases the lock
    if lineage:
        from ecotrain.store.db import sync_all

        _deadline(LINEAGE_TIMEOUT_S)
        try:
            sync_all(directory, default_target=target, lineage=True)
        except TimeoutError:
            return 1
        finally:
            _deadline(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
