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
    # Largest first: "what did reuse save" is answered by the top rows.
    avoided.sort(key=lambda a: (-(a["co2_kg"] or 0.0), -(a["energy_kwh"] or 0.0)))
    total = c.avoided_totals(avoided)
    emitted = c.load_totals(url, key)
    at_least = bool(total["unknown"])
    cols = st.columns(4)
    cols[0].metric("Avoided CO2e", c.fmt_avoided(total, "co2_kg"))
    cols[1].metric("Avoided energy", c.fmt_avoided(total, "energy_kwh"))
    cols[2].metric("Avoided cost", c.fmt_avoided(total, "cost_usd"))
    cols[3].metric(
        "Avoided ÷ emitted CO2e",
        c.ratio_text(total["co2_kg"], emitted["co2_kg"], at_least=at_least),
        help="What retraining the reused checkpoints would have emitted, divided by what the "
        "runs in view emitted.",
    )
    spared = (
        "an unknown amount of"
        if total["co2_kg"] is None
        else f"{'at least ' if at_least else ''}{c.fmt_co2(total['co2_kg'])}"
    )
    st.caption(
        f"{len(avoided):,} reused checkpoint{'s' if len(avoided) != 1 else ''}. Reusing "
        f"{'it' if len(avoided) == 1 else 'them'} spared {spared} CO2e against "
        f"{c.fmt_co2(emitted['co2_kg'])} the runs in view emitted themselves. Reported "
        "separately, never subtracted from emissions; a "
        "checkpoint's retraining is avoided once in the scope viewed, however many runs "
        "reused it."
    )
    note = c.unknown_note(total)
    if note:
        st.caption(note)
    if avoided:
        frame = pd.DataFrame(
            [
                {
                    "open": f"./checkpoints?ckpt={a['checkpoint_id']}",
                    "checkpoint": a["name"] or agg.short_id(a["checkpoint_id"]),
                    "source": (a.get("footprint") or {}).get("source"),
                    "reuses": a["reuses"],
                    "co2_kg": a["co2_kg"],
                    "energy_kwh": a["energy_kwh"],
                    "cost_usd": a["cost_usd"],
                    "assumption": a["assumption"],
                }
                for a in avoided
            ]
        )
        c.show_table(
            frame,
            {
                "open": ("", "link"),
                "checkpoint": ("Checkpoint", "text"),
                "co2_kg": ("Avoided CO2e", "co2"),
                "energy_kwh": ("Avoided energy", "energy"),
                "cost_usd": ("Avoided cost", "usd"),
                "reuses": ("Reused by (runs)", "int"),
                "source": ("Footprint from", "text"),
                "assumption": ("Assumption", "text"),
            },
            key="ck_avoided",
            height=min(400, 38 + 35 * len(frame)),
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
    # No stated footprint is not an unknown one: recorded runs may have produced it.
    frame["footprint_source"] = frame["footprint_source"].fillna("none stated")
    c.show_table(
        frame,
        {
            "open": ("", "link"),
            "name": ("Name", "text"),
            "times_reused": ("Reused by (runs)", "int"),
            "produced_by": ("Produced by (runs)", "int"),
            "footprint_source": ("Stated footprint from", "text"),
            "fp_co2_kg": ("Stated CO2e", "co2"),
            "fp_energy_kwh": ("Stated energy", "energy"),
            "fp_gpu_hours": ("Stated GPU-h", "number"),
            "fp_cost_usd": ("Stated cost", "usd"),
            "hf_repo": ("Hugging Face repo", "text"),
            "checkpoint_id": ("Id", "text"),
        },
        key="ck_table",
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
    st.subheader(c.md_text(names.get(focus, focus)))  # stored names are text, not Markdown
    st.caption(c.md_text(focus))
    fp = c.load_footprint(url, focus)
    if savings is None:
        st.caption("Footprint: the savings module is not installed.")
    elif fp is None:
        st.caption("Footprint unknown (not recorded, no model card, not in the catalogue).")
    else:
        cols = st.columns(4)
        cols[0].metric("Footprint energy", c.fmt_energy(fp["energy_kwh"]))
        cols[1].metric("Footprint CO2e", c.fmt_co2(fp["co2_kg"]))
        cols[2].metric("Footprint cost", c.fmt_usd(fp["cost_usd"]))
        cols[3].metric("GPU-hours", c.fmt(fp["gpu_hours"], "h"))
        # st.text: source and citation are stored data, shown as text (never Markdown).
        st.text(
            f"Source: {fp['source']}"
            + (f" — {fp['citation']}" if fp.get("citation") else "")
            + f" · PUE {c.fmt(fp['pue'])}"
            + f" · intensity {c.fmt(fp['intensity_g_per_kwh'], 'g/kWh')}"
        )
    linked = c.load_checkpoint_runs(url, focus)
    if linked:
        frame = pd.DataFrame(linked)
        frame.insert(0, "open", "./run?run=" + frame["run_id"])
        frame["run_id"] = frame["run_id"].str[:12]
        c.show_table(
            frame,
            {
                "open": ("", "link"),
                "role": ("Role", "text"),
                "project": ("Project", "text"),
                "user": ("User", "text"),
                "started_at": ("Started (UTC)", "datetime"),
                "facility_energy_kwh": ("Energy", "energy"),
                "co2_kg": ("CO2e", "co2"),
                "run_id": ("Run", "text"),
            },
            key="ck_runs",
        )

st.subheader("Lineage")
edges = c.load_lineage(url)
top_k = st.select_slider(
    "Checkpoints drawn", options=[5, 10, 20, 40], value=10, key="ck_topk",
    help="The graph keeps the most-travelled edges (most runs) up to this many checkpoints, "
    "so a lab-scale lineage stays readable; pick a checkpoint above to centre it.",
)  # fmt: skip
shown = agg.neighbourhood(edges, focus or None, max_nodes=top_k, max_edges=2 * top_k)
if shown or focus:
    ids = sorted(
        {n for e in shown for n in (e["parent"], e["child"])} | ({focus} if focus else set())
    )
    all_nodes = {n for e in edges for n in (e["parent"], e["child"])}
    names = c.load_names(url, tuple(ids))
    st.graphviz_chart(agg.lineage_dot(shown, names, focus or None, [focus] if focus else None))
    st.caption(
        "An arrow goes from a checkpoint runs read to the one they wrote (labelled with how "
        "many runs). "
        f"Showing {len(ids):,} of {len(all_nodes):,} checkpoints in the lineage"
        + (" around the one picked." if focus else ", the most-travelled part of the graph.")
    )
else:
    st.caption("No lineage yet: no run both consumed and produced a checkpoint.")
