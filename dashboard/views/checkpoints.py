"""Checkpoints & savings: footprints, reuse, what reuse avoided, and the lineage DAG."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecotrain.dashboard import common as c
from ecotrain.store import aggregates as agg

PAGE_SIZE = 25
MODES = {
    "reproduce": "reproduce: its GPU-hours re-priced at the reusing site",
    "as-published": "as-published: the footprint as stated by its source",
    "none": "none: count no avoided cost",
}

st.title("Checkpoints & savings")
url = c.db_url()
c.require_data(url)
flt = c.shared_filter()
key = c.filter_key(flt)

# -- avoided, under an explicit counterfactual ------------------------------------------------
st.subheader("Avoided by reuse")
mode = st.radio(
    "Counterfactual", list(MODES), format_func=MODES.__getitem__, horizontal=True, key="ck_mode"
)
savings = c.savings_module()
if savings is None:
    st.info(
        "The savings module (ecotrain.savings) is not installed: avoided energy, CO2e and "
        "cost cannot be computed. Checkpoints and lineage below come straight from the store."
    )
else:
    avoided = c.load_avoided(url, key, mode)
    total = c.avoided_totals(avoided)
    cols = st.columns(4)
    cols[0].metric("Checkpoints reused", f"{len(avoided):,}")
    cols[1].metric("Avoided energy", c.fmt(total["energy_kwh"], "kWh"))
    cols[2].metric("Avoided CO2e", c.fmt_co2(total["co2_kg"]))
    cols[3].metric("Avoided cost", c.fmt_usd(total["cost_usd"]))
    st.caption(
        "Reported separately, never subtracted from emissions. A checkpoint's retraining is "
        "avoided once in the scope viewed, however many runs reused it."
    )
    if avoided:
        frame = pd.DataFrame(
            [
                {
                    "open": f"./checkpoints?ckpt={a['checkpoint_id']}",
                    "checkpoint": a["name"] or agg.short_id(a["checkpoint_id"]),
                    "source": (a.get("footprint") or {}).get("source"),
                    "reused by (runs)": a["reuses"],
                    "avoided kWh": a["energy_kwh"],
                    "avoided CO2e kg": a["co2_kg"],
                    "avoided $": a["cost_usd"],
                    "assumption": a["assumption"],
                }
                for a in avoided
            ]
        )
        st.dataframe(
            frame,
            hide_index=True,
            key="ck_avoided",
            column_config={
                "open": st.column_config.LinkColumn("", display_text="open"),
                # %g, not a fixed precision: a small run's avoided 5e-06 kWh is not "0.0".
                "avoided kWh": st.column_config.NumberColumn(format="%.3g"),
                "avoided CO2e kg": st.column_config.NumberColumn(format="%.3g"),
                "avoided $": st.column_config.NumberColumn(format="$%.3g"),
            },
        )

# -- the checkpoints table --------------------------------------------------------------------
st.subheader("Checkpoints")
cols = st.columns([4, 1])
search = cols[0].text_input("Search name or id", key="ck_search").strip() or None
if st.session_state.get("_ck_key") != (key, search):
    st.session_state["_ck_key"] = (key, search)
    st.session_state["ck_page"] = 1
page_no = int(st.session_state.get("ck_page", 1))
rows, count = c.load_checkpoints(url, key, search, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
pages = max(1, -(-count // PAGE_SIZE))
cols[1].number_input("Page", min_value=1, max_value=pages, step=1, key="ck_page")
st.caption(
    f"{count:,} checkpoints · times reused counts runs in the selected period and scope; "
    "stated footprints (registered, model card, catalogue) are shown as stored."
)
if rows:
    frame = pd.DataFrame(rows)
    frame.insert(0, "open", "./checkpoints?ckpt=" + frame["checkpoint_id"])
    frame["checkpoint_id"] = frame["checkpoint_id"].map(agg.short_id)
    st.dataframe(
        frame,
        hide_index=True,
        key="ck_table",
        column_config={
            "open": st.column_config.LinkColumn("", display_text="open"),
            "fp_gpu_hours": st.column_config.NumberColumn("stated GPU-h", format="%.1f"),
            "fp_energy_kwh": st.column_config.NumberColumn("stated kWh", format="%.1f"),
            "fp_co2_kg": st.column_config.NumberColumn("stated CO2e kg", format="%.1f"),
            "fp_cost_usd": st.column_config.NumberColumn("stated $", format="$%.2f"),
        },
    )
else:
    st.caption("No checkpoints recorded yet.")

# -- one checkpoint, and the lineage DAG ------------------------------------------------------
if "ck_focus" not in st.session_state:
    st.session_state["ck_focus"] = st.query_params.get("ckpt", "")
focus = st.text_input("Checkpoint id (from a link, or paste one)", key="ck_focus").strip()
if focus:
    st.query_params["ckpt"] = focus
elif "ckpt" in st.query_params:
    del st.query_params["ckpt"]

if focus:
    names = c.load_names(url, (focus,))
    st.subheader(names.get(focus, focus))
    st.caption(focus)
    fp = c.load_footprint(url, focus)
    if savings is None:
        st.caption("Footprint: the savings module is not installed.")
    elif fp is None:
        st.caption("Footprint unknown (not recorded, no model card, not in the catalogue).")
    else:
        cols = st.columns(4)
        cols[0].metric("Footprint energy", c.fmt(fp["energy_kwh"], "kWh"))
        cols[1].metric("Footprint CO2e", c.fmt_co2(fp["co2_kg"]))
        cols[2].metric("Footprint cost", c.fmt_usd(fp["cost_usd"]))
        cols[3].metric("GPU-hours", c.fmt(fp["gpu_hours"], "h"))
        st.caption(
            f"Source: {fp['source']}"
            + (f" — {fp['citation']}" if fp.get("citation") else "")
            + f" · PUE {c.fmt(fp['pue'], '', 2)}"
            + f" · intensity {c.fmt(fp['intensity_g_per_kwh'], 'g/kWh', 0)}"
        )
    linked = c.load_checkpoint_runs(url, focus)
    if linked:
        frame = pd.DataFrame(linked)
        frame.insert(0, "open", "./run?run=" + frame["run_id"])
        frame["run_id"] = frame["run_id"].str[:12]
        st.dataframe(
            frame,
            hide_index=True,
            key="ck_runs",
            column_config={"open": st.column_config.LinkColumn("", display_text="open")},
        )

st.subheader("Lineage")
edges = c.load_lineage(url)
shown = agg.neighbourhood(edges, focus or None)
if shown or focus:
    ids = sorted(
        {n for e in shown for n in (e["parent"], e["child"])} | ({focus} if focus else set())
    )
    names = c.load_names(url, tuple(ids))
    st.graphviz_chart(agg.lineage_dot(shown, names, focus or None, [focus] if focus else None))
    st.caption(
        "An arrow: runs consumed the left checkpoint and produced the right one."
        + (
            ""
            if focus
            else " Showing the most-travelled part of the graph; pick a checkpoint to centre it."
        )
    )
else:
    st.caption("No lineage yet: no run both consumed and produced a checkpoint.")
