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
frame = pd.DataFrame(rows)[
    [
        by,
        "runs",
        "energy_kwh",
        "co2_kg",
        "cost_usd",
        "gpu_hours",
        "cost_per_gpu_hour",
        "co2_per_kwh_g",
    ]
]
st.bar_chart(
    frame.head(20).set_index(by)[["co2_kg"]], height=280, y_label="kg CO2e", horizontal=True
)
st.dataframe(
    frame,
    hide_index=True,
    key="bd_table",
    column_config={
        by: DIMENSIONS[by],
        "energy_kwh": st.column_config.NumberColumn("kWh (facility)", format="%.1f"),
        "co2_kg": st.column_config.NumberColumn("CO2e kg", format="%.1f"),
        "cost_usd": st.column_config.NumberColumn("cost", format="$%.2f"),
        "gpu_hours": st.column_config.NumberColumn("GPU-h", format="%.1f"),
        "cost_per_gpu_hour": st.column_config.NumberColumn("$ per GPU-h", format="$%.3f"),
        "co2_per_kwh_g": st.column_config.NumberColumn("g CO2e per kWh", format="%.0f"),
    },
)
st.caption(
    "$ per GPU-hour = total cost / GPU-hours of the group; g CO2e per kWh = CO2e / facility "
    "energy (the group's effective grid intensity). Sorted by CO2e."
)
