"""The dashboard: SQL aggregations (no Streamlit) and every page through AppTest."""

from __future__ import annotations

import csv
import io
import sqlite3
from importlib.resources import files
from pathlib import Path

import pytest
import streamlit as st
from dashboard_fixture import CKPT_A, CKPT_B, RUN_IDS, build
from streamlit.testing.v1 import AppTest

from ecotrain.dashboard import precompute
from ecotrain.store import aggregates as agg
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from ecotrain.store.records import utcnow

APP = str(files("ecotrain.dashboard") / "app.py")
PAGES = [
    "views/overview.py",
    "views/runs.py",
    "views/run_detail.py",
    "views/checkpoints.py",
    "views/breakdowns.py",
    "views/method.py",
]


@pytest.fixture
def fixture_db(tmp_path: Path) -> Path:
    return build(tmp_path / "fixture.db")


@pytest.fixture
def engine(fixture_db: Path):
    eng = agg.readonly_engine(str(fixture_db))
    yield eng
    eng.dispose()


def _last_30_days() -> RunFilter:
    from datetime import timedelta

    return RunFilter(since=utcnow() - timedelta(days=30))


# -- aggregations ------------------------------------------------------------------------------


def test_totals_sum_the_runs_in_scope(engine) -> None:
    t = agg.totals(engine, _last_30_days())
    assert t["runs"] == 3
    assert t["energy_kwh"] == pytest.approx(35.0)
    assert t["it_energy_kwh"] == pytest.approx(35.0 / 1.5)
    assert t["co2_kg"] == pytest.approx(14.0)
    assert t["cost_usd"] == pytest.approx(5.5)
    assert t["gpu_hours"] == pytest.approx(11.0)
    alpha = agg.totals(engine, RunFilter(project="alpha"))
    assert (alpha["runs"], alpha["energy_kwh"], alpha["co2_kg"]) == (2, 30.0, 13.0)
    assert agg.totals(engine, RunFilter(project="nobody"))["energy_kwh"] == 0.0


def test_weekly_trend_buckets_by_monday(engine) -> None:
    rows = agg.weekly_trend(engine, RunFilter())
    assert sum(r["runs"] for r in rows) == 4
    assert sum(r["co2_kg"] for r in rows) == pytest.approx(64.0)
    from datetime import date

    for r in rows:
        assert date.fromisoformat(r["week"]).weekday() == 0
    assert [r["week"] for r in rows] == sorted(r["week"] for r in rows)


def test_breakdown_by_user_with_ratios(engine) -> None:
    rows = {r["user"]: r for r in agg.breakdown(engine, _last_30_days(), "user")}
    assert set(rows) == {"ana", "bob"}
    assert rows["ana"]["energy_kwh"] == pytest.approx(15.0)
    assert rows["ana"]["co2_kg"] == pytest.approx(6.0)
    # $2.50 over 5 GPU-hours; 6 kg over 15 kWh = 400 g/kWh.
    assert rows["ana"]["cost_per_gpu_hour"] == pytest.approx(0.5)
    assert rows["ana"]["co2_per_kwh_g"] == pytest.approx(400.0)
    regions = [r["region"] for r in agg.breakdown(engine, RunFilter(), "region")]
    assert regions == ["FRA", "USA/CA"]  # by CO2e: 56 kg vs 8 kg
    with pytest.raises(ValueError):
        agg.breakdown(engine, RunFilter(), "command; drop table runs")


def test_page_runs_sorts_pages_and_filters(engine) -> None:
    rows, total = agg.page_runs(engine, RunFilter(), sort="co2_kg", descending=True, limit=2)
    assert total == 4
    assert [r["run_id"] for r in rows] == [RUN_IDS["r4"], RUN_IDS["r2"]]
    rows, _ = agg.page_runs(engine, RunFilter(), sort="co2_kg", descending=True, limit=2, offset=2)
    assert [r["run_id"] for r in rows] == [RUN_IDS["r1"], RUN_IDS["r3"]]
    rows, total = agg.page_runs(engine, RunFilter(text="FINETUNE"))
    assert total == 1 and rows[0]["run_id"] == RUN_IDS["r2"]
    rows, total = agg.page_runs(engine, RunFilter(tags={"lr": "3e-4"}))
    assert [r["run_id"] for r in rows] == [RUN_IDS["r1"]]
    _, total = agg.page_runs(engine, RunFilter(status="failed", host="h1"))
    assert total == 1


def test_runs_csv_has_every_filtered_row(engine) -> None:
    text = agg.runs_csv(engine, RunFilter(project="alpha"), sort="started_at", descending=False)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["run_id"] for r in rows] == [RUN_IDS["r2"], RUN_IDS["r1"]]
    assert rows[1]["command"] == "python train.py --lr 3e-4"
    assert rows[1]["tags"] == "lr=3e-4"
    assert float(rows[0]["co2_kg"]) == 8.0


def test_run_detail_checkpoints_and_lineage(engine) -> None:
    detail = agg.run_detail(engine, RUN_IDS["r1"][:8])
    assert detail["run"]["run_id"] == RUN_IDS["r1"]
    assert [s["gpu_w"] for s in detail["samples"]] == [250.0, 300.0, 280.0]
    links = {(x["role"], x["checkpoint_id"]): x for x in detail["checkpoints"]}
    assert links[("consumed", CKPT_A)]["name"] == "bert-base"
    assert links[("produced", CKPT_B)]["times_reused"] == 1  # r2 consumed it
    edges = agg.lineage_edges(engine)
    assert edges == [{"parent": CKPT_A, "child": CKPT_B, "runs": 1}]
    dot = agg.lineage_dot(edges, {CKPT_A: "bert-base", CKPT_B: "bert-distill"}, CKPT_B)
    assert f'"{CKPT_A}" -> "{CKPT_B}" [label="1 run"]' in dot
    assert 'label="bert-distill", fillcolor="#b9dfb9"' in dot


def test_checkpoint_table_counts_reuse_in_scope(engine) -> None:
    rows, total = agg.checkpoint_table(engine, RunFilter())
    assert total == 2
    by_id = {r["checkpoint_id"]: r for r in rows}
    assert (by_id[CKPT_A]["times_reused"], by_id[CKPT_A]["produced_by"]) == (1, 0)
    assert (by_id[CKPT_B]["times_reused"], by_id[CKPT_B]["produced_by"]) == (1, 1)
    assert by_id[CKPT_A]["fp_co2_kg"] == 600.0
    rows, _ = agg.checkpoint_table(engine, RunFilter(user="ana"))
    assert {r["checkpoint_id"]: r["times_reused"] for r in rows} == {CKPT_A: 1, CKPT_B: 0}
    rows, total = agg.checkpoint_table(engine, RunFilter(), search="DISTILL")
    assert total == 1 and rows[0]["checkpoint_id"] == CKPT_B


def test_neighbourhood_follows_ancestors_and_descendants() -> None:
    edges = [
        {"parent": "a", "child": "b", "runs": 1},
        {"parent": "b", "child": "c", "runs": 2},
        {"parent": "x", "child": "y", "runs": 5},
    ]
    got = agg.neighbourhood(edges, "b")
    assert {(e["parent"], e["child"]) for e in got} == {("a", "b"), ("b", "c")}
    assert agg.neighbourhood(edges, None, max_nodes=2) == [edges[2]]


def test_readonly_engine_never_creates_or_writes(tmp_path: Path, fixture_db: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    with pytest.raises(agg.NoDatabase):
        agg.readonly_engine(str(missing))
    assert not missing.exists()
    eng = agg.readonly_engine(str(fixture_db))
    with eng.connect() as conn, pytest.raises(Exception, match="readonly|read-only|query_only"):
        conn.exec_driver_sql("DELETE FROM runs")
    eng.dispose()
    assert sqlite3.connect(fixture_db).execute("SELECT count(*) FROM runs").fetchone() == (4,)


# -- the app, page by page -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    precompute.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    precompute.clear()


def _app(db: Path, monkeypatch: pytest.MonkeyPatch, page: str | None = None, **params) -> AppTest:
    monkeypatch.setenv("ECOTRAIN_DASHBOARD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _df(at: AppTest, *columns: str):
    """The first table on the page that has all these columns (st.dataframe has no key)."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


def _table(at: AppTest, *labels: str):
    """The first static table (st.table) that has all these column labels."""
    for table in at.table:
        if set(labels) <= set(table.value.columns):
            return table.value
    raise AssertionError(f"no table with columns {labels}")


def _metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def test_overview_totals_and_change(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch)
    m = _metrics(at)
    assert m["Energy (facility)"] == ("35.0 kWh", "-65% vs previous period")
    assert m["CO2e"] == ("14.0 kg", "-72% vs previous period")
    assert m["Cost"] == ("$5.50", "-45% vs previous period")
    assert m["GPU-hours"][0] == "11.0 h"
    top = _df(at, "project", "co2_kg")
    assert list(top["project"]) == ["alpha", "beta"]
    assert list(top["co2_kg"]) == [13.0, 1.0]


def test_shared_filters_change_totals_and_reach_the_url(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch)
    at.selectbox(key="f_project").select("alpha").run()
    assert _metrics(at)["Energy (facility)"][0] == "30.0 kWh"
    assert at.query_params["project"] == "alpha"
    at.selectbox(key="f_user").select("ana").run()
    assert _metrics(at)["CO2e"][0] == "5.00 kg"
    at.selectbox(key="f_period").select("all").run()
    m = _metrics(at)
    assert m["Energy (facility)"] == ("10.0 kWh", "")  # no previous period for all time
    # The same filters survive a page switch.
    at.switch_page("views/breakdowns.py").run()
    assert list(_df(at, "project", "cost_per_gpu_hour")["project"]) == ["alpha"]


def test_a_linked_view_restores_its_filters(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch, period="all", project="beta")
    m = _metrics(at)
    assert m["Energy (facility)"][0] == "105 kWh"
    assert m["CO2e"][0] == "51.0 kg"


def test_runs_page_filters_sorts_and_links(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch, "views/runs.py")
    table = _df(at, "run_id", "open")
    assert len(table) == 3  # last 30 days
    assert list(table["run_id"]) == [RUN_IDS[k][:12] for k in ("r1", "r2", "r3")]
    assert table["open"][0] == f"./run?run={RUN_IDS['r1']}"
    at.selectbox(key="runs_status").select("failed").run()
    assert list(_df(at, "run_id", "open")["run_id"]) == [RUN_IDS["r3"][:12]]
    at.selectbox(key="runs_status").select("All").run()
    at.text_input(key="runs_text").input("finetune").run()
    assert list(_df(at, "run_id", "open")["run_id"]) == [RUN_IDS["r2"][:12]]
    at.text_input(key="runs_text").input("").run()
    at.selectbox(key="runs_sort").select("co2_kg").run()
    at.toggle(key="runs_desc").set_value(False).run()
    assert list(_df(at, "run_id", "open")["co2_kg"]) == [1.0, 5.0, 8.0]
    assert not at.exception


def test_run_detail_shows_the_linked_run(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch, "views/run_detail.py")
    # Without a link: the latest run in scope.
    assert _metrics(at)["CO2e"][0] == "5.00 kg"
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = RUN_IDS["r2"]
    at.run()
    at.switch_page("views/run_detail.py").run()
    assert not at.exception
    m = _metrics(at)
    assert m["Energy (facility)"][0] == "20.0 kWh"
    assert m["CO2e"][0] == "8.00 kg"
    assert m["GPUs"][0] == "2× H100"
    split = _df(at, "component")
    assert list(split["method"]) == ["measured", "modelled", "modelled"]
    # 20 kWh facility / PUE 1.5 x 75 % GPU = 10 kWh.
    assert split["kWh"][0] == pytest.approx(10.0)
    ckpts = _df(at, "role", "checkpoint")
    assert list(ckpts["role"]) == ["consumed"]
    assert ckpts["open"][0] == f"./checkpoints?ckpt={CKPT_B}"
    at.text_input(key="detail_run").input("nope").run()
    assert "no run 'nope'" in at.warning[0].value


def test_checkpoints_page_table_and_lineage(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch, "views/checkpoints.py")
    table = _df(at, "times_reused", "produced_by")
    assert set(table["name"]) == {"bert-base", "bert-distill"}
    assert at.get("graphviz_chart"), "the lineage graph is drawn"
    at.text_input(key="ck_focus").input(CKPT_B).run()
    assert not at.exception
    runs = _df(at, "role", "run_id")
    assert sorted(runs["role"]) == ["consumed", "produced"]
    assert at.query_params["ckpt"] == CKPT_B


def test_breakdowns_page(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch, "views/breakdowns.py")
    table = _df(at, "project", "cost_per_gpu_hour")
    assert list(table["project"]) == ["alpha", "beta"]
    at.button_group(key="bd_by").set_value("gpu_model").run()
    table = _df(at, "gpu_model")
    by_gpu = dict(zip(table["gpu_model"], table["co2_kg"], strict=True))
    assert by_gpu == {"NVIDIA H100": 8.0, "NVIDIA A100-SXM4-40GB": 6.0}


def test_method_page_shows_inputs_in_use(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch, "views/method.py")
    pue = _table(at, "PUE", "Source", "Runs")
    assert list(pue["PUE"]) == [1.5] and list(pue["Runs"]) == [3]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("kind", ["missing", "no-schema", "no-runs"])
def test_empty_database_shows_the_empty_state(tmp_path, monkeypatch, page, kind) -> None:
    db = tmp_path / "empty.db"
    if kind == "no-schema":
        sqlite3.connect(db).close()
    elif kind == "no-runs":
        from ecotrain.store.db import Store

        Store(str(db)).engine.dispose()
    at = _app(db, monkeypatch, page)
    texts = [x.value for x in at.info]
    assert any("No runs yet" in t and "ecotrain run" in t for t in texts), texts
    assert kind != "missing" or not db.exists()  # the dashboard never creates a database


def test_aggregates_on_postgresql(tmp_path: Path) -> None:
    """The same aggregations (date_trunc weeks, JSON text search) on PostgreSQL, read-only."""
    import uuid

    from sqlalchemy import create_engine, text

    admin_url = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"et_{uuid.uuid4().hex[:12]}"
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"PostgreSQL not reachable: {e}")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        build(url)  # Store takes a URL as well as a path
        eng = agg.readonly_engine(url)
        t = agg.totals(eng, _last_30_days())
        assert (t["runs"], t["energy_kwh"], t["co2_kg"]) == (3, 35.0, 14.0)
        weeks = agg.weekly_trend(eng, RunFilter())
        assert sum(w["runs"] for w in weeks) == 4
        from datetime import date

        assert all(date.fromisoformat(w["week"]).weekday() == 0 for w in weeks)
        rows, total = agg.page_runs(eng, RunFilter(text="finetune"))
        assert total == 1 and rows[0]["run_id"] == RUN_IDS["r2"]
        assert agg.lineage_edges(eng) == [{"parent": CKPT_A, "child": CKPT_B, "runs": 1}]
        with eng.connect() as conn, pytest.raises(Exception, match="read-only"):
            conn.exec_driver_sql("DELETE FROM runs")
        eng.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_an_old_store_opens_on_all_time_not_an_empty_month(tmp_path: Path, monkeypatch) -> None:
    from store_helpers import make_record  # a run of 2024-05-01

    db = tmp_path / "old.db"
    Store(str(db)).write_record(make_record("old-run", beat=2, status="finished"))
    at = _app(db, monkeypatch)
    assert at.session_state["f_period"] == "all"
    assert any("· 1 runs" in c.value for c in at.caption)
    # a linked period still wins
    st.cache_data.clear()
    assert _app(db, monkeypatch, period="30d").session_state["f_period"] == "30d"


# -- issue 14/16: text, not Markdown; readable figures ------------------------------------------


def test_trim_final_zero_sample() -> None:
    pts = [
        {"t_s": 0.0, "gpu_w": 0.0, "cpu_w": 3.0, "ram_w": 0.1},
        {"t_s": 1.0, "gpu_w": 0.0, "cpu_w": 4.0, "ram_w": 0.1},
        {"t_s": 1.2, "gpu_w": 0.0, "cpu_w": 0.0, "ram_w": 0.0},
    ]
    assert agg.trim_final_zero(pts) == (pts[:2], 1)
    zeros = [{"t_s": 0.0, "gpu_w": 0.0, "cpu_w": 0.0, "ram_w": 0.0}]
    assert agg.trim_final_zero(zeros) == (zeros, 0)


def test_run_notes_render_as_text_not_markdown(fixture_db: Path, monkeypatch) -> None:
    from tests.test_reports import _run

    pixel = "![px](http://127.0.0.1:9/track.png)"
    rec = _run("f" * 32, "inject", 1, gpu_j=3.6e6, cpu_j=0.0, notes=[f"command was {pixel}"])
    rec["run"]["started_at"] = utcnow()
    rec["samples"] = [[0.0, 300.0, 10.0, 1.0], [5.0, 0.0, 0.0, 0.0]]  # t_s, gpu, cpu, ram W
    Store(str(fixture_db)).write_record(rec)
    at = _app(fixture_db, monkeypatch, run="f" * 32)
    at.switch_page("views/run_detail.py").run()
    assert not at.exception
    assert any(pixel in t.value for t in at.text)
    assert not any("](http" in m.value for m in at.markdown)
    assert any("read 0 W" in cap.value for cap in at.caption)  # the final tick is not drawn


def test_method_page_shows_effective_defaults(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch, "views/method.py")
    defaults = _table(at, "Input", "Set by")
    values = dict(zip(defaults["Input"], defaults["Value"], strict=True))
    assert values["PUE"] == "1.56"
    assert values["Region"] not in ("", "None", "unknown")
    assert values["Embodied emissions"] == "off"  # ecotrain.embodied's default, stated
    monkeypatch.setenv("ECOTRAIN_EMBODIED", "on")
    at = _app(fixture_db, monkeypatch, "views/method.py")
    on = _table(at, "Input", "Set by")
    assert dict(zip(on["Input"], on["Value"], strict=True))["Embodied emissions"] == (
        "on: 0.0103 kg CO2e/GPU-hour"
    )
    for frame in [*at.dataframe, *at.table]:
        assert "None" not in frame.value.astype(str).to_string()
    page = " ".join(m.value for m in at.markdown)
    assert ":func:" not in page and "run path" not in page


def test_checkpoints_page_avoided_largest_first(fixture_db: Path, monkeypatch) -> None:
    at = _app(fixture_db, monkeypatch, "views/checkpoints.py", period="all")
    labels = [m.label for m in at.metric]
    assert "Avoided ÷ emitted CO2e" in labels
    try:
        avoided = _df(at, "reuses", "co2_kg")
    except AssertionError:
        return  # nothing reused from outside the scope in this fixture
    co2 = [v or 0.0 for v in avoided["co2_kg"]]
    assert co2 == sorted(co2, reverse=True)


@pytest.mark.parametrize("page", PAGES)
def test_no_table_shows_none_or_nan(fixture_db: Path, monkeypatch, page: str) -> None:
    """Every table cell a reader sees is a value or "unknown": the grid draws a missing cell
    as "None", so no displayed column may hold one (issue 14)."""
    from tests.test_reports import _run

    rec = _run("e" * 32, "gaps", 1, gpu_j=0.0, cpu_j=36.0, gpu_model=None, gpu_count=None,
               gpu_hours=None, exit_code=None, cost_usd=None, region=None, tags={})  # fmt: skip
    rec["run"]["started_at"] = utcnow()
    rec["checkpoints"] = [{"checkpoint_id": "sha256:" + "9" * 64, "name": None}]
    rec["links"] = [{"checkpoint_id": "sha256:" + "9" * 64, "role": "consumed", "path": None}]
    Store(str(fixture_db)).write_record(rec)
    at = _app(fixture_db, monkeypatch, page, period="all", run="e" * 32)
    assert at.dataframe or at.table, "every page shows a table"
    for frame in [*at.dataframe, *at.table]:
        value = frame.value
        assert not value.isna().any().any(), value[value.isna().any(axis=1)]
        assert "None" not in value.astype(str).to_string()


def test_names_and_links_render_as_text(fixture_db: Path, monkeypatch) -> None:
    """A project or checkpoint name, or a run id in a link, cannot inject Markdown."""
    from tests.test_reports import _run

    pixel = "![px](http://127.0.0.1:9/track.png)"
    rec = _run("a1" * 16, f"p {pixel}", 1, gpu_j=3.6e6, cpu_j=0.0)
    rec["run"]["started_at"] = utcnow()
    rec["checkpoints"] = [{"checkpoint_id": "sha256:" + "7" * 64, "name": pixel}]
    rec["links"] = [{"checkpoint_id": "sha256:" + "7" * 64, "role": "consumed", "path": "/m"}]
    Store(str(fixture_db)).write_record(rec)
    for page, params in (
        ("views/run_detail.py", {"run": "a1" * 16}),
        ("views/run_detail.py", {"run": pixel}),
        ("views/checkpoints.py", {"ckpt": "sha256:" + "7" * 64, "period": "all"}),
    ):
        at = _app(fixture_db, monkeypatch, page, **params)
        rendered = [e.value for e in [*at.markdown, *at.subheader, *at.caption, *at.warning]]
        assert not [t for t in rendered if "](http" in t and "\\](http" not in t], rendered


def test_precomputed_summary_served_then_refreshed_when_data_changes(fixture_db: Path) -> None:
    import time

    calls: list[int] = []

    def compute(n: int):
        def run() -> int:
            calls.append(n)
            return n

        return run

    key = ("test", "summary")
    assert precompute.summary(key, ("a",), compute(1))[0] == 1  # absent: computed here
    assert precompute.summary(key, ("a",), compute(2))[0] == 1  # same data: stored value
    assert calls == [1]
    assert precompute.summary(key, ("b",), compute(3))[0] == 1  # changed: old value at once
    deadline = time.monotonic() + 5
    while precompute.summary(key, ("b",), compute(4))[0] != 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert precompute.summary(key, ("b",), compute(5))[0] == 3 and calls == [1, 3]
    # The stamp moves with the data: a new run changes it.
    engine = agg.readonly_engine(str(fixture_db))
    before = precompute.data_stamp(engine, "u1")
    from tests.test_reports import _run

    Store(str(fixture_db)).write_record(_run("9" * 32, "new", 1, gpu_j=1.0, cpu_j=0.0))
    assert precompute.data_stamp(engine, "u2") != before


def _reuse_unknown(db: Path | str, ckpt: str = "sha256:" + "6" * 64) -> None:
    """A run of another project that started from a checkpoint no one recorded, registered or
    catalogued: what its reuse avoided is unknown."""
    from tests.test_reports import _run

    rec = _run("6" * 32, "gamma", 1, gpu_j=3.6e6, cpu_j=0.0)
    rec["run"]["started_at"] = utcnow()
    rec["checkpoints"] = [{"checkpoint_id": ckpt, "name": "mystery-base"}]
    rec["links"] = [{"checkpoint_id": ckpt, "role": "consumed", "path": "/m/mystery"}]
    Store(str(db)).write_record(rec)


@pytest.mark.parametrize("page", ["views/overview.py", "views/checkpoints.py"])
def test_every_footprint_unknown_reads_unknown_not_zero(tmp_path, monkeypatch, page) -> None:
    """Issue 12 item 8 / issue 14: unknown avoided figures read "unknown", with the hint."""
    db = tmp_path / "unknown.db"
    _reuse_unknown(db)
    at = _app(db, monkeypatch, page, period="all")
    m = _metrics(at)
    suffix = "" if page.endswith("checkpoints.py") else " (reuse)"
    for what in ("CO2e", "cost", "energy"):
        assert m[f"Avoided {what}{suffix}"][0] == "unknown"
    assert m["Avoided ÷ emitted CO2e"][0] == "unknown"
    captions = " ".join(c.value for c in at.caption)
    assert "mystery-base" in captions
    assert "ecotrain checkpoint register" in captions
    assert "spared 0" not in captions and "$0.00" not in captions


@pytest.mark.parametrize("page", ["views/overview.py", "views/checkpoints.py"])
def test_some_footprints_unknown_read_at_least(fixture_db: Path, monkeypatch, page) -> None:
    """Known footprints are summed and shown as a lower bound; the unknown one is named."""
    from ecotrain import savings

    _reuse_unknown(fixture_db)
    eng = agg.readonly_engine(str(fixture_db))
    items = savings.avoided_for_runs(eng, RunFilter(), mode="reproduce")
    eng.dispose()
    known = [a for a in items if a.co2_kg is not None]
    assert [a.name for a in known] == ["bert-base"] and len(items) == 2
    at = _app(fixture_db, monkeypatch, page, period="all")
    m = _metrics(at)
    label = "Avoided CO2e" + ("" if page.endswith("checkpoints.py") else " (reuse)")
    from ecotrain.units import fmt_co2

    assert known[0].co2_kg > 0
    assert m[label][0] == f"≥ {fmt_co2(known[0].co2_kg)}"
    assert m["Avoided ÷ emitted CO2e"][0].startswith("≥ ")
    captions = " ".join(c.value for c in at.caption)
    assert "At least" in captions and "1 reused checkpoint (mystery" in captions
    assert "ecotrain checkpoint register" in captions


def test_first_view_after_server_start_reads_the_prewarmed_summaries(
    fixture_db: Path, monkeypatch
) -> None:
    """`ecotrain dashboard` warms the default summaries while the server starts and keeps
    them on disk; a new server process (memory cleared) serves them without recomputing."""
    from ecotrain.dashboard import warmup
    from ecotrain.store.engine import resolve_url

    url = resolve_url(str(fixture_db))
    assert warmup.prewarm(url) >= 10
    path = precompute.cache_file(url)
    assert path is not None and path.is_file() and (path.stat().st_mode & 0o777) == 0o600
    precompute.clear()  # as a fresh server process

    def never(*_a, **_k):
        raise AssertionError("recomputed a summary the warm-up had made")

    for name in ("avoided", "totals", "trend", "breakdown", "options", "lineage"):
        monkeypatch.setitem(warmup.COMPUTE, name, never)
    at = _app(fixture_db, monkeypatch)  # Overview, default period (last 30 days)
    m = _metrics(at)
    assert m["Energy (facility)"] == ("35.0 kWh", "-65% vs previous period")
    assert m["Avoided CO2e (reuse)"][0] not in ("unknown", "0 g")
    at.switch_page("views/checkpoints.py").run()
    assert not at.exception, [e.value for e in at.exception]
    # Switched off: nothing is written, and the pages compute as before.
    monkeypatch.setenv("ECOTRAIN_DASHBOARD_CACHE", "off")
    assert precompute.cache_file(url) is None


def test_a_stored_summary_file_from_elsewhere_is_ignored(fixture_db: Path) -> None:
    from ecotrain.store.engine import resolve_url

    url = resolve_url(str(fixture_db))
    path = precompute.cache_file(url)
    path.write_bytes(b"not a pickle")
    assert precompute.load(url) == 0
    precompute.put((url, "totals", ("k",)), {"runs": 1}, ("s",))
    precompute.save(url)
    precompute.clear()
    assert precompute.load(url) == 1
    assert precompute.load(resolve_url(str(fixture_db) + "x")) == 0
    assert str(fixture_db).encode() not in path.read_bytes()  # no URL (or password) on disk


def test_run_detail_shows_time_resolved_co2e_and_work_per_unit(tmp_path: Path, monkeypatch) -> None:
    """A run that reported tokens and samples, with a time-resolved CO2e beside the annual
    one: both on its page (issue 17 asked for them in the dashboard, not only the CLI)."""
    from ecotrain.store.db import Store
    from tests.store_helpers import make_record

    db = tmp_path / "work.db"
    record = make_record("w" * 32, beat=4, status="finished")
    record["run"].update(
        facility_energy_kwh=2.0,
        co2_kg=0.5,
        co2_series_kg=0.8,
        co2_series_method="hourly series FRA (electricitymaps), 100 % of the run covered",
        progress={"step": 10, "total": 10, "tokens": 4_000_000, "samples": 2_000},
    )
    Store(str(db)).write_record(record)
    monkeypatch.setenv("ECOTRAIN_DASHBOARD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "w" * 32
    at.run()
    at.switch_page("views/run_detail.py").run()
    assert not at.exception, [e.value for e in at.exception]
    m = _metrics(at)
    assert m["CO2e"][0] == "500 g" and m["CO2e (time-resolved)"][0] == "800 g"
    # 2 kWh over 4M tokens = 500 Wh per 1M; 0.5 kg over 2k samples = 250 g per 1k
    assert m["Energy per 1M tokens"][0] == "500 Wh"
    assert m["CO2e per 1M tokens"][0] == "125 g"
    assert m["Energy per 1k samples"][0] == "1.00 kWh"
    assert m["CO2e per 1k samples"][0] == "250 g"
