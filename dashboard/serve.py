"""Run the Streamlit server as a child that never outlives `ecotrain dashboard`.

SIGTERM, SIGHUP and SIGINT to the wrapper are passed on to the server; if the server has
not stopped after a grace period it is killed. Without this a `kill` of the wrapper (a
service manager, a job scheduler ending its allocation) orphaned the server, which kept
serving and kept the port.

While the server starts (seconds), this process computes the summaries a first visitor's
pages need and leaves them on disk for the server (dashboard/warmup.py), so the first view
does not wait for them.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

GRACE_S = 5.0


def serve(argv: Sequence[str], env: Mapping[str, str], grace_s: float = GRACE_S) -> int:
    """Run ``argv`` (the Streamlit server) until it exits or we are told to stop; its code.

    Stopping by signal returns 0 for SIGINT/SIGTERM (a deliberate stop), like Ctrl-C did.
    """
    # Handlers before the child exists: a signal in between must not orphan it.
    received: list[int] = []
    previous = {}

    def on_signal(signum: int, _frame) -> None:
        received.append(signum)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    proc: subprocess.Popen | None = None
    _prewarm(env)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        previous[sig] = signal.signal(sig, on_signal)
    try:
        proc = subprocess.Popen(list(argv), env=dict(env))
        if received:  # a signal came while the child was starting
            proc.send_signal(signal.SIGTERM)
        stop_at: float | None = None
        while True:
            try:
                code = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and stop_at is None:
                stop_at = time.monotonic() + grace_s
            if stop_at is not None and time.monotonic() > stop_at:
                proc.kill()  # told to stop, and still running after the grace period
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received and received[-1] in (signal.SIGINT, signal.SIGTERM):
        return 0
    return code


def _prewarm(env: Mapping[str, str]) -> None:
    """Warm the dashboard's summaries of the database in ``env`` in a background thread."""
    from ecotrain.dashboard import DB_ENV

    url = env.get(DB_ENV)
    if not url:
        return

    def run() -> None:
        from ecotrain.dashboard.warmup import prewarm

        prewarm(url)

    threading.Thread(target=run, daemon=True, name="ecotrain-prewarm").start()
