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
import sys

TARGET_ENV = "ECOTRAIN_SYNC_TARGET"


def main(argv: list[str]) -> int:
    """Push the spool if anything is in it; then resolve pending hashes. ``argv[0]`` is the
    run that left this sync behind (there to be seen in `ps`)."""
    lineage = "--lineage" in argv
    target = os.environ.get(TARGET_ENV) or None
    from ecotrain.store import spool

    directory = spool.spool_dir()
    fd = os.open(directory / ".sync.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Anything pending, not only this run's record: the wrapper's writer may have pushed
        # this run's record and been cut off (the wrapper exits at once) before the rest.
        if spool.pending(directory):
            from ecotrain.store.db import sync_all

            sync_all(directory, default_target=target, lineage=False)
    finally:
        os.close(fd)  # releases the lock
    if lineage:
        from ecotrain.store.db import sync_all

        sync_all(directory, default_target=target, lineage=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
