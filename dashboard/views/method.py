"""Method: how every number is computed, the defaults in force, data sources and versions.

Nothing here is retyped: the text comes from the accounting modules' own docstrings and
constants, the defaults from the settings layers, and the sources from the runs themselves.
"""

from __future__ import annotations

import importlib
import inspect

import pandas as pd
import streamlit as st

from ecotrain.dashboard import common as c

st.title("Method")
url = c.db_url()

st.markdown(
    """
**Energy.** IT energy = GPU + CPU + RAM, each tagged with how it was obtained: `measured`
(NVML energy counter, RAPL), `integrated` (NVML power samples) or `modelled` (TDP x
utilisation, RAM model). **Facility energy** = IT energy x PUE. **CO2e** = facility energy x
the location-based grid intensity of the run's region. **Cost** = facility kWh x $/kWh
(electricity) or GPU-hours x $/GPU-hour (cloud), one method per site. Every run keeps the
inputs it was accounted with, so the totals here are sums of stored per-run figures.

**Avoided by reuse** is the counterfactual of producing a reused checkpoint again, under a
named mode (`reproduce`, `as-published`, `none`); it is reported separately and never
subtracted from emissions. **Change vs previous period** compares with the window of the
same length just before the selected one. Weeks start on Monday (UTC).
"""
)


def _constants(module) -> list[dict]:
    rows = []
    for name, value in vars(module).items():
        if name.isupper() and not name.startswith("_") and isinstance(value, int | float | str):
            rows.append({"constant": f"{module.__name__}.{name}", "value": str(value)})
    return rows


st.subheader("Defaults in force")
try:
    from ecotrain.config import load_settings

    settings = load_settings()
    st.dataframe(
        pd.DataFrame(
            [
                {"setting": k, "value": str(v), "from": settings.origins.get(k, "default")}
                for k, v in sorted(settings.values.items())
                if k != "database.url"
            ]
        ),
        hide_index=True,
        key="method_settings",
    )
except Exception as e:  # noqa: BLE001 - a broken config must not break this page
    st.warning(f"Could not load the settings: {e}")
    settings = None

try:
    from ecotrain.accounting import site_from_settings

    if settings is not None:
        site = site_from_settings(settings.flat())
        st.markdown("**The site these defaults describe** (used for new runs and for `reproduce`)")
        st.json(c._plain(site), expanded=False)
except ImportError:
    st.caption("ecotrain.accounting is not installed: site defaults unavailable.")
except Exception as e:  # noqa: BLE001 - e.g. an unknown region in the config
    st.warning(f"Site from settings: {e}")

st.subheader("Data sources and constants")
for name in (
    "ecotrain.accounting",
    "ecotrain.grid",
    "ecotrain.prices",
    "ecotrain.estimate",
    "ecotrain.savings",
    "ecotrain.catalogue",
):
    try:
        module = importlib.import_module(name)
    except ImportError:
        st.caption(f"`{name}`: not installed.")
        continue
    with st.expander(f"`{name}`", expanded=False):
        doc = inspect.getdoc(module)
        if doc:
            st.markdown(doc)
        constants = _constants(module)
        if constants:
            st.dataframe(pd.DataFrame(constants), hide_index=True)

st.subheader("Inputs the runs in view were accounted with")
if c.database_state(url) != "ok":
    st.info(c.EMPTY_MESSAGE)
    st.stop()
sources = c.load_sources(url, c.filter_key(c.shared_filter()))
titles = {
    "pue": "PUE and its source",
    "intensity": "Grid intensity by region and source",
    "price": "Price and its source",
    "methods": "Measurement methods (GPU / CPU / RAM)",
    "versions": "ecotrain and data versions",
}
for name, title in titles.items():
    st.markdown(f"**{title}**")
    rows = sources[name]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"method_{name}")
    else:
        st.caption("No runs in this period.")
