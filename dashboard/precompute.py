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

The summaries of a database are also kept on disk (:func:`save`, one file per database
URL in ecotrain's private data dir, mode 0600) and read back by the next server process
(:func:`load`), so a restart does not start cold: a stored summary is served at once and,
if the data moved meanwhile, refreshed in the background like any other stale one. The
file is a pickle (the summaries hold datetimes and rows), written and read only by this
user in a 0700 folder; ECOTRAIN_DASHBOARD_CACHE=off keeps everything in memory.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

STAMP_TTL_S = 5.0  # how long a read stamp is trusted (it costs one query per 5 s at most)
CACHE_ENV = "ECOTRAIN_DASHBOARD_CACHE"
FILE_FORMAT = 1  # bump when the stored summaries change shape
SAVE_DELAY_S = 1.0  # batch the writes of summaries computed together


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
_loaded: set[str] = set()  # URLs whose file was read (or tried) in this process
_saving: set[str] = set()  # URLs with a write pending


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
    _load_once(key)
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
    _schedule_save(key)
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
    _schedule_save(key)


def put(key: Hashable, value: Any, stamp: tuple) -> None:
    """Store ``value`` for ``key``, computed on data ``stamp`` (the warm-up's results)."""
    with _lock:
        _entries[key] = Entry(value, stamp, time.monotonic())


def warm(tasks: list[tuple[Hashable, tuple, Callable[[], Any]]]) -> None:
    """Compute ``tasks`` (key, stamp, compute) in one background thread, once per key."""

    def run() -> None:
        for key, stamp, compute in tasks:
            _load_once(key)  # what an earlier server kept is not recomputed
            with _lock:
                if key in _entries:
                    continue
            try:
                value = compute()
            except Exception:  # noqa: BLE001 - a page will compute (and show) it itself
                continue
            with _lock:
                _entries.setdefault(key, Entry(value, stamp, time.monotonic()))
            _schedule_save(key)

    threading.Thread(target=run, daemon=True, name="ecotrain-warm").start()


def clear() -> None:
    """Forget every summary held in memory (tests, benchmarks); the files stay, and are
    read again on the next request, as by a new server process."""
    with _lock:
        _entries.clear()
        _stamps.clear()
        _loaded.clear()


# -- on disk ----------------------------------------------------------------------------------


def cache_file(url: str) -> Path | None:
    """Where the summaries of ``url`` are kept (None when switched off)."""
    if os.environ.get(CACHE_ENV, "").strip().lower() in ("off", "0", "no", "false"):
        return None
    from ecotrain.config import user_data_dir

    folder = user_data_dir() / "dashboard-cache"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{_digest(url)[:32]}.pickle"


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def _url_of(key: Hashable) -> str | None:
    return key[0] if isinstance(key, tuple) and key and isinstance(key[0], str) else None


def save(url: str) -> None:
    """Write every summary of ``url`` held in memory to its file (atomically)."""
    path = cache_file(url)
    if path is None:
        return
    # Keys are stored without their URL (a PostgreSQL URL may hold a password); the file's
    # name and its "url" field are a hash of it.
    with _lock:
        entries = {
            k[1:]: (e.value, e.stamp, time.time() - (time.monotonic() - e.computed_at))
            for k, e in _entries.items()
            if _url_of(k) == url
        }
    if not entries:
        return
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"format": FILE_FORMAT, "url": _digest(url), "entries": entries}, f)
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001 - a summary not kept on disk is only recomputed later
        tmp.unlink(missing_ok=True)


def load(url: str) -> int:
    """Read the summaries of ``url`` from its file into memory, keeping any newer ones held
    already; how many were read."""
    path = cache_file(url)
    if path is None:
        return 0
    try:
        data = pickle.loads(path.read_bytes())
        if data.get("format") != FILE_FORMAT or data.get("url") != _digest(url):
            return 0
        entries = data["entries"]
    except Exception:  # noqa: BLE001 - absent, partial or from another version: recompute
        return 0
    now_wall, now = time.time(), time.monotonic()
    with _lock:
        for rest, (value, stamp, wall) in entries.items():
            _entries.setdefault((url, *rest), Entry(value, stamp, now - max(0.0, now_wall - wall)))
    return len(entries)


def _load_once(key: Hashable) -> None:
    url = _url_of(key)
    if url is None:
        return
    with _lock:
        if url in _loaded:
            return
        _loaded.add(url)
    load(url)


def _schedule_save(key: Hashable) -> None:
    url = _url_of(key)
    if url is None:
        return
    with _lock:
        if url in _saving:
            return
        _saving.add(url)

    def run() -> None:
        time.sleep(SAVE_DELAY_S)
        with _lock:
            _saving.discard(url)
        save(url)

    threading.Thread(target=run, daemon=True, name="ecotrain-precompute-save").start()
