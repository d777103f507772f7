"""The dashboard's precomputed summaries by name, and the warm-up that fills them before
the first visitor.

Each summary is stored by dashboard/precompute.py under ``(url, name, args)``; the pages
(dashboard/common.py) and the warm-up compute it through :func:`compute` here, so a value
warmed is the value a page asks for. `ecotrain dashboard` runs :func:`prewarm` in its own
process while the Streamlit server starts, and precompute keeps the result on disk, so the
first page view after the server starts reads summaries already made (issue 14: every page
under a second at 100,000 runs). No Streamlit import here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any

from ecotrain.dashboard import precompute, scope
from ecotrain.store import aggregates as agg


def _avoided(eng: Any, key: scope.FilterKey, mode: str) -> list[dict[str, Any]]:
    from ecotrain import savings

    items = savings.avoided_for_runs(eng, scope.from_key(key), mode=mode)
    return [dataclasses.asdict(a) for a in items]


COMPUTE: dict[str, Callable[..., Any]] = {
    "options": lambda eng: agg.filter_options(eng),
    "totals": lambda eng, key: agg.totals(eng, scope.from_key(key)),
    "trend": lambda eng, key: agg.weekly_trend(eng, scope.from_key(key)),
    "breakdown": lambda eng, key, by, limit: agg.breakdown(eng, scope.from_key(key), by, limit),
    "checkpoints": lambda eng, key, search, limit, offset: agg.checkpoint_table(
        eng, scope.from_key(key), search=search, limit=limit, offset=offset
    ),
    "sources": lambda eng, key: agg.sources_in_use(eng, scope.from_key(key)),
    "lineage": lambda eng: agg.lineage_edges(eng),
    "avoided": _avoided,
}


def compute(eng: Any, name: str, args: tuple) -> Any:
    """The summary ``name`` for ``args``, computed now."""
    return COMPUTE[name](eng, *args)


def task(eng: Any, url: str, name: str, args: tuple, stamp: tuple):
    """A (key, stamp, compute) task for precompute.warm."""
    key: Hashable = (url, name, args)
    return key, stamp, lambda: compute(eng, name, args)


def has_savings() -> bool:
    """Whether ecotrain.savings is installed (avoided figures can be computed)."""
    try:
        from ecotrain import savings  # noqa: F401
    except ImportError:
        return False
    return True


def default_tasks(eng: Any, url: str, stamp: tuple) -> list:
    """What a first visitor's pages ask for, most wanted first: the filter options; for the
    default period (and the one before it) and for all time the avoided figures, totals,
    trend and top lists; the lineage; the first checkpoints page; the inputs in use."""
    scopes = scope.default_scopes(agg.date_range(eng)[1])
    out = [task(eng, url, "options", (), stamp)]
    savings = has_savings()
    for key, previous in scopes:
        for k in (key, previous) if previous else (key,):
            if savings:
                out.append(task(eng, url, "avoided", (k, "reproduce"), stamp))
            out.append(task(eng, url, "totals", (k,), stamp))
        out.append(task(eng, url, "trend", (key,), stamp))
        for by in ("project", "user"):
            out.append(task(eng, url, "breakdown", (key, by, 10), stamp))
    out.append(task(eng, url, "lineage", (), stamp))
    for key, _ in scopes:
        out.append(task(eng, url, "checkpoints", (key, None, 25, 0), stamp))
    out.append(task(eng, url, "sources", (scopes[0][0],), stamp))
    return out


def prewarm(url: str) -> int:
    """Compute the default summaries of ``url`` and keep them on disk (precompute.save) for
    the Streamlit server's first page views; how many were computed. Never raises: a page
    computes (and reports) what could not be warmed here."""
    try:
        eng = agg.readonly_engine(url)
    except Exception:  # noqa: BLE001 - no database yet: the pages show the empty state
        return 0
    done = 0
    try:
        if not agg.has_runs_table(eng):
            return 0
        stamp = precompute.data_stamp(eng, url)
        for key, st, fn in default_tasks(eng, url, stamp):
            try:
                precompute.put(key, fn(), st)
                done += 1
            except Exception:  # noqa: BLE001 - see above
                continue
        precompute.save(url)
    except Exception:  # noqa: BLE001 - see above
        return done
    finally:
        eng.dispose()
    return done
