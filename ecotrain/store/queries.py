"""Read queries over the store, shared by the CLI, the dashboard and the reports.

Aggregations run in SQL; callers get plain dicts (no pandas here, so the CLI stays light).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from ecotrain.store.records import utcnow
from ecotrain.store.schema import runs, samples

# A run still "running" whose last heartbeat is older than this is shown as lost.
LOST_AFTER_S = 300.0


@dataclass
class RunFilter:
    """Which runs a listing, report or dashboard page covers."""

    project: str | None = None
    projects: list[str] | None = None
    user: str | None = None
    host: str | None = None
    status: str | None = None
    job: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    run_ids: list[str] | None = None
    text: str | None = None  # search in the command line

    def where(self):
        """The SQLAlchemy WHERE clause for this filter."""
        clauses = []
        if self.project:
            clauses.append(runs.c.project == self.project)
        if self.projects:
            clauses.append(runs.c.project.in_(self.projects))
        if self.user:
            clauses.append(runs.c.user == self.user)
        if self.host:
            clauses.append(runs.c.host == self.host)
        if self.status:
            clauses.append(effective_status() == self.status)
        if self.job:
            clauses.append(runs.c.job_id == self.job)
        if self.since:
            clauses.append(runs.c.started_at >= self.since)
        if self.until:
            clauses.append(runs.c.started_at < self.until)
        if self.run_ids:
            clauses.append(
                or_(*[runs.c.run_id.startswith(r, autoescape=True) for r in self.run_ids])
            )
        if self.text:
            clauses.append(
                func.lower(_as_text(runs.c.command)).contains(self.text.lower(), autoescape=True)
            )
        for key, value in self.tags.items():
            # Tags are a JSON object; matching on its text form works on both backends.
            clauses.append(_as_text(runs.c.tags).contains(f'"{key}": "{value}"', autoescape=True))
        return and_(*clauses) if clauses else and_(True)


def _as_text(col):
    from sqlalchemy import String, cast

    return cast(col, String)


def effective_status(now: datetime | None = None):
    """SQL expression: the stored status, with stale 'running' rows shown as 'lost'."""
    from sqlalchemy import case

    cutoff = (now or utcnow()) - timedelta(seconds=LOST_AFTER_S)
    last = func.coalesce(runs.c.heartbeat_at, runs.c.started_at)
    return case(
        (and_(runs.c.status == "running", last < cutoff), "lost"), else_=runs.c.status
    ).label("status")


def list_runs(
    engine: Engine,
    flt: RunFilter | None = None,
    limit: int = 50,
    offset: int = 0,
    order: str = "started_at",
    descending: bool = True,
) -> list[dict[str, Any]]:
    """Runs matching ``flt``, newest first, as dicts of their columns."""
    flt = flt or RunFilter()
    cols = [c for c in runs.columns if c.name != "status"] + [effective_status()]
    order_col = runs.c.get(order, runs.c.started_at)
    stmt = (
        select(*cols)
        .where(flt.where())
        .order_by(order_col.desc() if descending else order_col.asc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def count_runs(engine: Engine, flt: RunFilter | None = None) -> int:
    """How many runs match ``flt``."""
    flt = flt or RunFilter()
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(runs).where(flt.where())).scalar()


class RunNotFound(LookupError):
    """No run, or several, match an id prefix."""


def get_run(engine: Engine, run_id: str) -> dict[str, Any]:
    """One run by id or unique id prefix (raises RunNotFound with suggestions)."""
    cols = [c for c in runs.columns if c.name != "status"] + [effective_status()]
    with engine.connect() as conn:
        rows = conn.execute(
            select(*cols).where(runs.c.run_id.startswith(run_id, autoescape=True)).limit(5)
        ).all()
        if len(rows) == 1:
            return dict(rows[0]._mapping)
        if len(rows) > 1:
            ids = ", ".join(r.run_id[:12] for r in rows)
            raise RunNotFound(f"run id {run_id!r} is ambiguous: {ids}")
        recent = conn.execute(
            select(runs.c.run_id).order_by(runs.c.started_at.desc()).limit(3)
        ).scalars()
        hint = ", ".join(r[:12] for r in recent)
        raise RunNotFound(
            f"no run {run_id!r}" + (f" (recent runs: {hint})" if hint else " (no runs yet)")
        )


def run_samples(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """The power timeline of one run."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(samples.c.t_s, samples.c.gpu_w, samples.c.cpu_w, samples.c.ram_w)
            .where(samples.c.run_id == run_id)
            .order_by(samples.c.t_s)
        )
        return [dict(r._mapping) for r in rows]


def db_counts(engine: Engine) -> dict[str, Any]:
    """Schema version and row counts, for `ecotrain db info`."""
    from sqlalchemy import inspect

    from ecotrain.store.migrations import current_version
    from ecotrain.store.schema import SCHEMA_VERSION, checkpoints, run_checkpoints

    with engine.connect() as conn:
        version = current_version(conn)
        out: dict[str, Any] = {
            "schema_version": version,
            "code_schema_version": SCHEMA_VERSION,
        }
        if version is None:
            return out
        for table in (runs, samples, checkpoints, run_checkpoints):
            if inspect(conn).has_table(table.name):
                out[f"{table.name}_rows"] = conn.execute(
                    select(func.count()).select_from(table)
                ).scalar()
        out["runs_running"] = conn.execute(
            select(func.count()).select_from(runs).where(runs.c.status == "running")
        ).scalar()
    return out


def suggest(engine: Engine, project: str | None = None, run_ids: list[str] | None = None) -> str:
    """A hint for a selection that matched nothing: close project names, recent run ids."""
    import difflib

    hints = []
    with engine.connect() as conn:
        if project:
            projects = conn.execute(select(runs.c.project).distinct()).scalars().all()
            close = difflib.get_close_matches(project, projects, n=3, cutoff=0.5)
            if project not in projects:
                hints.append(
                    f"no project {project!r}"
                    + (f"; did you mean {', '.join(close)}?" if close else "")
                    + (f" (projects: {', '.join(sorted(projects)[:8])})" if projects else "")
                )
        for run_id in run_ids or []:
            found = conn.execute(
                select(runs.c.run_id)
                .where(runs.c.run_id.startswith(run_id, autoescape=True))
                .limit(1)
            ).first()
            if not found:
                recent = (
                    conn.execute(select(runs.c.run_id).order_by(runs.c.started_at.desc()).limit(3))
                    .scalars()
                    .all()
                )
                hints.append(
                    f"no run {run_id!r} (recent: {', '.join(r[:12] for r in recent) or 'none'})"
                )
    return (": " + "; ".join(hints)) if hints else ""
