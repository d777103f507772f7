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
    c.fmt_energy(now["energy_kwh"]),
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
    ratio = c.ratio_text(avoided["co2_kg"], now["co2_kg"], at_least=bool(avoided["unknown"]))
    avoided_before = (
        c.avoided_totals(c.load_avoided(url, c.filter_key(prev), "reproduce")) if prev else None
    )

    def _delta(name: str) -> str | None:
        # A change is only stated between two complete figures (a lower bound moves with
        # what is registered, not with what reuse saved).
        if avoided["unknown"] or not avoided_before or avoided_before["unknown"]:
            return None
        return c.delta(avoided[name], avoided_before[name])

    cols = st.columns(4)
    cols[0].metric(
        "Avoided CO2e (reuse)",
        c.fmt_avoided(avoided, "co2_kg"),
        _delta("co2_kg"),
        help="Retraining the reused checkpoints (mode: reproduce). Reported separately, "
        "never netted against the emissions above.",
    )
    cols[1].metric("Avoided cost (reuse)", c.fmt_avoided(avoided, "cost_usd"), _delta("cost_usd"))
    cols[2].metric("Avoided energy (reuse)", c.fmt_avoided(avoided, "energy_kwh"))
    cols[3].metric(
        "Avoided ÷ emitted CO2e",
        ratio,
        help="Avoided CO2e (retraining the reused checkpoints) divided by the CO2e these runs "
        "emitted: 3× means reuse spared three times what the runs themselves cost.",
    )
    note = c.unknown_note(avoided)
    if note:
        st.caption(note)

st.subheader("Weekly trend")
trend = c.load_trend(url, c.filter_key(flt))
MEASURES = {"co2_kg": ("CO2e", "co2"), "energy_kwh": ("Energy", "energy"),
            "cost_usd": ("Cost", "usd"), "gpu_hours": ("GPU-hours", "number")}  # fmt: skip
measure = (
    st.segmented_control(
        "Measure",
        list(MEASURES),
        default="co2_kg",
        format_func=lambda m: MEASURES[m][0],
        key="overview_measure",
        label_visibility="collapsed",
    )
    or "co2_kg"
)
if trend:
    c.bar_chart(pd.DataFrame(trend), "week", measure, *MEASURES[measure], horizontal=False)
else:
    st.caption("No runs in this period.")

TOP = {
    "runs": ("Runs", "int"),
    "energy_kwh": ("Energy", "energy"),
    "co2_kg": ("CO2e", "co2"),
    "cost_usd": ("Cost", "usd"),
}  # GPU-hours: on Breakdowns (half a page width holds these five columns whole)
left, right = st.columns(2)
for col, by, title in ((left, "project", "Top projects"), (right, "user", "Top users")):
    rows = c.load_breakdown(url, c.filter_key(flt), by, 10)
    with col:
        st.subheader(title)
        if rows:
            c.show_table(rows, {by: (by.capitalize(), "text"), **TOP}, key=f"top_{by}")
        else:
            st.caption("No runs in this period.")
