"""Overview: where the lab's energy, carbon and money went, and what reuse avoided."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecotrain.dashboard import common as c

st.title("Overview")
url = c.db_url()
c.require_data(url)

flt = c.shared_filter()
prev = c.previous_filter(flt)
now = c.load_totals(url, c.filter_key(flt))
before = c.load_totals(url, c.filter_key(prev)) if prev else None


def _b(name: str) -> float | None:
    return before[name] if before else None


st.caption(
    f"{c.PERIOD_LABELS[st.session_state['f_period']]} · {now['runs']:,} runs"
    + (f" (previous period: {before['runs']:,})" if before else "")
)
cols = st.columns(4)
# More energy, carbon or money than before is shown red ("inverse").
cols[0].metric(
    "Energy (facility)",
    c.fmt(now["energy_kwh"], "kWh"),
    c.delta(now["energy_kwh"], _b("energy_kwh")),
    delta_color="inverse",
    help="IT energy (GPU + CPU + RAM) x PUE",
)
cols[1].metric(
    "CO2e",
    c.fmt_co2(now["co2_kg"]),
    c.delta(now["co2_kg"], _b("co2_kg")),
    delta_color="inverse",
    help="facility energy x location-based grid intensity of each run's region",
)
cols[2].metric(
    "Cost",
    c.fmt_usd(now["cost_usd"]),
    c.delta(now["cost_usd"], _b("cost_usd")),
    delta_color="inverse",
)
cols[3].metric(
    "GPU-hours",
    c.fmt(now["gpu_hours"], "h"),
    c.delta(now["gpu_hours"], _b("gpu_hours")),
    delta_color="off",
)

# Avoided figures: reported on their own row, never subtracted from the totals above.
savings = c.savings_module()
if savings is None:
    st.info("Avoided CO2e and cost: the savings module (ecotrain.savings) is not installed.")
else:
    avoided = c.avoided_totals(c.load_avoided(url, c.filter_key(flt), "reproduce"))
    avoided_before = (
        c.avoided_totals(c.load_avoided(url, c.filter_key(prev), "reproduce")) if prev else None
    )
    cols = st.columns(4)
    cols[0].metric(
        "Avoided CO2e (reuse)",
        c.fmt_co2(avoided["co2_kg"]),
        c.delta(avoided["co2_kg"], avoided_before["co2_kg"] if avoided_before else None),
        help="Retraining the reused checkpoints (mode: reproduce). Reported separately, "
        "never netted against the emissions above.",
    )
    cols[1].metric(
        "Avoided cost (reuse)",
        c.fmt_usd(avoided["cost_usd"]),
        c.delta(avoided["cost_usd"], avoided_before["cost_usd"] if avoided_before else None),
    )
    cols[2].metric("Avoided energy (reuse)", c.fmt(avoided["energy_kwh"], "kWh"))

st.subheader("Weekly trend")
trend = c.load_trend(url, c.filter_key(flt))
measure = st.segmented_control(
    "Measure",
    ["co2_kg", "energy_kwh", "cost_usd", "gpu_hours"],
    default="co2_kg",
    format_func={
        "co2_kg": "CO2e (kg)",
        "energy_kwh": "Energy (kWh)",
        "cost_usd": "Cost ($)",
        "gpu_hours": "GPU-hours",
    }.__getitem__,
    key="overview_measure",
    label_visibility="collapsed",
)
if trend:
    frame = pd.DataFrame(trend).set_index("week")
    st.bar_chart(frame[[measure or "co2_kg"]], height=260)
else:
    st.caption("No runs in this period.")

left, right = st.columns(2)
for col, by, title in ((left, "project", "Top projects"), (right, "user", "Top users")):
    rows = c.load_breakdown(url, c.filter_key(flt), by, 10)
    with col:
        st.subheader(title)
        if rows:
            st.dataframe(
                pd.DataFrame(rows)[[by, "runs", "energy_kwh", "co2_kg", "cost_usd", "gpu_hours"]],
                hide_index=True,
                column_config={
                    "energy_kwh": st.column_config.NumberColumn("kWh", format="%.1f"),
                    "co2_kg": st.column_config.NumberColumn("CO2e kg", format="%.1f"),
                    "cost_usd": st.column_config.NumberColumn("Cost", format="$%.2f"),
                    "gpu_hours": st.column_config.NumberColumn("GPU-h", format="%.1f"),
                },
                key=f"top_{by}",
            )
        else:
            st.caption("No runs in this period.")
