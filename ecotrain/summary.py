"""Totals by project, user or GPU (`ecotrain summary`): grouped sums plus one totals row."""

from __future__ import annotations

from typing import Any

from ecotrain.errors import UserError

# what a person types -> the runs column
BY = {
    "project": "project",
    "user": "user",
    "gpu": "gpu_model",
    "host": "host",
    "region": "region",
    "status": "status",
}


def parse_by(text: str) -> list[str]:
    """``project,user`` -> the runs columns; an unknown name is a user error."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    bad = [n for n in names if n not in BY]
    if bad or not names:
        raise UserError(f"bad --by {text!r}: use one or more of {', '.join(BY)} (comma-separated)")
    return [BY[n] for n in names]


def summarize(engine: Any, flt: Any, by: list[str]) -> dict[str, Any]:
    """``{"by": [...], "groups": [{<keys>, runs, running, energy_kwh, ..., per_unit}],
    "total": {...}}``.

    ``energy_kwh`` is facility energy (IT x PUE), as everywhere in ecotrain's totals.
    ``per_unit`` is :func:`ecotrain.efficiency.pooled` over the group's runs that reported
    tokens or samples (``{}`` when none did).
    """
    from collections import defaultdict

    from ecotrain.efficiency import pooled, runs_with_work
    from ecotrain.store.aggregates import grouped_totals, totals

    names = {col: name for name, col in BY.items()}
    groups = grouped_totals(engine, flt, tuple(by))
    work = runs_with_work(engine, flt, extra=by)
    by_key: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for run in work:
        by_key[tuple(run[c] for c in by)].append(run)
    for row in groups:
        row["per_unit"] = pooled(by_key.get(tuple(row[c] for c in by), []))
        for col in by:
            row[names[col]] = row.pop(col) if col != names[col] else row[col]
    total = {**totals(engine, flt), "per_unit": pooled(work)}
    return {"by": [names[c] for c in by], "groups": groups, "total": total}
