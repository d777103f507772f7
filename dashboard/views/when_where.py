"""When & where: the lab's emissions by hour of day against the grid's intensity by hour,
and carbon-aware advice for the biggest projects (ecotrain.advise, over imported series)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecotrain import advise as adv
from ecotrain.dashboard import common as c

st.title("When & where")
url = c.db_url()
c.require_data(url)
key = c.filter_key(c.shared_filter())


@st.cache_data(ttl=c.TTL_S, show_spinner=False)
def _load(url: str, key: c.FilterKey) -> dict:
    from sqlalchemy import inspect

    from ecotrain.grid_series import list_series

    eng = c.engine(url)
    if not inspect(eng).has_table("grid_series"):
        return {"old": True}
    return {
        "by_hour": adv.emissions_by_hour(eng, c.from_key(key)),
        "series": [
            {k: r[k] for k in ("zone", "signal", "region", "source", "licence", "points")}
            for r in list_series(eng)
        ],
    }


@st.cache_data(ttl=c.TTL_S, show_spinner=False)
def _grid(url: str, zone: str, signal: str) -> list[dict]:
    from ecotrain.grid_series import load_series

    series = load_series(c.engine(url), zone, signal)
    return adv.intensity_by_hour(series) if series else []


@st.cache_data(ttl=c.TTL_S, show_spinner=False)
def _advice(url: str, key: c.FilterKey) -> list[dict]:
    from ecotrain.config import load_settings

    sites = adv.sites_from_settings(load_settings().flat())
    return adv.biggest_projects_advice(c.engine(url), c.from_key(key), sites)


data = _load(url, key)
if data.get("old"):
    st.info("This database predates grid series: run `ecotrain db upgrade` on it.")
    st.stop()

st.subheader("Emissions by hour of day (UTC)")
hours = pd.DataFrame(data["by_hour"]).set_index("hour")
series = data["series"]
choices = [f"{s['zone']} · {s['signal']}" for s in series]
picked = st.selectbox("Grid intensity series", choices, key="ww_series") if choices else None
if picked:
    zone, signal = picked.split(" · ")
    grid = pd.DataFrame(_grid(url, zone, signal))
    if not grid.empty:
        hours = hours.join(grid.set_index("hour"))
left, right = st.columns(2)
left.bar_chart(hours[["co2_kg"]], height=260, y_label="kg CO2e (annual basis)")
if "g_per_kwh" in hours:
    right.line_chart(hours[["g_per_kwh"]], height=260, y_label="grid g CO2e/kWh")
    chosen = next(s for s in series if f"{s['zone']} · {s['signal']}" == picked)
    right.caption(f"Source: {chosen['source']}; licence: {chosen['licence']}")
else:
    right.info("No grid series imported yet: `ecotrain grid import FILE` (Electricity Maps, "
               "ENTSO-E, EIA, WattTime or timestamp,zone,g_per_kwh CSVs).")  # fmt: skip
st.dataframe(hours.reset_index(), hide_index=True, key="ww_hours")

st.subheader("Advice for the biggest projects")
rows = _advice(url, key)
if rows:
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="ww_advice",
        column_config={
            "project_co2_kg": st.column_config.NumberColumn("project kg CO2e", format="%.2f"),
            "run_co2_kg": st.column_config.NumberColumn("largest run kg", format="%.2f"),
            "best_hour_change_pct": st.column_config.NumberColumn("hour Δ %", format="%+.0f"),
            "best_day_change_pct": st.column_config.NumberColumn("day Δ %", format="%+.0f"),
            "best_site_co2_kg": st.column_config.NumberColumn("best site kg", format="%.2f"),
        },
    )
else:
    st.info("No runs with recorded energy in this period.")
st.caption(adv.FLEXIBILITY + " Hours are UTC. Each project's largest run is replayed at every "
           "start the series allows (`ecotrain advise RUN` for the full advice); other sites "
           "come from [site.NAME] tables in config.")  # fmt: skip
