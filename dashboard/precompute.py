"""Summaries too costly to compute on every page view, kept per process and refreshed when
the data under them changes.

The lab-wide savings (every reused checkpoint's footprint, walked through its ancestry) and
the lineage graph take seconds at 100,000 runs, the sums and breakdowns a good part of one.
They depend only on the runs (their number, newest start and newest heartbeat) and the
checkpoints they read and wrote, so each is stored with a *stamp* of that data (one cheap
query, trusted for STAMP_TTL_S). A page gets the stored value at once; when
the stamp has moved (a run finished since), the value is recomputed in a background thread
and the page says how old the one it shows is. Only the very first request for a summary
(nothing stored yet) waits for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

STAMP_TTL_S = 5.0  # how long a read stamp is trusted (it costs one query per 5 s at most)


@dataclass
class Entry:
    """One stored summary: its value, the data stamp it was computed on, and when."""

    value: Any
    stamp: tuple
    computed_at: float
    refreshing: bool = False


_lock = threading.Lock()
_entries: dict[Hashable, Entry] = {}
_stamps: dict[str, tuple[float, tuple]] = {}


def data_stamp(engine, url: str) -> tuple:
    """What the summaries depend on, in one query: how many runs, links and checkpoints,
    the newest start and the newest heartbeat (a running run's totals move with it)."""
    from ecotrain.store.schema import checkpoints, run_checkpoints, runs

    now = time.monotonic()
    with _lock:
        cached = _stamps.get(url)
        if cached and now - cached[0] < STAMP_TTL_S:
            return cached[1]
    with engine.connect() as conn:
        stamp = tuple(
            conn.execute(
                select(
                    select(func.count()).select_from(runs).scalar_subquery(),
                    select(func.max(runs.c.started_at)).scalar_subquery(),
                    select(func.max(runs.c.heartbeat_at)).scalar_subquery(),
                    select(func.count()).select_from(run_checkpoints).scalar_subquery(),
                    select(func.count()).select_from(checkpoints).scalar_subquery(),
                )
            ).one()
        )
    with _lock:
        _stamps[url] = (now, stamp)
    return stamp


def summary(
    key: Hashable, stamp: tuple, compute: Callable[[], Any], background: bool = True
) -> tuple[Any, float]:
    """The value of ``compute()`` for ``key`` and the monotonic time it was computed.

    Fresh (same stamp): the stored value. Stale: the stored value now, and a background
    recompute (``background``). Absent: computed here.
    """
    with _lock:
        entry = _entries.get(key)
        if entry is not None and (entry.stamp == stamp or entry.refreshing):
            return entry.value, entry.computed_at
        if entry is not None and background:
            entry.refreshing = True
            threading.Thread(
                target=_refresh, args=(key, stamp, compute), daemon=True, name="ecotrain-precompute"
            ).start()
            return entry.value, entry.computed_at
    value = compute()
    done = time.monotonic()
    with _lock:
        _entries[key] = Entry(value, stamp, done)
    return value, done


def _refresh(key: Hashable, stamp: tuple, compute: Callable[[], Any]) -> None:
    try:
        value = compute()
    except Exception:  # noqa: BLE001 - keep the old value; the next stale read tries again
        with _lock:
            if key in _entries:
                _entries[key].refreshing = False
        return
    with _lock:
        _entries[key] = Entry(value, stamp, time.monotonic())


def warm(tasks: list[tuple[Hashable, tuple, Callable[[], Any]]]) -> None:
    """Compute ``tasks`` (key, stamp, compute) in one background thread, once per key."""

    def run() -> None:
        for key, stamp, compute in tasks:
            with _lock:
                if key in _entries:
                    continue
            try:
                value = compute()
            except Exception:  # noqa: BLE001 - a page will compute (and show) it itself
                continue
            with _lock:
                _entries.setdefault(key, Entry(value, stamp, time.monotonic()))

    threading.Thread(target=run, daemon=True, name="ecotrain-warm").start()


def clear() -> None:
    """Forget every stored summary (tests, benchmarks)."""
    with _lock:
        _entries.clear()
        _stamps.clear()
