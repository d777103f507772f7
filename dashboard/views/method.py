"""Method: how every number is computed, the defaults in force, data sources and versions.

The defaults come from the settings layers as the accounting resolves them (the values a
new run would get), and the inputs from the runs themselves; nothing shown is a raw `None`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ecotrain.dashboard import common as c

st.title("Method")
url = c.db_url()

st.markdown(
    """
**Energy.** IT energy = GPU + CPU + RAM, each tagged with how it was obtained: *measured*
(NVML energy counter, RAPL), *integrated* (NVML power samples), *modelled* (CPU TDP ×
utilisation, RAM by resident memory) or *replayed* (a recorded power trace).
**Facility energy** = IT energy × PUE (the data centre's overhead: cooling, power supply).
**CO2e** = facility energy × the location-based grid carbon intensity of the run's region.
**Cost** = facility kWh × $/kWh (electricity) or GPU-hours × $/GPU-hour (cloud), one method
per site. Every run keeps the inputs it was accounted with, so the totals here are sums of
stored per-run figures.

**Avoided by reuse** is what producing a reused checkpoint again would have cost, under a
named counterfactual (*reproduce*: its GPU-hours re-priced at the reusing site; *as-published*:
the footprint its source states; *none*). It is reported beside emissions and never
subtracted. **Change vs previous period** compares with the window of the same length just
before the selected one. Weeks start on Monday (UTC).
"""
)

st.subheader("Defaults for new runs")
st.caption(
    "What a run recorded now on this machine is accounted with, unless its own options or "
    "configuration say otherwise."
)
try:
    from ecotrain.accounting import site_from_settings
    from ecotrain.config import load_settings

    settings = load_settings()
    site = site_from_settings(settings.flat())
    origin = settings.origins
    intensity = site.intensity
    if site.price is not None:
        unit = "$/GPU-hour" if site.cost_method == "gpu_hour" else "$/kWh"
        price = f"{c.fmt_number(site.price)} {unit}"
    else:
        price = "from the price table, by each run's GPU"
    rows = [
        {"input": "PUE", "value": c.fmt_number(site.pue), "source": site.pue_source,
         "set by": origin.get("pue", "default")},
        {"input": "Region", "value": intensity.region or c.UNKNOWN,
         "source": "configured" if origin.get("region") not in (None, "default")
         else "guessed from this host's time zone (or the world average)",
         "set by": origin.get("region", "default")},
        {"input": "Grid intensity", "value": f"{c.fmt_number(intensity.g_per_kwh)} g CO2e/kWh",
         "source": intensity.source, "set by": origin.get("intensity", "default")},
        {"input": "Cost method", "value": site.cost_method.replace("_", "-"),
         "source": "electricity: facility kWh × price; gpu-hour: GPU-hours × price",
         "set by": origin.get("cost_method", "default")},
        {"input": "Price", "value": price, "source": site.price_source or "price table",
         "set by": origin.get("price_per_kwh", "default")},
    ]  # fmt: skip
    from ecotrain import embodied

    flat = settings.flat()
    factor = flat.get("embodied_kg_per_gpu_hour") or embodied.DEFAULT_KG_PER_GPU_HOUR
    rows.append(
        {"input": "Embodied emissions",
         "value": f"on: {c.fmt_number(float(factor))} kg CO2e/GPU-hour"
         if embodied.enabled(flat) else "off",
         "source": "reported beside the operational CO2e, never added to it"
         if embodied.enabled(flat) else "off by default; not included in any figure",
         "set by": origin.get("embodied", "default")}
    )  # fmt: skip
    c.show_table(
        pd.DataFrame(rows),
        {
            "input": ("Input", "text"),
            "value": ("Value", "text"),
            "source": ("Source", "text"),
            "set by": ("Set by", "text"),
        },
        key="method_defaults",
        static=True,
    )
except Exception as e:  # noqa: BLE001 - a broken config or unknown region must not break the page
    st.warning(f"Could not resolve the defaults from the configuration: {e}")

st.subheader("Data sources")
sources = []
try:
    from ecotrain.grid import data_version

    sources.append(
        {"data": "Grid carbon intensity by country and region",
         "source": "CodeCarbon's energy-mix files (Ember, EPA eGRID, provincial mixes)",
         "version": data_version()}
    )  # fmt: skip
except Exception:  # noqa: BLE001 - codecarbon's data not installed: say so below
    sources.append(
        {"data": "Grid carbon intensity", "source": "not installed", "version": c.UNKNOWN}
    )
from ecotrain.embodied import DEFAULT_SOURCE as embodied_source  # noqa: E402

sources += [
    {"data": "CPU power (TDP) for the CPU model",
     "source": "CodeCarbon's CPU table; 4 W per thread when the CPU is not listed",
     "version": "with the grid data"},
    {"data": "Default PUE 1.56", "source": "Uptime Institute global survey, 2024",
     "version": "2024"},
    {"data": "Published training footprints (checkpoint catalogue)",
     "source": "the papers and model cards each entry cites", "version": "built in"},
    {"data": "Embodied hardware emissions (when switched on; beside, never in, CO2e)",
     "source": embodied_source, "version": "2023"},
]  # fmt: skip
c.show_table(
    pd.DataFrame(sources),
    {"data": ("Data", "text"), "source": ("Source", "text"), "version": ("Version", "text")},
    key="method_sources",
    static=True,
)

st.subheader("Inputs the runs in view were accounted with")
if c.database_state(url) != "ok":
    st.info(c.EMPTY_MESSAGE)
    st.stop()
used = c.load_sources(url, c.filter_key(c.shared_filter()))
TABLES = {
    "pue": ("PUE and its source", {"pue": ("PUE", "number"), "pue_source": ("Source", "text")}),
    "intensity": (
        "Grid intensity by region and source",
        {
            "region": ("Region", "text"),
            "intensity_g_per_kwh": ("g CO2e/kWh", "number"),
            "intensity_source": ("Source", "text"),
        },
    ),
    "price": (
        "Price and its source",
        {
            "cost_method": ("Method", "text"),
            "price": ("Price ($)", "number"),
            "price_source": ("Source", "text"),
        },
    ),
    "methods": (
        "Measurement methods",
        {
            "gpu_method": ("GPU", "text"),
            "cpu_method": ("CPU", "text"),
            "ram_method": ("RAM", "text"),
        },
    ),
    "versions": (
        "ecotrain and data versions",
        {"ecotrain_version": ("ecotrain", "text"), "data_version": ("Data", "text")},
    ),
}
for name, (title, spec) in TABLES.items():
    st.markdown(f"**{title}**")
    rows = used[name]
    if name == "methods":  # no method recorded: the component was not measured
        rows = [{k: v or "not measured" for k, v in r.items()} for r in rows]
    if rows:
        c.show_table(
            pd.DataFrame(rows), {**spec, "runs": ("Runs", "int")}, key=f"method_{name}", static=True
        )
    else:
        st.caption("No runs in this period.")
