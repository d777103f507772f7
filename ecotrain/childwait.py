"""Wait for the child of `ecotrain run` so that a signal always reaches its handler.

A blocking ``os.wait4`` in the main thread returns (and lets Python run the handler that
forwards SIGTERM to the child) only if the kernel hands the signal to the main thread. Any
other thread that changes its signal mask at that moment can take it instead: ``subprocess``
blocks every signal around each spawn and unblocks them after, and the git thread spawns
``git`` while the child starts. CPython's C-level handler then runs in that thread, marks
the signal pending for the main thread and writes to the wakeup fd, but the main thread
sleeps on in ``wait4``: the child is never told, and the wrapper hangs until the child ends
by itself (CI hit it once; bench/sigterm_stress.py hung 9 times in 1,228 tries before this).

So the main thread waits on the child's pidfd *and* the wakeup fd: whichever thread the
signal lands on, the main thread wakes, runs the handler, and goes back to waiting.
"""

from __future__ import annotations

import os
import select
import signal
from typing import Any

# A bound on a wait that nothing woke (it should never happen; it costs nothing): the
# child's end wakes the wait through its pidfd, or without one (not Linux, a kernel before
# 5.3, as on older HPC clusters) through SIGCHLD and the wakeup fd.
IDLE_S = 5.0


def wait_child(pid: int) -> tuple[int, Any]:
    """``os.wait4(pid, 0)``'s (status, rusage), returning whatever thread got a signal.

    Must be called from the main thread (the only one where Python runs signal handlers
    and may set the wakeup fd); elsewhere it is a plain blocking ``os.wait4``."""
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return os.wait4(pid, 0)[1:]
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        os.close(read_end)
        os.close(write_end)
        return os.wait4(pid, 0)[1:]
    pidfd = _pidfd(pid)
    # No pidfd: a handler for SIGCHLD (which by default is discarded) makes the child's end
    # write to the wakeup fd like any other signal.
    old_chld = signal.signal(signal.SIGCHLD, _ignore) if pidfd is None else None
    try:
        # poll, not select: a wrapper started with a thousand fds open must still wait.
        watched = select.poll()
        watched.register(read_end, select.POLLIN)
        if pidfd is not None:
            watched.register(pidfd, select.POLLIN)
        timeout_ms = int(1000 * IDLE_S)
        while True:
            done, status, rusage = os.wait4(pid, os.WNOHANG)
            if done == pid:
                return status, rusage
            # PEP 475: a signal taken by this thread runs its handler inside poll, which
            # then resumes; one taken by another thread wakes it through the wakeup fd,
            # and the handler runs as soon as this returns to Python.
            if any(fd == read_end for fd, _ in watched.poll(timeout_ms)):
                _drain(read_end)
    finally:
        if old_chld is not None:
            signal.signal(signal.SIGCHLD, old_chld)
        signal.set_wakeup_fd(previous)
        for fd in (read_end, write_end, pidfd):
            if fd is not None:
                os.close(fd)


def _ignore(_signum: int, _frame: Any) -> None:
    pass


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except OSError:  # BlockingIOError once empty
        pass
