"""ecotrain's lab dashboard: `ecotrain dashboard` runs this file with Streamlit.

Small on purpose: the shared filters live in the sidebar here (so they survive page
switches), each page is one file in views/ (views/__init__.py says why not pages/), and all
data comes through common.py's cached loaders over ecotrain.store.aggregates.
"""

from __future__ import annotations

import streamlit as st

from ecotrain.dashboard import common

st.set_page_config(page_title="ecotrain", page_icon=":material/eco:", layout="wide")

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("views/runs.py", title="Runs", icon=":material/list:", url_path="runs"),
    st.Page("views/run_detail.py", title="Run detail", icon=":material/bolt:", url_path="run"),
    st.Page(
        "views/checkpoints.py",
        title="Checkpoints & savings",
        icon=":material/account_tree:",
        url_path="checkpoints",
    ),
    st.Page(
        "views/breakdowns.py",
        title="Breakdowns",
        icon=":material/pie_chart:",
        url_path="breakdowns",
    ),
    st.Page("views/when_where.py", title="When & where", icon=":material/alarm:", url_path="when"),
    st.Page("views/method.py", title="Method", icon=":material/menu_book:", url_path="method"),
]

# A metric value wraps instead of being cut with an ellipsis: a number that loses its unit
# (or its last digits) at 1280 px is a wrong number for the reader.
st.html(
    "<style>[data-testid='stMetricValue'], [data-testid='stMetricValue'] * "
    "{white-space: normal !important; overflow-wrap: anywhere; text-overflow: clip !important;"
    " font-size: 1.9rem}</style>"
)
page = st.navigation(PAGES)
url = common.db_url()
st.session_state["db_url"] = url
common.sidebar_filters(url)
page.run()
