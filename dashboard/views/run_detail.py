"""Run detail: one run's metadata, energy split, power timeline, accounting and checkpoints."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecotrain.dashboard import common as c
from ecotrain.store import aggregates as agg
from ecotrain.store.queries import RunNotFound

st.title("Run detail")
url = c.db_url()
c.require_data(url)

# The run comes from the link (?run=…) or the box; the box writes it back into the URL.
if "detail_run" not in st.session_state:
    st.session_state["detail_run"] = st.query_params.get("run", "")
if not st.session_state["detail_run"]:
    latest, _ = c.load_runs_page(url, c.filter_key(c.shared_filter()), "started_at", True, 1, 0)
    if latest:
        st.session_state["detail_run"] = latest[0]["run_id"]
run_id = st.text_input("Run id (or a unique prefix)", key="detail_run").strip()
if not run_id:
    st.info("No run in the selected period; enter a run id.")
    st.stop()
st.query_params["run"] = run_id

try:
    detail = c.load_run_detail(url, run_id)
except RunNotFound as e:
    st.warning(str(e))
    st.stop()
run = detail["run"]

st.subheader(f"{run['project']} · {run['run_id'][:12]}")
cols = st.columns(4)
cols[0].metric("Status", run["status"] or "—")
cols[1].metric("Duration", c.fmt((run["duration_s"] or 0) / 3600, "h", 2))
cols[2].metric("Energy (facility)", c.fmt(run["facility_energy_kwh"], "kWh", 3))
cols[3].metric("CO2e", c.fmt_co2(run["co2_kg"]))
cols = st.columns(4)
cols[0].metric("Cost", c.fmt_usd(run["cost_usd"]))
cols[1].metric("GPU-hours", c.fmt(run["gpu_hours"], "h", 2))
cols[2].metric("GPUs", f"{run['gpu_count'] or 0} × {run['gpu_model'] or '—'}")
cols[3].metric("Exit code", "—" if run["exit_code"] is None else str(run["exit_code"]))

command = run["command"]
st.code(" ".join(map(str, command)) if isinstance(command, list) else str(command or ""), "bash")
meta = {
    "run id": run["run_id"],
    "user": run["user"],
    "host": run["host"],
    "started (UTC)": str(run["started_at"]),
    "ended (UTC)": str(run["ended_at"] or "—"),
    "job / rank": f"{run['job_id'] or '—'} / {'—' if run['rank'] is None else run['rank']}",
    "git": f"{run['git_commit'] or '—'}{' (dirty)' if run['git_dirty'] else ''}",
    "cwd": run["cwd"],
    "tags": ", ".join(f"{k}={v}" for k, v in (run["tags"] or {}).items()) or "—",
    "end reason": run["end_reason"] or "—",
    "CPU": f"{run['cpu_model'] or '—'} ({run['cpu_count'] or '?'} cores)",
    "ecotrain / data version": f"{run['ecotrain_version'] or '—'} / {run['data_version'] or '—'}",
}
left, right = st.columns(2)
with left:
    st.markdown("**Metadata**")
    st.dataframe(
        pd.DataFrame({"field": list(meta), "value": [str(v or "—") for v in meta.values()]}),
        hide_index=True,
        key="detail_meta",
    )

with right:
    st.markdown("**Energy split (IT energy, before PUE)**")
    split = pd.DataFrame(
        [
            {
                "component": name.upper(),
                "kWh": (run[f"{name}_energy_j"] or 0) / 3.6e6,
                "method": run[f"{name}_method"] or "none",
            }
            for name in ("gpu", "cpu", "ram")
        ]
    )
    st.dataframe(
        split,
        hide_index=True,
        key="detail_split",
        column_config={"kWh": st.column_config.NumberColumn(format="%.4f")},
    )
    st.markdown("**Accounting inputs used**")
    acct = pd.DataFrame(
        [
            {"input": "PUE", "value": c.fmt(run["pue"], "", 2), "source": run["pue_source"]},
            {
                "input": "grid intensity",
                "value": c.fmt(run["intensity_g_per_kwh"], "g/kWh", 0)
                + f" ({run['region'] or '?'})",
                "source": run["intensity_source"],
            },
            {
                "input": f"price ({run['cost_method'] or '—'})",
                "value": c.fmt(
                    run["price"], "$/GPU-h" if run["cost_method"] == "gpu_hour" else "$/kWh", 3
                ),
                "source": run["price_source"],
            },
        ]
    )
    st.dataframe(acct, hide_index=True, key="detail_acct")

st.markdown("**Power timeline**")
samples = detail["samples"]
if samples:
    timeline = pd.DataFrame(samples).set_index("t_s")
    timeline.columns = ["GPU W", "CPU W", "RAM W"]
    st.line_chart(timeline, height=260, x_label="seconds since start", y_label="W")
else:
    st.caption("No power samples recorded for this run.")

st.markdown("**Checkpoints**")
links = detail["checkpoints"]
if links:
    frame = pd.DataFrame(links)
    frame.insert(0, "open", "./checkpoints?ckpt=" + frame["checkpoint_id"])
    frame["checkpoint"] = [
        n or agg.short_id(i) for n, i in zip(frame["name"], frame["checkpoint_id"], strict=True)
    ]
    st.dataframe(
        frame[
            [
                "open",
                "role",
                "checkpoint",
                "footprint_source",
                "times_reused",
                "path",
                "detected_by",
            ]
        ],
        hide_index=True,
        key="detail_ckpts",
        column_config={"open": st.column_config.LinkColumn("", display_text="open")},
    )
else:
    st.caption("This run consumed and produced no known checkpoint.")

if run["notes"]:
    with st.expander("Notes"):
        for note in run["notes"]:
            st.markdown(f"- {note}")
