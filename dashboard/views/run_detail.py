"""Run detail: one run's metadata, energy split, power timeline, accounting and checkpoints."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecotrain.dashboard import common as c
from ecotrain.efficiency import UNITS as WORK_UNITS
from ecotrain.efficiency import per_unit, unit_tag
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
    st.warning(c.md_text(str(e)))  # it quotes the id from the link
    st.stop()
run = detail["run"]

st.subheader(c.md_text(f"{run['project']} · {run['run_id'][:12]}"))
cols = st.columns(4)
cols[0].metric("Status", run["status"] or c.UNKNOWN)
cols[1].metric("Duration", c.fmt_duration(run["duration_s"]))
cols[2].metric("Energy (facility)", c.fmt_energy(run["facility_energy_kwh"]))
cols[3].metric("CO2e", c.fmt_co2(run["co2_kg"]))
cols = st.columns(4)
cols[0].metric("Cost", c.fmt_usd(run["cost_usd"]))
cols[1].metric("GPU-hours", c.fmt(run["gpu_hours"], "h") if run["gpu_model"] else "none (no GPU)")
cols[2].metric(
    "GPUs",
    f"{run['gpu_count'] or 1}× {agg.short_gpu(run['gpu_model'])}" if run["gpu_model"] else "none",
)
cols[3].metric(
    "Exit code",
    "none yet" if run["exit_code"] is None else str(run["exit_code"]),
    help="The training command's exit code (128+N: ended by signal N).",
)

# The time-resolved CO2e (an hourly grid series covered the run) and the figures per unit
# of work (tokens / samples the run reported), where the run has them: ecotrain.efficiency.
work = per_unit(run)
extra = []
if run.get("co2_series_kg") is not None:
    extra.append(
        (
            "CO2e (time-resolved)",
            c.fmt_co2(run["co2_series_kg"]),
            run.get("co2_series_method") or "from an hourly grid series",
        )
    )
for unit, (_, label) in WORK_UNITS.items():
    if unit in work:
        tag = unit_tag(unit)
        basis = f"{c.fmt_number(work[unit])} {unit} reported; {work['energy_basis']}"
        extra.append((f"Energy per {label}", c.fmt_energy(work[f"wh_per_{tag}"] / 1000), basis))
        extra.append((f"CO2e per {label}", c.fmt_co2(work[f"g_co2e_per_{tag}"] / 1000), basis))
if extra:
    for chunk in range(0, len(extra), 4):
        cols = st.columns(4)
        for col, (label, value, why) in zip(cols, extra[chunk : chunk + 4], strict=False):
            col.metric(label, value, help=why)

command = run["command"]
# st.code renders text, never Markdown: a command cannot inject links or images.
st.code(
    " ".join(map(str, command)) if isinstance(command, list) else str(command or ""),
    "bash",
    wrap_lines=True,
)
meta = {
    "run id": run["run_id"],
    "user": run["user"],
    "host": run["host"],
    "started (UTC)": str(run["started_at"])[:19],
    "ended (UTC)": str(run["ended_at"] or "not yet")[:19],
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
    c.show_table(
        pd.DataFrame({"field": list(meta), "value": [str(v or "—") for v in meta.values()]}),
        {"field": ("Field", "text"), "value": ("Value", "text")},
        key="detail_meta",
        static=True,
    )

with right:
    st.markdown("**Energy split (IT energy, before PUE)**")
    split = pd.DataFrame(
        [
            {
                "component": name.upper(),
                "kWh": (run[f"{name}_energy_j"] or 0) / 3.6e6,
                "method": run[f"{name}_method"] or "not measured",
            }
            for name in ("gpu", "cpu", "ram")
        ]
    )
    c.show_table(
        split,
        {
            "component": ("Component", "text"),
            "kWh": ("IT energy", "energy"),
            "method": ("How it was obtained", "text"),
        },
        key="detail_split",
    )
    st.markdown("**Accounting inputs used**")
    acct = pd.DataFrame(
        [
            {"input": "PUE", "value": c.fmt(run["pue"]), "source": run["pue_source"]},
            {
                "input": "grid intensity",
                "value": c.fmt(run["intensity_g_per_kwh"], "g/kWh")
                + f" ({run['region'] or c.UNKNOWN})",
                "source": run["intensity_source"],
            },
            {
                "input": f"price ({run['cost_method'] or c.UNKNOWN})",
                "value": c.fmt(
                    run["price"], "$/GPU-h" if run["cost_method"] == "gpu_hour" else "$/kWh"
                ),
                "source": run["price_source"],
            },
        ]
    )
    c.show_table(
        acct,
        {"input": ("Input", "text"), "value": ("Value", "text"), "source": ("Source", "text")},
        key="detail_acct",
        static=True,
    )

st.markdown("**Power timeline**")
samples = detail["samples"]
if samples:
    timeline = pd.DataFrame(samples).set_index("t_s")
    timeline.columns = ["GPU W", "CPU W", "RAM W"]
    timeline = timeline.loc[:, (timeline != 0).any()]  # a component never sampled: no line
    st.line_chart(timeline, height=260, x_label="seconds since start", y_label="W")
    if detail.get("trimmed"):
        st.caption(
            "The sampler's last tick, after the command's processes had exited, read 0 W; "
            "it carries no energy and is not drawn."
        )
else:
    st.caption("No power samples recorded for this run.")

st.markdown("**Checkpoints**")
links = detail["checkpoints"]
if links:
    frame = pd.DataFrame(links)
    frame.insert(0, "open", "./checkpoints?ckpt=" + frame["checkpoint_id"])
    frame["footprint_source"] = frame["footprint_source"].fillna("none stated")
    frame["checkpoint"] = [
        n or agg.short_id(i) for n, i in zip(frame["name"], frame["checkpoint_id"], strict=True)
    ]
    c.show_table(
        frame,
        {
            "open": ("", "link"),
            "role": ("Role", "text"),
            "checkpoint": ("Checkpoint", "text"),
            "footprint_source": ("Footprint from", "text"),
            "times_reused": ("Reused by (runs)", "int"),
            "path": ("Path", "text"),
            "detected_by": ("Detected by", "text"),
        },
        key="detail_ckpts",
    )
else:
    st.caption("This run consumed and produced no known checkpoint.")

if run["notes"]:
    with st.expander("Notes"):
        # st.text, not st.markdown: a note comes from the run (its command, its files) and
        # must never render as a link or an image a viewer's browser would fetch.
        for note in run["notes"]:
            st.text(f"• {note}")
