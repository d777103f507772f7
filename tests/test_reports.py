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
from ecotrain.reports.jsonfmt import schema
from ecotrain.reports.latex import escape
from ecotrain.reports.model import build_report
from ecotrain.savings import Avoided, Footprint
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from tests.conftest import run_cli

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
            ["x", "y"],
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
        "50 g CO2e/kWh",
        "test grid 2023",
        "embodied",
        "never subtracted",
        "0.9 kg CO2e",
        "test tariff",
    ):
        assert needle in text, needle


def test_grouping_when_many_runs(store: Store) -> None:
    rep = build_report(store.engine, RunFilter(), group_threshold=2, avoided_fn=fake_avoided)
    assert rep.grouped_by == "project"
    assert {line.label: line.runs for line in rep.lines} == {NASTY: 2, "other": 1}


def test_markdown_golden(store: Store) -> None:
    md = render(report(store), "md")
    assert "| **Total** | **2** | | **4.00** | **18.00 kWh** | **900 g** | **$3.60** |" in md
    assert "| GPU | 13.00 kWh | measured (2) |" in md
    assert "### Methodology" in md and "avoided" in md


def test_latex_escapes_and_compiles(store: Store, tmp_path: Path) -> None:
    assert escape("a_b%c&d#e$f{g}h~i^j\\k") == (
        r"a\_b\%c\&d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    tex = render(report(store), "latex")
    assert "\\toprule" in tex and "18" in tex and NASTY not in tex
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex is not installed (.ci/run installs it)")
    (tmp_path / "frag.tex").write_text(tex)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\usepackage[T1]{fontenc}"
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
    assert "18.00 kWh" in page


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
    assert co2["geographical_location"] == "FRA"
    assert "A100" in co2["hardware_used"]


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


def test_secret_on_command_line_never_reaches_a_report(db_path: Path, tmp_path: Path) -> None:
    token = "hf_abcdefghijklmnopqrstuvwxyz123456"
    result = run_cli(
        "run",
        "--project",
        "secret",
        "--",
        sys.executable,
        "-c",
        "pass",
        "--hf-token",
        token,
        f"--api-key={token}",
    )
    assert result.returncode == 0, result.stderr
    assert run_cli("sync", "-q").returncode == 0
    assert token.encode() not in db_path.read_bytes()
    for fmt in ("md", "latex", "html", "json", "model-card"):
        out = run_cli("report", "--project", "secret", "--format", fmt)
        assert out.returncode == 0, out.stderr
        assert token not in out.stdout
    shown = run_cli("runs", "--json")
    assert token not in shown.stdout and "***" in shown.stdout
