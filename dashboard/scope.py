"""The dashboard's filter scopes without Streamlit: the periods, and a RunFilter as the
hashable key every cached or precomputed summary is stored under.

Shared by the pages (through dashboard/common.py) and by the warm-up that `ecotrain
dashboard` runs before the first visitor (dashboard/warmup.py), so both compute a summary
under the very same key.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from ecotrain.store.queries import RunFilter

PERIODS: dict[str, int | None] = {
    "7d": 7,
    "30d": 30,
    "90d": 90,
    "365d": 365,
    "all": None,
}

# A filter key: a hashable, picklable stand-in for a RunFilter, so caches can key on it.
FilterKey = tuple


def filter_key(flt: RunFilter) -> FilterKey:
    """A RunFilter as a hashable tuple (the cache key of every loader)."""
    return tuple(
        (f.name, tuple(sorted(v.items())) if isinstance(v, dict) else _freeze(v))
        for f in dataclasses.fields(flt)
        for v in [getattr(flt, f.name)]
    )


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def from_key(key: FilterKey) -> RunFilter:
    """The RunFilter a filter key stands for."""
    values = dict(key)
    values["tags"] = dict(values.get("tags") or ())
    for name in ("projects", "run_ids"):
        if values.get(name) is not None:
            values[name] = list(values[name])
    return RunFilter(**values)


def _hour(now: datetime | None = None) -> datetime:
    # Period bounds are rounded to the hour, so the cache keys stay stable between reruns.
    from ecotrain.store.records import utcnow

    return (now or utcnow()).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def period_bounds(period: str) -> tuple[datetime | None, datetime | None]:
    """(since, previous-period since) for a period name; None for "all"."""
    days = PERIODS.get(period)
    if days is None:
        return None, None
    since = _hour() - timedelta(days=days)
    return since, since - timedelta(days=days)


def naive_utc(dt: datetime) -> datetime:
    """``dt`` as a naive UTC datetime (the store's convention)."""
    from datetime import UTC

    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def default_period(last_start: datetime | None) -> str:
    """The last 30 days, unless nothing ran in them (an old store, the bundled example):
    then all time, so a first look is not an empty page."""
    since, _ = period_bounds("30d")
    if last_start is None or since is None:
        return "30d"
    return "30d" if naive_utc(last_start) >= naive_utc(since) else "all"


def default_scopes(last_start: datetime | None) -> list[tuple[FilterKey, FilterKey | None]]:
    """The scopes a first visitor's pages ask for, default period first, then all time:
    (the period's key, the previous period's key or None)."""
    out: list[tuple[FilterKey, FilterKey | None]] = []
    for period in dict.fromkeys((default_period(last_start), "all")):
        since, prev = period_bounds(period)
        previous = filter_key(RunFilter(since=prev, until=since)) if since else None
        out.append((filter_key(RunFilter(since=since)), previous))
    return out
