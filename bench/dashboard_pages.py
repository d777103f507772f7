"""Time every dashboard page on a large database, through Streamlit's AppTest.

    python bench/gen_dashboard_db.py /tmp/dash-bench.db
    python bench/dashboard_pages.py /tmp/dash-bench.db [--period all]

For each page: "cold" is a render with st.cache_data and the precomputed summaries cleared
(every SQL query runs: the first view after the server starts, before its warm-up thread
has finished); "precomputed" a render with st.cache_data cleared while the precomputed
summaries (savings, lineage: dashboard/precompute.py) are current, i.e. any view once the
server has warmed up and no run has landed since, or while a refresh runs in the background;
"warm" the same render again (loaders served from st.cache_data, TTL 60 s);
"restart" a render by a server that has just started under `ecotrain dashboard`: memory
empty, the summaries that command warmed while the server started on disk
(dashboard/warmup.py prewarm, run once here first; dashboard/precompute.py save/load).
"cold" keeps nothing on disk (ECOTRAIN_DASHBOARD_CACHE=off): a first view that comes before
the warm-up is done. The summaries' files go to a temporary ECOTRAIN_DATA_DIR.
Target (issue 14): every page < 1 s server-side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from importlib.resources import files

PAGES = {
    "Overview": "views/overview.py",
    "Runs": "views/runs.py",
    "Run detail": "views/run_detail.py",
    "Checkpoints & savings": "views/checkpoints.py",
    "Breakdowns": "views/breakdowns.py",
    "Method": "views/method.py",
}


def time_page(app: str, page: str, period: str, repeat: int) -> tuple[float, float, float, float]:
    """(median cold, restart, precomputed, warm seconds) for one page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ecotrain.dashboard import common, precompute

    cold, restart, pre, warm = [], [], [], []
    for _ in range(repeat):
        at = AppTest.from_file(app, default_timeout=120)
        at.query_params["period"] = period
        at.run()
        at.switch_page(page)
        common._warmed.add(os.environ["ECOTRAIN_DASHBOARD_DB_URL"])  # no warm-up thread
        # restart: memory empty, the prewarmed summaries on disk
        os.environ.pop(precompute.CACHE_ENV, None)
        st.cache_data.clear()
        precompute.clear()
        t0 = time.perf_counter()
        at.run()
        restart.append(time.perf_counter() - t0)
        # cold: nothing in memory, nothing on disk
        os.environ[precompute.CACHE_ENV] = "off"
        st.cache_data.clear()
        precompute.clear()
        t0 = time.perf_counter()
        at.run()
        cold.append(time.perf_counter() - t0)
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
        st.cache_data.clear()
        t0 = time.perf_counter()
        at.run()
        pre.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t0)
    med = statistics.median
    return med(cold), med(restart), med(pre), med(warm)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("--period", default="all", help="7d, 30d, 90d, 365d or all")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from ecotrain.store.engine import resolve_url

    os.environ["ECOTRAIN_DASHBOARD_DB"] = args.db
    url = os.environ["ECOTRAIN_DASHBOARD_DB_URL"] = resolve_url(args.db)
    os.environ["ECOTRAIN_DATA_DIR"] = tempfile.mkdtemp(prefix="ecotrain-dash-bench-")
    from ecotrain.dashboard.warmup import prewarm

    t0 = time.perf_counter()
    warmed = prewarm(url)  # what `ecotrain dashboard` does while the server starts
    prewarm_s = time.perf_counter() - t0
    app = str(files("ecotrain.dashboard") / "app.py")
    time_page(app, PAGES["Method"], args.period, 1)  # warm the imports, not timed
    print(f"period={args.period}, median of {args.repeat}, seconds")
    print(f"prewarm (ecotrain dashboard, while the server starts): {warmed} summaries, "
          f"{prewarm_s:.2f} s")  # fmt: skip
    print(f"{'page':<24}{'cold':>8}{'restart':>9}{'precomputed':>13}{'warm':>8}")
    figures: dict[str, float] = {"prewarm_s": round(prewarm_s, 3)}
    for name, page in PAGES.items():
        cold, restart, pre, warm = time_page(app, page, args.period, args.repeat)
        print(f"{name:<24}{cold:>8.2f}{restart:>9.2f}{pre:>13.2f}{warm:>8.2f}")
        slug = name.lower().replace(" & ", "_").replace(" ", "_")
        figures[f"{slug}_cold_s"] = round(cold, 3)
        figures[f"{slug}_restart_s"] = round(restart, 3)
        figures[f"{slug}_precomputed_s"] = round(pre, 3)
    # The bench/run.py hook protocol: the last line is one JSON object.
    print(json.dumps({"name": "dashboard_pages", "figures": figures}))


if __name__ == "__main__":
    main()
