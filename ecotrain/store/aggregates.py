"""SQL aggregations for the dashboard (and anyone else): totals, trends, breakdowns, pages.

Every function takes an engine and a :class:`~ecotrain.store.queries.RunFilter` and returns
plain dicts/lists, so it is tested without Streamlit. The heavy lifting (sums, grouping,
ordering, paging) happens in SQL: the dashboard stays fast with 100,000 runs.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Date, and_, cast, distinct, func, inspect, literal, select
from sqlalchemy.engine import Engine, make_url

from ecotrain.store.queries import RunFilter, effective_status, get_run, run_samples
from ecotrain.store.schema import checkpoints, run_checkpoints, runs

# The summed columns, under the names the dashboard shows. "energy_kwh" is facility energy
# (IT energy x PUE): the energy CO2e and electricity cost are computed from.
SUMS = {
    "energy_kwh": runs.c.facility_energy_kwh,
    "it_energy_kwh": runs.c.it_energy_kwh,
    "co2_kg": runs.c.co2_kg,
    "cost_usd": runs.c.cost_usd,
    "gpu_hours": runs.c.gpu_hours,
}

# Columns a breakdown may group by (never arbitrary SQL from a widget).
BREAKDOWN_COLUMNS = ("project", "user", "host", "gpu_model", "region", "status", "cost_method")

# What the runs table shows, and may be sorted by.
RUN_LIST_COLUMNS = (
    "run_id",
    "started_at",
    "project",
    "user",
    "host",
    "status",
    "duration_s",
    "gpu_model",
    "gpu_count",
    "gpu_hours",
    "it_energy_kwh",
    "facility_energy_kwh",
    "co2_kg",
    "cost_usd",
    "region",
    "command",
    "tags",
)
SORTABLE = tuple(c for c in RUN_LIST_COLUMNS if c not in ("command", "tags"))
SORT_LABELS = {
    "run_id": "run id", "started_at": "start time", "duration_s": "duration",
    "gpu_model": "GPU model", "gpu_count": "GPU count", "gpu_hours": "GPU-hours",
    "it_energy_kwh": "IT energy", "facility_energy_kwh": "energy (facility)",
    "co2_kg": "CO2e", "cost_usd": "cost",
}  # fmt: skip

UNKNOWN = "(unknown)"


class NoDatabase(LookupError):
    """The SQLite file does not exist (a reader must not create it)."""


def readonly_engine(url: str) -> Engine:
    """A read-only engine on ``url`` (a resolved URL or a SQLite path).

    A missing SQLite file raises :class:`NoDatabase` instead of being created; SQLite
    connections are ``query_only`` and PostgreSQL sessions ``read_only`` (see
    :func:`ecotrain.store.engine.make_engine`).
    """
    from ecotrain.store.db import Store
    from ecotrain.store.engine import resolve_url

    resolved = resolve_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not Path(db).is_file():
            raise NoDatabase(f"no database at {db}")
    return Store(resolved, readonly=True, migrate=False).engine


def has_runs_table(engine: Engine) -> bool:
    """Whether the database has ecotrain's schema at all (a fresh file has none)."""
    with engine.connect() as conn:
        return inspect(conn).has_table(runs.name)


def _sum_cols() -> list:
    return [func.coalesce(func.sum(col), 0.0).label(name) for name, col in SUMS.items()]


def totals(engine: Engine, flt: RunFilter) -> dict[str, float]:
    """Run count and summed energy, CO2e, cost and GPU-hours of the runs matching ``flt``."""
    stmt = select(func.count().label("runs"), *_sum_cols()).select_from(runs).where(flt.where())
    with engine.connect() as conn:
        row = conn.execute(stmt).one()
    return dict(row._mapping)


def week_start(engine: Engine):
    """SQL expression: the Monday (a date) of the week a run started, on both backends."""
    # Monday of the run's week, as a date, on both backends.
    if engine.dialect.name == "postgresql":
        return cast(func.date_trunc("week", runs.c.started_at), Date)
    return func.date(runs.c.started_at, "weekday 0", "-6 days")


def weekly_trend(engine: Engine, flt: RunFilter) -> list[dict[str, Any]]:
    """Per-week sums (week = Monday's date, ISO string), oldest first."""
    week = week_start(engine).label("week")
    stmt = (
        select(week, func.count().label("runs"), *_sum_cols())
        .select_from(runs)
        .where(flt.where())
        .group_by(week)
        .order_by(week)
    )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    for r in rows:
        r["week"] = str(r["week"])[:10]
    return rows


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def breakdown(
    engine: Engine, flt: RunFilter, by: str, limit: int | None = None
) -> list[dict[str, Any]]:
    """Sums grouped by one column, largest CO2e first, with cost per GPU-hour and CO2 per kWh.

    ``co2_per_kwh_g`` is grams CO2e per facility kWh (the effective grid intensity of the
    group); ``cost_per_gpu_hour`` is dollars per GPU-hour (None where no GPU-hours).
    """
    if by not in BREAKDOWN_COLUMNS:
        raise ValueError(f"cannot break down by {by!r}: one of {', '.join(BREAKDOWN_COLUMNS)}")
    col = runs.c[by]
    stmt = (
        select(col.label("key"), func.count().label("runs"), *_sum_cols())
        .select_from(runs)
        .where(flt.where())
        .group_by(col)
        .order_by(func.coalesce(func.sum(runs.c.co2_kg), 0.0).desc(), col)
    )
    if limit:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    for r in rows:
        r[by] = r.pop("key") if r["key"] is not None else UNKNOWN
        r["cost_per_gpu_hour"] = _ratio(r["cost_usd"], r["gpu_hours"])
        co2_per_kwh = _ratio(r["co2_kg"], r["energy_kwh"])
        r["co2_per_kwh_g"] = co2_per_kwh * 1000 if co2_per_kwh is not None else None
    return rows


def filter_options(engine: Engine) -> dict[str, list[str]]:
    """Distinct projects, users, hosts and statuses, for the filter widgets."""
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name in ("project", "user", "host"):
            col = runs.c[name]
            stmt = select(col).distinct().where(col.isnot(None)).order_by(col)
            out[name] = list(conn.execute(stmt).scalars())
        status = effective_status()
        out["status"] = sorted(conn.execute(select(status).distinct()).scalars())
    return out


def date_range(engine: Engine) -> tuple[datetime | None, datetime | None]:
    """The first and last run start in the database."""
    with engine.connect() as conn:
        row = conn.execute(select(func.min(runs.c.started_at), func.max(runs.c.started_at))).one()
    return _as_datetime(row[0]), _as_datetime(row[1])


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _run_list_select(flt: RunFilter, sort: str, descending: bool):
    if sort not in SORTABLE:
        raise ValueError(f"cannot sort by {sort!r}: one of {', '.join(SORTABLE)}")
    cols = [effective_status() if c == "status" else runs.c[c] for c in RUN_LIST_COLUMNS]
    order = runs.c[sort] if sort != "status" else effective_status()
    # run_id breaks ties, so paging is stable.
    return (
        select(*cols)
        .where(flt.where())
        .order_by(order.desc() if descending else order.asc(), runs.c.run_id)
    )


def page_runs(
    engine: Engine,
    flt: RunFilter,
    *,
    sort: str = "started_at",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the runs matching ``flt`` (sorted, paged in SQL) and how many match."""
    stmt = _run_list_select(flt, sort, descending).limit(limit).offset(offset)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        total = conn.execute(select(func.count()).select_from(runs).where(flt.where())).scalar()
    return rows, int(total or 0)


def _csv_value(value: Any) -> Any:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value


def runs_csv(
    engine: Engine, flt: RunFilter, *, sort: str = "started_at", descending: bool = True
) -> str:
    """All runs matching ``flt`` as CSV text (the runs-table columns), streamed from SQL."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(RUN_LIST_COLUMNS)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(
            _run_list_select(flt, sort, descending)
        )
        for row in result:
            writer.writerow([_csv_value(v) for v in row])
    return buf.getvalue()


def run_detail(engine: Engine, run_id: str) -> dict[str, Any]:
    """One run (by id or unique prefix): its row, power timeline and checkpoints.

    ``checkpoints`` lists each link (consumed/produced) with the checkpoint's name, stated
    footprint source and how many runs consumed it. Raises
    :class:`~ecotrain.store.queries.RunNotFound`.
    """
    run = get_run(engine, run_id)
    # Reuse counts of this run's checkpoints only (an index lookup each), not of all of them.
    mine = select(run_checkpoints.c.checkpoint_id).where(run_checkpoints.c.run_id == run["run_id"])
    reused = (
        select(run_checkpoints.c.checkpoint_id, func.count(distinct(run_checkpoints.c.run_id)))
        .where(run_checkpoints.c.role == "consumed", run_checkpoints.c.checkpoint_id.in_(mine))
        .group_by(run_checkpoints.c.checkpoint_id)
        .subquery()
    )
    stmt = (
        select(
            run_checkpoints.c.checkpoint_id,
            run_checkpoints.c.role,
            run_checkpoints.c.path,
            run_checkpoints.c.detected_by,
            checkpoints.c.name,
            checkpoints.c.footprint_source,
            func.coalesce(reused.c[1], 0).label("times_reused"),
        )
        .select_from(
            run_checkpoints.outerjoin(
                checkpoints, checkpoints.c.checkpoint_id == run_checkpoints.c.checkpoint_id
            ).outerjoin(reused, reused.c.checkpoint_id == run_checkpoints.c.checkpoint_id)
        )
        .where(run_checkpoints.c.run_id == run["run_id"])
        .order_by(run_checkpoints.c.role, run_checkpoints.c.checkpoint_id)
    )
    with engine.connect() as conn:
        links = [dict(r._mapping) for r in conn.execute(stmt)]
    timeline, trimmed = trim_final_zero(run_samples(engine, run["run_id"]))
    return {"run": run, "samples": timeline, "trimmed": trimmed, "checkpoints": links}


def trim_final_zero(points: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """A power timeline without its trailing all-zero samples, and how many were dropped.

    The sampler's final tick comes after the command's processes have exited, so modelled
    components read 0 W: drawn, the line would end in a cliff that never happened. Such a
    tick adds no energy (the totals never depend on the drawn timeline). A timeline that is
    zero throughout is kept as it is."""

    def zero(p: dict[str, Any]) -> bool:
        return not any(p.get(k) for k in ("gpu_w", "cpu_w", "ram_w"))

    end = len(points)
    while end > 0 and zero(points[end - 1]):
        end -= 1
    if end == 0:
        return points, 0
    return points[:end], len(points) - end


def checkpoint_table(
    engine: Engine,
    flt: RunFilter,
    *,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Checkpoints, most reused first, with stated footprint and link counts.

    ``times_reused`` counts the runs matching ``flt`` that consumed the checkpoint;
    ``produced_by`` counts every run that wrote it (its footprint does not depend on the
    period viewed).
    """
    in_scope = select(runs.c.run_id).where(flt.where())
    consumed = (
        select(
            run_checkpoints.c.checkpoint_id.label("cid"),
            func.count(distinct(run_checkpoints.c.run_id)).label("n"),
        )
        .where(and_(run_checkpoints.c.role == "consumed", run_checkpoints.c.run_id.in_(in_scope)))
        .group_by(run_checkpoints.c.checkpoint_id)
        .subquery()
    )
    produced = (
        select(
            run_checkpoints.c.checkpoint_id.label("cid"),
            func.count(distinct(run_checkpoints.c.run_id)).label("n"),
        )
        .where(run_checkpoints.c.role == "produced")
        .group_by(run_checkpoints.c.checkpoint_id)
        .subquery()
    )
    where = literal(True)
    if search:
        # contains(autoescape): a "%" or "_" typed in the search box is itself, not a wildcard.
        needle = search.lower()
        where = func.lower(func.coalesce(checkpoints.c.name, "")).contains(
            needle, autoescape=True
        ) | func.lower(checkpoints.c.checkpoint_id).contains(needle, autoescape=True)
    times_reused = func.coalesce(consumed.c.n, 0).label("times_reused")
    stmt = (
        select(
            checkpoints.c.checkpoint_id,
            checkpoints.c.name,
            checkpoints.c.hf_repo,
            checkpoints.c.footprint_source,
            checkpoints.c.fp_gpu_hours,
            checkpoints.c.fp_energy_kwh,
            checkpoints.c.fp_co2_kg,
            checkpoints.c.fp_cost_usd,
            times_reused,
            func.coalesce(produced.c.n, 0).label("produced_by"),
        )
        .select_from(
            checkpoints.outerjoin(
                consumed, consumed.c.cid == checkpoints.c.checkpoint_id
            ).outerjoin(produced, produced.c.cid == checkpoints.c.checkpoint_id)
        )
        .where(where)
        .order_by(times_reused.desc(), checkpoints.c.checkpoint_id)
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        total = conn.execute(select(func.count()).select_from(checkpoints).where(where)).scalar()
    return rows, int(total or 0)


def checkpoint_runs(engine: Engine, checkpoint_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """The runs that produced or consumed one checkpoint, newest first."""
    stmt = (
        select(
            run_checkpoints.c.role,
            runs.c.run_id,
            runs.c.project,
            runs.c.user,
            runs.c.started_at,
            runs.c.facility_energy_kwh,
            runs.c.co2_kg,
        )
        .select_from(run_checkpoints.join(runs, runs.c.run_id == run_checkpoints.c.run_id))
        .where(run_checkpoints.c.checkpoint_id == checkpoint_id)
        .order_by(run_checkpoints.c.role.desc(), runs.c.started_at.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def lineage_edges(engine: Engine) -> list[dict[str, Any]]:
    """Checkpoint-to-checkpoint edges: a run consumed ``parent`` and produced ``child``.

    ``runs`` counts the runs behind each edge. One SQL self-join over run_checkpoints.
    """
    c = run_checkpoints.alias("c")
    p = run_checkpoints.alias("p")
    stmt = (
        select(
            c.c.checkpoint_id.label("parent"),
            p.c.checkpoint_id.label("child"),
            func.count(distinct(c.c.run_id)).label("runs"),
        )
        .select_from(c.join(p, and_(c.c.run_id == p.c.run_id, p.c.role == "produced")))
        .where(and_(c.c.role == "consumed", c.c.checkpoint_id != p.c.checkpoint_id))
        .group_by(c.c.checkpoint_id, p.c.checkpoint_id)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def checkpoint_names(engine: Engine, ids: list[str]) -> dict[str, str]:
    """checkpoint_id -> a display name (its name, else a short id)."""
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(checkpoints.c.checkpoint_id, checkpoints.c.name).where(
                checkpoints.c.checkpoint_id.in_(ids)
            )
        ).all()
    names = {cid: name for cid, name in rows if name}
    return {cid: names.get(cid) or short_id(cid) for cid in ids}


def short_gpu(model: str | None) -> str:
    """ "NVIDIA A100-SXM4-80GB" -> "A100-SXM4-80GB" (the vendor prefix says nothing new)."""
    text = " ".join(str(model or "").split())
    return text.removeprefix("NVIDIA ").strip() or "no GPU"


def short_id(checkpoint_id: str) -> str:
    """``sha256:0123abcd…`` -> ``sha256:0123abcd`` (12 hex digits)."""
    kind, _, rest = checkpoint_id.partition(":")
    return f"{kind}:{rest[:12]}" if rest else checkpoint_id[:19]


def neighbourhood(
    edges: list[dict[str, Any]], focus: str | None, max_nodes: int = 40, max_edges: int = 80
) -> list[dict[str, Any]]:
    """The edges around ``focus`` (ancestors and descendants, breadth first, busiest edges
    first), or the busiest part of the whole graph when there is no focus.

    Bounded to ``max_nodes`` nodes and ``max_edges`` edges: the graph is laid out in the
    browser, and a hub checkpoint reused by hundreds of runs must not make it unreadable.
    """
    ordered = sorted(edges, key=lambda e: (-e["runs"], e["parent"], e["child"]))
    kept: list[dict[str, Any]] = []
    if focus is None:
        nodes: set[str] = set()
        for e in ordered:
            new = {e["parent"], e["child"]} - nodes
            if len(nodes) + len(new) > max_nodes:
                continue
            nodes |= new
            kept.append(e)
            if len(kept) >= max_edges:
                break
        return kept
    around: dict[str, list[dict]] = {}
    for e in ordered:
        around.setdefault(e["parent"], []).append(e)
        around.setdefault(e["child"], []).append(e)
    nodes = {focus}
    seen: set[tuple[str, str]] = set()
    queue = deque([focus])
    while queue and len(kept) < max_edges:
        for e in around.get(queue.popleft(), []):
            key = (e["parent"], e["child"])
            new = [n for n in key if n not in nodes]
            if key in seen or len(nodes) + len(new) > max_nodes:
                continue
            seen.add(key)
            kept.append(e)
            nodes.update(new)
            queue.extend(new)
            if len(kept) >= max_edges:
                break
    return kept


def lineage_dot(
    edges: list[dict[str, Any]],
    names: dict[str, str],
    focus: str | None = None,
    extra_nodes: list[str] | None = None,
) -> str:
    """A Graphviz DOT digraph of checkpoint lineage (rendered client-side by Streamlit)."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    n_nodes = len({n for e in edges for n in (e["parent"], e["child"])} | set(extra_nodes or []))
    # Left to right reads best for a few checkpoints; a longer graph laid out that way is
    # scaled down to the page width until its labels are unreadable, so it goes top down.
    lines = [
        "digraph lineage {",
        f"  rankdir={'LR' if n_nodes <= 8 else 'TB'};",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef5ee", fontname="Helvetica"];',
        '  edge [color="#557755", fontname="Helvetica", fontsize=10];',
    ]
    nodes: list[str] = list(extra_nodes or [])
    for e in edges:
        for n in (e["parent"], e["child"]):
            if n not in nodes:
                nodes.append(n)
    for n in nodes:
        style = ', fillcolor="#b9dfb9", penwidth=2' if n == focus else ""
        lines.append(f"  {q(n)} [label={q(names.get(n, short_id(n)))}{style}];")
    for e in edges:
        label = f' [label="{e["runs"]} run{"s" if e["runs"] != 1 else ""}"]'
        lines.append(f"  {q(e['parent'])} -> {q(e['child'])}{label};")
    lines.append("}")
    return "\n".join(lines)


def sources_in_use(engine: Engine, flt: RunFilter) -> dict[str, list[dict[str, Any]]]:
    """The accounting inputs the runs in scope were computed with, and how often each.

    Keys: pue, intensity, price, methods, versions; each a list of {value columns.., runs}.
    """
    groups = {
        "pue": (runs.c.pue, runs.c.pue_source),
        "intensity": (
            runs.c.region,
            runs.c.intensity_g_per_kwh,
            runs.c.intensity_source,
            runs.c.intensity_boundary,
        ),
        "price": (runs.c.cost_method, runs.c.price, runs.c.price_source),
        "methods": (runs.c.gpu_method, runs.c.cpu_method, runs.c.ram_method),
        "versions": (runs.c.ecotrain_version, runs.c.data_version),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for name, cols in groups.items():
            stmt = (
                select(*cols, func.count().label("runs"))
                .where(flt.where())
                .group_by(*cols)
                .order_by(func.count().desc())
                .limit(20)
            )
            out[name] = [dict(r._mapping) for r in conn.execute(stmt)]
    return out


def component_split(engine: Engine, flt: RunFilter) -> list[dict[str, Any]]:
    """IT energy by component (kWh) and how many runs measured it by which method."""
    out = []
    with engine.connect() as conn:
        for comp in ("gpu", "cpu", "ram"):
            energy, method = runs.c[f"{comp}_energy_j"], runs.c[f"{comp}_method"]
            kwh = conn.execute(
                select(func.coalesce(func.sum(energy), 0.0) / 3.6e6).where(flt.where())
            ).scalar()
            methods = {
                m or "not measured": n
                for m, n in conn.execute(
                    select(method, func.count()).where(flt.where()).group_by(method)
                )
            }
            out.append({"component": comp, "kwh": float(kwh or 0.0), "methods": methods})
    return out


def grouped_totals(
    engine: Engine, flt: RunFilter, by: tuple[str, ...] | list[str]
) -> list[dict[str, Any]]:
    """Run count, runs still running, and the summed figures per combination of ``by``
    columns (e.g. project, user, gpu_model), largest CO2e first; None where a key is unknown.
    Used by `ecotrain summary` and the Prometheus exporter."""
    from sqlalchemy import case

    bad = [b for b in by if b not in BREAKDOWN_COLUMNS]
    if bad:
        raise ValueError(f"cannot group by {bad[0]!r}: one of {', '.join(BREAKDOWN_COLUMNS)}")
    cols = [runs.c[b] for b in by]
    running = func.sum(case((effective_status() == "running", 1), else_=0)).label("running")
    stmt = (
        select(*cols, func.count().label("runs"), running, *_sum_cols())
        .select_from(runs)
        .where(flt.where())
        .group_by(*cols)
        .order_by(func.coalesce(func.sum(runs.c.co2_kg), 0.0).desc(), *cols)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def running_runs_power(engine: Engine, flt: RunFilter) -> list[dict[str, Any]]:
    """Runs in progress with their figures so far and their last sampled IT power (W)."""
    from ecotrain.store.schema import samples

    cols = [runs.c[c] for c in ("run_id", "project", "user", "gpu_model", "host")]
    sums = [runs.c[c] for c in ("facility_energy_kwh", "co2_kg", "cost_usd", "duration_s")]
    where = and_(flt.where(), effective_status() == "running")
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(*cols, *sums).where(where))]
        for row in rows:
            last = conn.execute(
                select(samples.c.gpu_w, samples.c.cpu_w, samples.c.ram_w)
                .where(samples.c.run_id == row["run_id"])
                .order_by(samples.c.t_s.desc())
                .limit(1)
            ).first()
            row["power_w"] = sum(v or 0.0 for v in last) if last is not None else None
    return rows
