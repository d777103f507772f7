"""Reports: golden values from a hand-built store, LaTeX compiles, HTML is self-contained."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
import yaml

from ecotrain.reports import render
from ecotrain.reports.json import schema
from ecotrain.reports.latex import escape
from ecotrain.reports.model import build_report
from ecotrain.savings import Avoided, Footprint
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from tests.conftest import run_cli, wait_synced

NASTY = "bert_50% & #1 {x} ~^\\ <script>alert(1)</script>"


def _run(run_id: str, project: str, day: int, gpu_j: float, cpu_j: float, **extra) -> dict:
    it = (gpu_j + cpu_j) / 3.6e6
    return {
        "run": {
            "run_id": run_id,
            "project": project,
            "status": "finished",
            "user": "ana",
            "host": "node1",
            "command": ["python", "train.py"],
            "tags": {"lr": "3e-4"},
            "started_at": datetime(2026, 11, day, 10),
            "ended_at": datetime(2026, 11, day, 12),
            "heartbeat_at": datetime(2026, 11, day, 12),
            "duration_s": 7200.0,
            "gpu_energy_j": gpu_j,
            "gpu_method": "measured",
            "cpu_energy_j": cpu_j,
            "cpu_method": "modelled",
            "ram_energy_j": 0.0,
            "ram_method": "modelled",
            "it_energy_kwh": it,
            "pue": 1.2,
            "pue_source": "site survey",
            "facility_energy_kwh": it * 1.2,
            "region": "FRA",
            "intensity_g_per_kwh": 50.0,
            "intensity_source": "test grid 2023",
            "co2_kg": it * 1.2 * 0.05,
            "cost_usd": it * 1.2 * 0.2,
            "cost_method": "electricity",
            "price": 0.2,
            "price_source": "test tariff",
            "gpu_model": "NVIDIA A100-SXM4-80GB",
            "gpu_count": 1,
            "gpu_hours": 2.0,
            "cpu_model": "EPYC",
            "ecotrain_version": "0.1.0",
            "data_version": "codecarbon 3.3.2",
            **extra,
        },
        "samples": [],
    }


@pytest.fixture
def store(db_path: Path) -> Store:
    s = Store(str(db_path))
    # 10 kWh + 5 kWh IT energy -> 18 kWh facility (PUE 1.2) -> 0.9 kg CO2e, $3.60
    s.write_record(_run("a" * 32, NASTY, 2, gpu_j=9 * 3.6e6, cpu_j=1 * 3.6e6))
    s.write_record(_run("b" * 32, NASTY, 3, gpu_j=4 * 3.6e6, cpu_j=1 * 3.6e6))
    s.write_record(_run("c" * 32, "other", 4, gpu_j=3.6e6, cpu_j=0.0))
    return s


def fake_avoided(engine, flt, mode="reproduce"):
    fp = Footprint(
        "sha256:abc",
        "<b>base</b>",
        "recorded",
        citation="1 run",
        energy_kwh=100.0,
        co2_kg=5.0,
        cost_usd=20.0,
    )
    return [
        Avoided(
            "sha256:abc",
            "<b>base</b>",
            fp,
            mode,
            100.0,
            5.0,
            20.0,
            2,
            "starting from base avoided training it again here",
        )
    ]


def report(store: Store, **kw):
    return build_report(store.engine, RunFilter(project=NASTY), avoided_fn=fake_avoided, **kw)


def test_model_totals_by_hand(store: Store) -> None:
    rep = report(store)
    assert rep.n_runs == 2
    assert rep.totals["it_energy_kwh"] == pytest.approx(15.0)
    assert rep.totals["energy_kwh"] == pytest.approx(18.0)
    assert rep.totals["co2_kg"] == pytest.approx(0.9)
    assert rep.totals["cost_usd"] == pytest.approx(3.6)
    assert rep.totals["gpu_hours"] == pytest.approx(4.0)
    split = {c["component"]: c for c in rep.components}
    assert split["gpu"]["kwh"] == pytest.approx(13.0)
    assert split["gpu"]["methods"] == {"measured": 2}
    assert split["cpu"]["methods"] == {"modelled": 2}
    text = rep.methodology
    for needle in (
        "PUE 1.2",
        "site survey",
        "50.0 g CO2e/kWh",
        "test grid 2023",
        "embodied",
        "never subtracted",
        "900 g CO2e",
        "test tariff",
    ):
        assert needle in text, needle


def test_grouping_when_many_runs(store: Store) -> None:
    rep = build_report(store.engine, RunFilter(), group_threshold=2, avoided_fn=fake_avoided)
    assert rep.grouped_by == "project"
    assert {line.label: line.runs for line in rep.lines} == {NASTY: 2, "other": 1}


def test_markdown_golden(store: Store) -> None:
    md = render(report(store), "md")
    assert "| Run | Runs | Status | GPUs | GPU-hours | Energy, facility (kWh) | CO2e (g) |" in md
    assert "| **Total** | **2** | finished | | **4.00** | **18.0** | **900** | **$3.60** |" in md
    assert "| 1 | finished | 1× A100-SXM4-80GB | 2.00 | 12.0 | 600 | $2.40 |" in md
    assert "| GPU | 13.0 | measured (2) |" in md
    assert "### Methodology" in md and "avoided" in md


def test_latex_escapes_and_compiles(store: Store, tmp_path: Path) -> None:
    assert escape("a_b%c&d#e$f{g}h~i^j\\k").replace("\\allowbreak{}", "") == (
        r"a\_b\%c\&d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    # One line per project (3 runs > 2): the nasty name is in the table and the reuse table.
    rep = build_report(store.engine, RunFilter(), group_threshold=2, avoided_fn=fake_avoided)
    assert rep.grouped_by == "project" and rep.lines[0].label == NASTY
    tex = render(rep, "latex")
    assert "\\toprule" in tex and "18" in tex and NASTY not in tex
    assert escape(NASTY) in tex
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex is not installed (.ci/run installs it)")
    (tmp_path / "frag.tex").write_text(tex)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs,graphicx}\\usepackage[T1]{fontenc}"
        "\\begin{document}\\input{frag}\\end{document}\n"
    )
    result = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_html_self_contained_with_chart(store: Store) -> None:
    page = render(report(store), "html")
    parser = _Collect()
    parser.feed(page)
    assert "svg" in parser.tags and "rect" in parser.tags and "table" in parser.tags
    assert parser.urls == []  # no external resources
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>base</b>" not in page
    assert "18.0 kWh" in page and "Facility energy (kWh)" in page


def test_json_validates_against_schema(store: Store) -> None:
    data = json.loads(render(report(store), "json"))
    jsonschema.validate(data, schema())
    assert data["totals"]["co2_kg"] == pytest.approx(0.9)
    assert data["reuse"][0]["reused_by"] == 2


def test_model_card_round_trips(store: Store) -> None:
    block = render(report(store), "model-card")
    assert block.startswith("---\n") and block.endswith("---\n")
    data = yaml.safe_load(block.strip("-\n"))
    co2 = data["co2_eq_emissions"]
    assert co2["emissions"] == pytest.approx(900.0)  # grams
    assert co2["training_type"] == "pre-training"  # these runs consumed no checkpoint
    assert co2["geographical_location"] == "France"
    assert co2["hardware_used"] == "1× A100-SXM4-80GB"


def test_cli_bad_input_and_files(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    missing = run_cli("report", "--project", "othr", "-o", str(out))
    assert missing.returncode == 2 and "did you mean other" in missing.stderr
    assert not out.exists()
    assert run_cli("report", "--run", "zzzz").returncode == 2
    assert run_cli("report", "--format", "docx").returncode == 2
    ok = run_cli("report", "--project", "other", "--format", "json", "-o", str(out))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(out.read_text())["n_runs"] == 1


def test_secret_on_command_line_never_reaches_a_report(db_path: Path) -> None:
    token = "hf_abcdefghijklmnopqrstuvwx"
    result = run_cli(
        "run", "--project", "secret", "--", sys.executable, "-c", "pass",
        "--hf-token", token, f"--api-key={token}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = wait_synced(db_path)
    assert [r["project"] for r in rows] == ["secret"]
    assert token.encode() not in db_path.read_bytes()
    rep = build_report(Store(str(db_path)).engine, RunFilter(project="secret"))
    for fmt in ("md", "latex", "html", "json", "model-card"):
        assert token not in render(rep, fmt), fmt
    out = run_cli("report", "--project", "secret", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert token not in out.stdout and json.loads(out.stdout)["n_runs"] == 1


def _tagged(store: Store, run_id: str, day: int, gpu_kwh: float, **extra) -> None:
    store.write_record(_run(run_id, "sweep", day, gpu_j=gpu_kwh * 3.6e6, cpu_j=0.0, **extra))


def test_grouping_by_tag_job_and_week(store: Store) -> None:
    # One project: the project cannot split it, the tag "experiment" can.
    for i, (exp, kwh) in enumerate([("a", 1.0), ("a", 2.0), ("b", 4.0)]):
        _tagged(store, f"t{i}" + "0" * 30, 5 + i, kwh, tags={"experiment": exp, "seed": str(i)})
    rep = build_report(
        store.engine, RunFilter(project="sweep"), group_threshold=2, avoided_fn=fake_avoided
    )
    assert rep.grouped_by == "tag:experiment"
    by = {ln.label: ln for ln in rep.lines}
    assert {ln.key for ln in rep.lines} == {"a", "b"}
    assert {k: v.runs for k, v in by.items()} == {"experiment=a": 2, "experiment=b": 1}
    assert by["experiment=a"].it_energy_kwh == pytest.approx(3.0)
    assert by["experiment=a"].energy_kwh == pytest.approx(3.6)  # x PUE 1.2
    assert by["experiment=b"].co2_kg == pytest.approx(4.0 * 1.2 * 0.05)
    assert "| experiment=a | 2 | finished |" in render(rep, "md")


def test_grouping_by_job_then_week(store: Store) -> None:
    for i in range(3):
        _tagged(store, f"j{i}" + "0" * 30, 5 + i, 1.0, job_id=f"job{i // 2}", tags={})
    rep = build_report(
        store.engine, RunFilter(project="sweep"), group_threshold=2, avoided_fn=fake_avoided
    )
    assert rep.grouped_by == "job"
    assert {ln.label: ln.runs for ln in rep.lines} == {"job0": 2, "job1": 1}
    # Nothing splits the two NASTY runs into 2+ groups but their week (Nov 2 and 3 2026:
    # Monday Nov 2 for both) -> one week line holding both runs.
    rep = build_report(
        store.engine, RunFilter(project=NASTY), group_threshold=1, avoided_fn=fake_avoided
    )
    assert rep.grouped_by == "week"
    assert [(ln.label, ln.runs) for ln in rep.lines] == [("2026-11-02", 2)]


def test_reuse_in_plain_words_and_fine_tuning(store: Store) -> None:
    store.write_record(
        {
            **_run("d" * 32, "ft", 6, gpu_j=3.6e6, cpu_j=0.0),
            "links": [{"checkpoint_id": "sha256:abc", "role": "consumed", "path": "/m"}],
        }
    )
    rep = build_report(store.engine, RunFilter(project="ft"), avoided_fn=fake_avoided)
    assert rep.checkpoints_consumed == 1
    text = rep.methodology
    assert "Starting from <b>base</b> avoided an estimated 100 kWh and 5.00 kg CO2e ($20.00)" in (
        text
    )
    assert "started from 1 checkpoint (sha256:abc)" in text and "never subtracted" in text
    # The avoided figures are not netted: the emissions stay those of the run itself.
    assert rep.totals["co2_kg"] == pytest.approx(1.2 * 0.05)
    card = yaml.safe_load(render(rep, "model-card").strip("-\n"))["co2_eq_emissions"]
    assert card["training_type"] == "fine-tuning"
    assert card["emissions"] == pytest.approx(60.0)  # grams
    assert set(card) == {
        "emissions", "source", "training_type", "geographical_location", "hardware_used"
    }  # fmt: skip


def test_reuse_not_available_without_savings(store: Store) -> None:
    def missing(engine, flt, mode="reproduce"):
        raise ImportError("No module named 'ecotrain.savings'")

    rep = build_report(store.engine, RunFilter(project=NASTY), avoided_fn=missing)
    assert rep.reuse == [] and rep.reuse_available is False
    assert "Reuse: not available (ecotrain.savings not installed)." in rep.methodology
    data = json.loads(render(rep, "json"))
    jsonschema.validate(data, schema())
    assert data["reuse_note"] == "not available (ecotrain.savings not installed)"


def test_intensity_year_from_grid_data(store: Store) -> None:
    from ecotrain.grid import data_version, resolve_intensity

    fra = resolve_intensity("FRA")
    store.write_record(
        _run("e" * 32, "grid", 7, gpu_j=3.6e6, cpu_j=0.0, intensity_g_per_kwh=fra.g_per_kwh,
             intensity_source=fra.source)
    )  # fmt: skip
    rep = build_report(store.engine, RunFilter(project="grid"), avoided_fn=fake_avoided)
    assert rep.intensity[0]["year"] == fra.year
    assert rep.grid_data_version == data_version()
    if fra.year:
        assert f"{fra.year} data" in rep.methodology


def test_embodied_off_by_default_stated_and_never_in_operational(store, monkeypatch) -> None:
    """One place per fact: reports take the embodied figure from ecotrain.embodied (issue 17),
    off by default and said to be off; when on, beside the operational CO2e, never in it."""
    from ecotrain.embodied import DEFAULT_KG_PER_GPU_HOUR, OFF

    monkeypatch.delenv("ECOTRAIN_EMBODIED", raising=False)
    off = report(store)
    assert off.embodied is None
    assert OFF in off.methodology
    assert "kg CO2e per GPU-hour" not in off.methodology  # no figure when switched off
    assert "luccioni2022" not in off.sources
    monkeypatch.setenv("ECOTRAIN_EMBODIED", "on")
    on = report(store)
    # 2 runs x 2 GPU-hours at BLOOM's amortisation (11.2 t / 1,082,990 GPU-hours).
    assert on.embodied["gpu_hours"] == pytest.approx(4.0)
    assert on.embodied["kg"] == pytest.approx(4.0 * DEFAULT_KG_PER_GPU_HOUR)
    assert on.totals["co2_kg"] == pytest.approx(off.totals["co2_kg"]) == pytest.approx(0.9)
    assert OFF not in on.methodology
    assert "beside, not included in, the operational CO2e): 41.4 g" in on.methodology
    assert on.methodology.count("Embodied emissions") == 1
    assert "luccioni2022" in on.sources
    assert json.loads(render(on, "json"))["embodied"]["kg"] == pytest.approx(0.04137, rel=1e-3)
    # Switched on, runs without a GPU: a stated zero, never the "off" sentence.
    store.write_record(
        _run("d" * 32, "cpu", 5, gpu_j=0.0, cpu_j=3.6e6, gpu_model=None, gpu_count=None,
             gpu_hours=None)
    )  # fmt: skip
    cpu = build_report(store.engine, RunFilter(project="cpu"), avoided_fn=fake_avoided)
    assert cpu.embodied["kg"] == 0.0 and OFF not in cpu.methodology
    assert "operational CO2e): 0 kg for 0 GPU-hours" in cpu.methodology
