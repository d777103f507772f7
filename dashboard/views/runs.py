"""Runs: the filterable, sortable, paginated table, with a CSV of every filtered row."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecotrain.dashboard import common as c
from ecotrain.store import aggregates as agg

PAGE_SIZE = 50

st.title("Runs")
url = c.db_url()
c.require_data(url)
options = c.load_options(url)

cols = st.columns([2, 2, 2, 3])
host = cols[0].selectbox("Host", [c.ALL, *options["host"]], key="runs_host")
status = cols[1].selectbox("Status", [c.ALL, *options["status"]], key="runs_status")
tag = cols[2].text_input("Tag (key=value)", key="runs_tag", placeholder="lr=3e-4")
text = cols[3].text_input("Command contains", key="runs_text", placeholder="train.py")
cols = st.columns([2, 2, 2, 3])
date_from = cols[0].date_input("From", value=None, key="runs_from")
date_to = cols[1].date_input("To", value=None, key="runs_to")
sort = cols[2].selectbox(
    "Sort by",
    agg.SORTABLE,
    index=agg.SORTABLE.index("started_at"),
    key="runs_sort",
    format_func=lambda col: agg.SORT_LABELS.get(col, col),
)
descending = cols[3].toggle("Descending", value=True, key="runs_desc")

tags: dict[str, str] = {}
if tag:
    key_, sep, value = tag.partition("=")
    if sep and key_.strip():
        tags[key_.strip()] = value.strip()
    else:
        st.warning("A tag filter is key=value, e.g. lr=3e-4; ignored.")

flt = c.shared_filter(
    host=None if host == c.ALL else host,
    status=None if status == c.ALL else status,
    tags=tags,
    text=text.strip() or None,
)
# The date range narrows the shared period (never widens it).
start = c.date_to_dt(date_from)
if start and (flt.since is None or start > flt.since):
    flt.since = start
flt.until = c.date_to_dt(date_to, end=True)
key = c.filter_key(flt)

# The page number: reset when the filter changes.
if st.session_state.get("_runs_key") != (key, sort, descending):
    st.session_state["_runs_key"] = (key, sort, descending)
    st.session_state["runs_page"] = 1
page_no = int(st.session_state.get("runs_page", 1))
rows, total = c.load_runs_page(url, key, sort, descending, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
pages = max(1, -(-total // PAGE_SIZE))
if page_no > pages:
    page_no = st.session_state["runs_page"] = pages
    rows, total = c.load_runs_page(url, key, sort, descending, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
st.caption(f"{total:,} runs match · page {page_no} of {pages}")

if rows:
    frame = pd.DataFrame(rows)
    frame.insert(0, "open", "./run?run=" + frame["run_id"])
    frame["run_id"] = frame["run_id"].str[:12]
    frame["gpus"] = [
        f"{n or 1}× {agg.short_gpu(m)}" if m else "CPU only"
        for m, n in zip(frame["gpu_model"], frame["gpu_count"], strict=True)
    ]
    # The columns a lab head reads first fit 1280 px; tags, host and command follow.
    c.show_table(
        frame,
        {
            "open": ("", "link"),
            "started_at": ("Started (UTC)", "datetime"),
            "project": ("Project", "text"),
            "user": ("User", "text"),
            "status": ("Status", "text"),
            "duration_s": ("Duration", "duration"),
            "gpus": ("GPUs", "text"),
            "facility_energy_kwh": ("Energy", "energy"),
            "co2_kg": ("CO2e", "co2"),
            "cost_usd": ("Cost", "usd"),
            "tags": ("Tags", "text"),
            "host": ("Host", "text"),
            "run_id": ("Run", "text"),
            "command": ("Command", "text"),
        },
        key="runs_table",
    )
else:
    st.info("No runs match these filters.")

cols = st.columns([2, 3, 5])
cols[0].number_input("Page", min_value=1, max_value=pages, step=1, key="runs_page")


def _csv() -> str:
    # Built only when the button is clicked: the full filtered set, straight from SQL.
    return agg.runs_csv(c.engine(url), c.from_key(key), sort=sort, descending=descending)


cols[1].download_button(
    f"CSV ({total:,} rows)",
    data=_csv,
    file_name="ecotrain-runs.csv",
    mime="text/csv",
    on_click="ignore",
    key="runs_csv",
    help="Every run matching the filters, all columns, full precision.",
    disabled=not total,
)
