"""What every dashboard page shares: the database, cached loaders, the shared filters.

Data comes from :mod:`ecotrain.store.aggregates` (plain SQL aggregations, tested without
Streamlit). Each loader here is an ``st.cache_data(ttl=60)`` wrapper that takes the database
URL string and a hashable filter key, so a cached result is never served for another
database or another filter.

The engine is cached per URL with ``st.cache_resource``: a SQLAlchemy engine is a
thread-safe pool that hands each script thread its own connection, so no SQLite
connection is ever shared across threads (the engine only reuses a connection after it
has been returned). The engine is read-only (SQLite ``query_only``, PostgreSQL
``default_transaction_read_only``): the dashboard never migrates or writes.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import date, datetime, timedelta
from typing import Any

import streamlit as st

from ecotrain.dashboard import DB_ENV, precompute, scope
from ecotrain.dashboard.scope import (  # noqa: F401 - the views use them through c.*
    PERIODS,
    FilterKey,
    filter_key,
    from_key,
    period_bounds,
)
from ecotrain.store import aggregates as agg
from ecotrain.store.queries import RunFilter
from ecotrain.units import (  # noqa: F401 - the views format through c.*
    UNKNOWN,
    column_unit,
    fmt,
    fmt_co2,
    fmt_duration,
    fmt_energy,
    fmt_in,
    fmt_number,
    fmt_usd,
)

TTL_S = 60

PERIOD_LABELS = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "365d": "Last 12 months",
    "all": "All time",
}
ALL = "All"
EMPTY_MESSAGE = "No runs yet. Record one with `ecotrain run -- python train.py`."


# -- database ---------------------------------------------------------------------------------


def db_url() -> str:
    """The database the dashboard shows: $ECOTRAIN_DASHBOARD_DB, else the configured one."""
    from ecotrain.store.engine import resolve_url

    value = os.environ.get(DB_ENV)
    if not value:
        from ecotrain.config import load_settings

        value = load_settings()["database.url"]
    return resolve_url(value)


@st.cache_resource(show_spinner=False)
def _engine(url: str):
    return agg.readonly_engine(url)


def engine(url: str):
    """The cached read-only engine for ``url`` (raises agg.NoDatabase if the file is absent)."""
    return _engine(url)


# -- filters ----------------------------------------------------------------------------------


def default_period(url: str | None) -> str:
    """The last 30 days, unless nothing ran in them (then all time: scope.default_period)."""
    if url is None:
        return "30d"
    try:
        last = load_last_start(url)
    except Exception:  # noqa: BLE001 - the page itself reports an unreadable database
        return "30d"
    return scope.default_period(last)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_last_start(url: str) -> datetime | None:
    """When the newest run started."""
    return agg.date_range(engine(url))[1]


def init_filters(url: str | None = None) -> None:
    """Seed the shared filters from the URL's query parameters (once per session)."""
    if st.session_state.get("_filters_ready"):
        return
    qp = st.query_params
    period = qp.get("period") or default_period(url)
    st.session_state["f_period"] = period if period in PERIODS else "30d"
    st.session_state["f_project"] = qp.get("project", ALL)
    st.session_state["f_user"] = qp.get("user", ALL)
    st.session_state["_filters_ready"] = True


def sync_query_params() -> None:
    """Write the shared filters into the URL, so the view can be linked."""
    values = {
        "period": st.session_state.get("f_period", "30d"),
        "project": st.session_state.get("f_project", ALL),
        "user": st.session_state.get("f_user", ALL),
    }
    for name, value in values.items():
        default = "30d" if name == "period" else ALL
        if value == default:
            if name in st.query_params:
                del st.query_params[name]
        elif st.query_params.get(name) != value:
            st.query_params[name] = value


def sidebar_filters(url: str) -> None:
    """The shared filters (period, project, user) in the sidebar."""
    init_filters(url)
    options = load_options(url)
    projects = [ALL, *options["project"]]
    users = [ALL, *options["user"]]
    # A linked value that no longer exists falls back to All rather than erroring.
    if st.session_state.get("f_project") not in projects:
        st.session_state["f_project"] = ALL
    if st.session_state.get("f_user") not in users:
        st.session_state["f_user"] = ALL
    warm_default_views(url)
    with st.sidebar:
        st.selectbox("Period", list(PERIODS), key="f_period", format_func=PERIOD_LABELS.__getitem__)
        st.selectbox("Project", projects, key="f_project")
        st.selectbox("User", users, key="f_user")
        st.caption(f"Database: {md_text(_masked(url))}")
    sync_query_params()


def _masked(url: str) -> str:
    from ecotrain.store.engine import mask_url

    return mask_url(url)


def shared_filter(**extra: Any) -> RunFilter:
    """The RunFilter of the shared filters (plus page-specific fields)."""
    since, _ = period_bounds(st.session_state.get("f_period", "30d"))
    project = st.session_state.get("f_project", ALL)
    user = st.session_state.get("f_user", ALL)
    values: dict[str, Any] = {
        "since": since,
        "project": None if project == ALL else project,
        "user": None if user == ALL else user,
    }
    values.update(extra)
    return RunFilter(**values)


def previous_filter(flt: RunFilter) -> RunFilter | None:
    """The same filter over the period just before (None for "all")."""
    since, prev = period_bounds(st.session_state.get("f_period", "30d"))
    if since is None:
        return None
    return dataclasses.replace(flt, since=prev, until=since)


# -- state of the database --------------------------------------------------------------------


def database_state(url: str) -> str:
    """'ok', 'empty' (no file, no schema or no runs) or an error line."""
    try:
        total = load_run_count(url)
    except agg.NoDatabase:
        return "empty"
    except Exception as e:  # noqa: BLE001 - shown to the user, not raised
        return f"cannot read the database: {type(e).__name__}: {str(e).splitlines()[0]}"
    return "ok" if total else "empty"


def require_data(url: str) -> None:
    """Show the empty state (or the error) and stop the page when there is nothing to show."""
    state = database_state(url)
    if state == "empty":
        st.info(EMPTY_MESSAGE, icon=":material/science:")
        st.stop()
    if state != "ok":
        st.error(md_text(state))
        st.stop()


# -- cached loaders ---------------------------------------------------------------------------


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_run_count(url: str) -> int:
    """How many runs the database holds (0 for a database without the schema)."""
    eng = engine(url)
    if not agg.has_runs_table(eng):
        return 0
    return int(agg.totals(eng, RunFilter())["runs"])


def _pre(url: str, name: str, args: tuple) -> Any:
    """The summary ``name`` (dashboard/warmup.py), precomputed per process and on disk and
    refreshed when the data changes (dashboard/precompute.py): a page never waits for an
    aggregation already done once, even by an earlier server."""
    from ecotrain.dashboard import warmup

    eng = engine(url)
    value, _ = precompute.summary(
        (url, name, args), precompute.data_stamp(eng, url), lambda: warmup.compute(eng, name, args)
    )
    return value


def load_options(url: str) -> dict[str, list[str]]:
    """Distinct projects, users, hosts, statuses."""
    if database_state(url) != "ok":
        return {"project": [], "user": [], "host": [], "status": []}
    return _pre(url, "options", ())


def load_totals(url: str, key: FilterKey) -> dict[str, float]:
    """Totals for a filter."""
    return dict(_pre(url, "totals", (key,)))


def load_trend(url: str, key: FilterKey) -> list[dict[str, Any]]:
    """Weekly sums for a filter."""
    return list(_pre(url, "trend", (key,)))


def load_breakdown(url: str, key: FilterKey, by: str, limit: int | None = None) -> list[dict]:
    """Sums grouped by one column."""
    return list(_pre(url, "breakdown", (key, by, limit)))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_runs_page(
    url: str, key: FilterKey, sort: str, descending: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of runs and the total matching."""
    return agg.page_runs(
        engine(url), from_key(key), sort=sort, descending=descending, limit=limit, offset=offset
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_run_detail(url: str, run_id: str) -> dict[str, Any]:
    """One run with its timeline and checkpoints (raises RunNotFound)."""
    return agg.run_detail(engine(url), run_id)


def load_checkpoints(
    url: str, key: FilterKey, search: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of checkpoints."""
    return _pre(url, "checkpoints", (key, search, limit, offset))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_checkpoint_runs(url: str, checkpoint_id: str) -> list[dict[str, Any]]:
    """Runs that produced or consumed one checkpoint."""
    return agg.checkpoint_runs(engine(url), checkpoint_id)


def load_lineage(url: str) -> list[dict[str, Any]]:
    """All checkpoint-to-checkpoint edges (precomputed; refreshed when runs change)."""
    return _pre(url, "lineage", ())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_names(url: str, ids: tuple[str, ...]) -> dict[str, str]:
    """Display names of checkpoints."""
    return agg.checkpoint_names(engine(url), list(ids))


def load_sources(url: str, key: FilterKey) -> dict[str, list[dict[str, Any]]]:
    """Accounting inputs in use."""
    return _pre(url, "sources", (key,))


def savings_module():
    """ecotrain.savings, or None where it is not installed (then say so on the page)."""
    try:
        from ecotrain import savings
    except ImportError:
        return None
    return savings


def load_avoided(url: str, key: FilterKey, mode: str) -> list[dict[str, Any]]:
    """What reusing checkpoints avoided for the runs in scope, one dict per checkpoint.

    The costliest figure of the dashboard (every reused checkpoint's ancestry): precomputed
    per scope and refreshed in the background when runs change (dashboard/precompute.py).
    """
    if savings_module() is None:
        return []
    return list(_pre(url, "avoided", (key, mode)))  # a new list: pages sort it


_warmed: set[str] = set()


def warm_default_views(url: str) -> None:
    """Start computing, once per database and process, what the first pages a visitor opens
    need (dashboard/warmup.py), in the background."""
    if url in _warmed or database_state(url) != "ok":
        return
    _warmed.add(url)
    from ecotrain.dashboard import warmup

    eng = engine(url)
    precompute.warm(warmup.default_tasks(eng, url, precompute.data_stamp(eng, url)))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_footprint(url: str, checkpoint_id: str) -> dict[str, Any] | None:
    """A checkpoint's footprint as a dict (None when unknown or savings is missing)."""
    savings = savings_module()
    if savings is None:
        return None
    fp = savings.checkpoint_footprint(engine(url), checkpoint_id)
    return _plain(fp) if fp is not None else None


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj


def avoided_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summed avoided energy, CO2e and cost, and ``unknown``: (name, what to register) of the
    reused checkpoints whose footprint is unknown. Summed by ecotrain.savings.avoided_total,
    the CLI's rule: a total is None (unknown) when nothing in it is known, never a zero made
    of unknowns; with some unknown it is a lower bound ("at least")."""
    from types import SimpleNamespace

    savings = savings_module()
    if savings is None:
        return {"energy_kwh": None, "co2_kg": None, "cost_usd": None, "unknown": []}
    # The loaders hold plain dicts (cacheable); avoided_total reads attributes.
    items = [
        SimpleNamespace(**{**r, "footprint": SimpleNamespace(**(r.get("footprint") or {}))})
        for r in rows
    ]
    (energy, co2, cost), unknown = savings.avoided_total(items)
    return {"energy_kwh": energy, "co2_kg": co2, "cost_usd": cost, "unknown": unknown}


def fmt_avoided(total: dict[str, Any], name: str) -> str:
    """One avoided total for a metric card: "unknown" when nothing in it is known, "≥ X"
    when some reused checkpoints' footprints are unknown (X counts only the known ones)."""
    value = total[name]
    if value is None:
        return UNKNOWN
    text = {"energy_kwh": fmt_energy, "co2_kg": fmt_co2, "cost_usd": fmt_usd}[name](value)
    return f"≥ {text}" if total["unknown"] else text


REGISTER_HINT = "ecotrain checkpoint register {target} --gpu <model> --gpu-hours <h>"


def unknown_note(total: dict[str, Any]) -> str | None:
    """Markdown for st.caption: which reused checkpoints have an unknown footprint (so the
    avoided figures are unknown, or a lower bound) and the command that states one; None
    when every footprint is known."""
    unknown = total["unknown"]
    if not unknown:
        return None
    n = len(unknown)
    names = ", ".join(name for name, _ in unknown[:3]) + (f" and {n - 3:,} more" if n > 3 else "")
    known = total["co2_kg"] is not None or total["energy_kwh"] is not None
    lead = (
        "At least: the figures count only the known footprints; "
        if known
        else "Unknown, not zero: "
    )
    target = unknown[0][1].replace("`", "'")
    return (
        f"{lead}{n:,} reused checkpoint{'s' if n != 1 else ''} ({md_text(names)}) "
        f"{'have' if n != 1 else 'has'} no recorded, registered or catalogued footprint. "
        f"State one with `{REGISTER_HINT.format(target=target)}` (or --energy-kwh / --co2-kg)."
    )


# -- formatting -------------------------------------------------------------------------------


def delta(now: float | None, before: float | None) -> str | None:
    """Change vs the previous period, as a percent string for st.metric (None if n/a)."""
    if before is None or now is None:
        return None
    if not before:
        return None if not now else "new"
    return f"{(now - before) / before * 100:+.0f}% vs previous period"


def date_to_dt(d: date | None, end: bool = False) -> datetime | None:
    """A date widget's value as a naive UTC datetime (end-of-day exclusive bound if end)."""
    if d is None:
        return None
    dt = datetime(d.year, d.month, d.day)
    return dt + timedelta(days=1) if end else dt


def md_text(value: Any) -> str:
    """User data for a Streamlit element that renders Markdown (subheader, caption, warning):
    one line, every character Markdown would act on escaped, so a name cannot add a link or
    an image that every viewer's browser would fetch (issue 16)."""
    from ecotrain.reports.markdown import text

    return text(value)


# -- tables for people ------------------------------------------------------------------------
# A column spec: name -> (label, kind). Kinds: energy (kWh), co2 (kg), usd, number, int,
# duration (s), text, datetime, link. Energy and CO2e columns get one unit for the whole column
# (in the header); every cell is formatted by ecotrain.units, so a table never shows "None",
# e-notation or a value rounded to 0. The underlying numbers stay, so sorting by a column
# header still sorts by value.
Spec = dict[str, tuple[str, str]]


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return UNKNOWN
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    return str(value)


def _int(value: Any) -> str:
    return UNKNOWN if not _is_number(value) else f"{int(value):,}"


def _is_number(value: Any) -> bool:
    return fmt_number(value) != UNKNOWN


def show_table(
    frame, spec: Spec, key: str | None = None, height: int | str = "auto", static: bool = False
) -> None:
    """``frame`` as a human table: the columns of ``spec`` in its order, labelled, formatted.

    A numeric column without gaps keeps its numbers (the header sorts by value) and shows
    them through a Styler; a column with unknown cells becomes its formatted text (the grid
    would otherwise draw a missing value as "None"); text columns never hold a missing value.
    ``static``: a small table as plain HTML (st.table), whose long texts wrap, never cut.
    """
    import pandas as pd

    frame = pd.DataFrame(frame)
    shown = [c for c in spec if c in frame.columns]
    frame = frame[shown].copy()
    formats: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for col in shown:
        label, kind = spec[col]
        fmt_fn: Any = None
        if kind in ("energy", "co2"):
            unit = column_unit(list(frame[col]), kind)
            fmt_fn = lambda v, u=unit: fmt_in(v, u)  # noqa: E731
            label = f"{label} ({unit.symbol})"
        elif kind == "usd":
            fmt_fn = fmt_usd
        elif kind == "number":
            fmt_fn = fmt_number
        elif kind == "int":
            fmt_fn = _int
        elif kind == "duration":
            fmt_fn = fmt_duration
        if kind == "datetime":
            config[col] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm")
            if frame[col].isna().any():
                frame[col] = frame[col].map(lambda v: _text(v)[:16])
                config[col] = st.column_config.Column(label)
        elif kind == "link":
            config[col] = st.column_config.LinkColumn(label, display_text="open", width="small")
        elif fmt_fn is None:  # text
            frame[col] = frame[col].map(_text)
            config[col] = st.column_config.Column(label)
        elif frame[col].isna().any():
            frame[col] = frame[col].map(fmt_fn)
            config[col] = st.column_config.Column(label)
        else:
            formats[col] = fmt_fn
            config[col] = st.column_config.Column(label)
    if static:
        names = {c: _label(config.get(c), c) for c in shown}
        plain = frame.rename(columns=names)
        styled = plain.style.format({names[c]: f for c, f in formats.items()})
        st.table(styled.hide(axis="index"))
        return
    st.dataframe(
        frame.style.format(formats),
        hide_index=True,
        column_config=config,
        key=key,
        height=height,
    )


def _label(column_config: Any, default: str) -> str:
    # st.column_config.Column(...) is a dict with the label under "label".
    if isinstance(column_config, dict) and column_config.get("label") is not None:
        return str(column_config["label"])
    return default


def ratio_text(avoided: float | None, emitted: float | None, at_least: bool = False) -> str:
    """Avoided over emitted as "3.2×" ("≥ 3.2×" when ``at_least``; "unknown" when the
    avoided figure is unknown or nothing was emitted)."""
    if avoided is None or not emitted:
        return UNKNOWN
    if not avoided:
        return "≥ 0×" if at_least else "0×"
    return f"{'≥ ' if at_least else ''}{fmt_number(avoided / emitted)}×"


def bar_chart(
    frame, label_col: str, value_col: str, title: str, kind: str, horizontal: bool = True
) -> None:
    """A bar chart in the unit that reads best, every label shown in full; horizontal bars
    are sorted by value (largest on top), vertical ones keep the frame's order (time)."""
    import altair as alt

    frame = frame[[label_col, value_col]].copy()
    if kind in ("energy", "co2"):
        unit = column_unit(list(frame[value_col]), kind)
        frame[value_col] = frame[value_col].fillna(0.0) / unit.factor
        axis_title = f"{title} ({unit.symbol})"
    elif kind == "usd":
        axis_title = f"{title} ($)"
    else:
        axis_title = title
    frame[label_col] = frame[label_col].map(_text)
    value = alt.X(value_col, title=axis_title) if horizontal else alt.Y(value_col, title=axis_title)
    label_axis = alt.Axis(labelLimit=0, title=None)
    if horizontal:
        chart = alt.Chart(frame).mark_bar().encode(
            x=value, y=alt.Y(label_col, sort="-x", axis=label_axis),
            tooltip=[label_col, alt.Tooltip(value_col, format=",.3~r")],
        ).properties(height=max(120, 24 * len(frame)))  # fmt: skip
    else:
        chart = alt.Chart(frame).mark_bar().encode(
            x=alt.X(label_col, sort=None, axis=label_axis), y=value,
            tooltip=[label_col, alt.Tooltip(value_col, format=",.3~r")],
        ).properties(height=260)  # fmt: skip
    st.altair_chart(chart, width="stretch")
