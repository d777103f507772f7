"""Breakdowns: the period's totals by project, user, GPU model and region."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecotrain.dashboard import common as c

DIMENSIONS = {"project": "Project", "user": "User", "gpu_model": "GPU model", "region": "Region"}

st.title("Breakdowns")
url = c.db_url()
c.require_data(url)
key = c.filter_key(c.shared_filter())

by = (
    st.segmented_control(
        "Break down by",
        list(DIMENSIONS),
        default="project",
        format_func=DIMENSIONS.__getitem__,
        key="bd_by",
    )
    or "project"
)
rows = c.load_breakdown(url, key, by)
if not rows:
    st.info("No runs in this period.")
    st.stop()
frame = pd.DataFrame(rows)
MEASURES = {"co2_kg": ("CO2e", "co2"), "energy_kwh": ("Energy", "energy"),
            "cost_usd": ("Cost", "usd"), "gpu_hours": ("GPU-hours", "number")}  # fmt: skip
measure = (
    st.segmented_control(
        "Bars show",
        list(MEASURES),
        default="co2_kg",
        format_func=lambda m: MEASURES[m][0],
        key="bd_measure",
    )  # fmt: skip
    or "co2_kg"
)
shown = frame.sort_values(measure, ascending=False).head(30)
c.bar_chart(shown, by, measure, *MEASURES[measure])
if len(frame) > len(shown):
    st.caption(f"The {len(shown)} largest of {len(frame):,}; the table lists all.")
c.show_table(
    frame,
    {
        by: (DIMENSIONS[by], "text"),
        "runs": ("Runs", "int"),
        "energy_kwh": ("Energy (facility)", "energy"),
        "co2_kg": ("CO2e", "co2"),
        "cost_usd": ("Cost", "usd"),
        "gpu_hours": ("GPU-h", "number"),
        "cost_per_gpu_hour": ("$ per GPU-h", "usd"),
        "co2_per_kwh_g": ("g CO2e per kWh", "number"),
    },
    key="bd_table",
)
st.caption(
    "$ per GPU-hour = total cost / GPU-hours of the group; g CO2e per kWh = CO2e / facility "
    "energy (the group's effective grid intensity). The table is sorted by CO2e; click a "
    "column header to sort by it."
)
