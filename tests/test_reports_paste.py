"""Reports that paste as is: LaTeX compiles and fits in one and two columns with any Unicode
text, user data renders as text, and every format stays bounded at lab scale."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecotrain.reports import FORMATS, render
from ecotrain.reports.model import METHODOLOGY_MAX_WORDS, REUSE_ROWS, bibtex, build_report
from ecotrain.savings import Avoided, Footprint
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from tests.conftest import run_cli
from tests.test_reports import _run

# Arabic (RTL) with a right-to-left mark, CJK, an emoji, a blank line, a tab, LaTeX specials.
HOSTILE = "نموذج\u200f 模型 🚀\n\nline2\t50% & $x$ {y} ~ ^ \\ <b>"
INJECT = "base\n# Owned\n![px](http://127.0.0.1:9/track.png) [link](http://x)"


def hostile_avoided(engine, flt, mode="reproduce"):
    rows = []
    for i in range(25):  # more than REUSE_ROWS, a few of them avoiding nothing
        fp = Footprint(f"sha256:{i:064x}", INJECT, f"model card\n\n## {HOSTILE}", citation=None)
        kwh = 0.0 if i % 5 == 4 else 1000.0 * (i + 1)
        rows.append(
            Avoided(fp.checkpoint_id, f"{INJECT} {i}", fp, mode, kwh, kwh * 0.05, kwh * 0.2, 2,
                    f"training {INJECT} again")
        )  # fmt: skip
    return rows


@pytest.fixture
def hostile(db_path: Path) -> Store:
    s = Store(str(db_path))
    for i, (status, project) in enumerate(
        [("finished", HOSTILE), ("failed", HOSTILE), ("killed", "other"), ("finished", "other")]
    ):
        rec = _run(f"{i:032x}", project, 2 + i, gpu_j=3.6e6 * (i + 1), cpu_j=3.6e5,
                   status=status, region="FRA", pue_source=f"survey\n\n# {HOSTILE}",
                   gpu_model=["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"][i % 2],
                   gpu_count=[4, 2, 8, 1][i])  # fmt: skip
        rec["checkpoints"] = [{"checkpoint_id": "sha256:" + "e" * 64, "name": INJECT}]
        rec["links"] = [
            {"checkpoint_id": "sha256:" + "e" * 64, "role": "consumed", "path": "/m/model.bin"}
        ]
        s.write_record(rec)
    return s


def _report(store: Store, **kw):
    return build_report(store.engine, RunFilter(), avoided_fn=hostile_avoided, **kw)


def test_rows_status_gpus_and_bounded_reuse(hostile: Store) -> None:
    rep = _report(hostile, group_threshold=3)
    assert rep.grouped_by == "project"
    by = {ln.key: ln for ln in rep.lines}
    assert by["other"].status == "1 finished, 1 killed" and by["other"].not_finished == 1
    assert by["other"].gpu == "8× A100-SXM4-80GB, 1× H100 80GB HBM3"
    assert rep.statuses == {"finished": 2, "failed": 1, "killed": 1}
    # Top rows by avoided amount, largest first; zero rows and the rest summed in one row.
    assert len(rep.reuse) == REUSE_ROWS
    avoided = sorted((1000.0 * (i + 1) for i in range(25) if i % 5 != 4), reverse=True)
    assert [r.energy_kwh for r in rep.reuse] == avoided[:REUSE_ROWS]
    assert rep.reuse_others["checkpoints"] == 15
    assert rep.reuse_others["energy_kwh"] == pytest.approx(sum(avoided[REUSE_ROWS:]))
    assert "2 failed, killed or lost" in rep.methodology
    assert len(rep.methodology.split()) <= METHODOLOGY_MAX_WORDS
    assert "\n" not in rep.methodology


def test_markdown_renders_user_data_as_text(hostile: Store) -> None:
    md = render(_report(hostile, group_threshold=3), "md")
    headings = [ln for ln in md.splitlines() if ln.lstrip().startswith("#")]
    assert headings == [
        "## Compute, energy and emissions",
        "### Avoided by reusing checkpoints (mode `reproduce`, not subtracted)",
        "### Methodology",
    ]
    # No image, link or tag can form: every [ ] < > from user data is backslash-escaped.
    assert not re.search(r"(?<!\\)[\[\]<>]", md), re.search(r".{20}(?<!\\)[\[\]<>].{20}", md)
    assert "\\!" not in md and "\\[px\\](http://127.0.0.1:9/track.png)" in md
    html = render(_report(hostile, group_threshold=3), "html")
    assert "<b>" not in html and "&lt;b&gt;" in html


def _pdflatex(tmp: Path, fragment: str, options: str, bib: str | None = None) -> str:
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex is not installed (.ci/run installs it)")
    (tmp / "frag.tex").write_text(fragment)
    tail = "\\bibliographystyle{plain}\\bibliography{refs}" if bib else ""
    (tmp / "doc.tex").write_text(
        f"\\documentclass[{options}]{{article}}\\usepackage{{booktabs,graphicx}}"
        "\\usepackage[T1]{fontenc}\\begin{document}\\section{Compute}Text.\\input{frag}"
        f"{tail}\\end{{document}}\n"
    )
    if bib:
        (tmp / "refs.bib").write_text(bib)
    cmd = [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"]
    for _ in range(2 if bib else 1):
        result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout[-3000:]
        if bib and shutil.which("bibtex"):
            subprocess.run(["bibtex", "doc"], cwd=tmp, capture_output=True, timeout=60)
    return (tmp / "doc.log").read_text(errors="replace")


@pytest.mark.parametrize("options", ["", "twocolumn"])
def test_latex_compiles_and_fits_with_any_unicode(hostile: Store, tmp_path: Path, options) -> None:
    rep = _report(hostile, group_threshold=100)  # one line per run: the hostile labels
    tex = render(rep, "latex", bib=True)
    assert "\\begin{table*}" in tex and "\\label{tab:ecotrain-runs}" in tex
    assert "\\label{tab:ecotrain-reuse}" in tex and "CO$_2$e" in tex
    assert "\\cite{lacoste2019}" in tex and "``reproduce''" in tex
    assert "U+0646" in tex  # Arabic noon, as a code point
    log = _pdflatex(tmp_path, tex, options, bib=bibtex(rep))
    overfull = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert max(overfull, default=0.0) <= 5.0, overfull
    assert "Citation `lacoste2019' undefined" not in log or not shutil.which("bibtex")


def test_cli_writes_bib(hostile: Store, tmp_path: Path) -> None:
    bib = tmp_path / "refs.bib"
    # Embodied emissions switched on: their figure rests on (and cites) the BLOOM paper.
    out = run_cli("report", "--format", "latex", "--bib", str(bib), env={"ECOTRAIN_EMBODIED": "on"})
    assert out.returncode == 0, out.stderr
    keys = re.findall(r"@\w+\{(\w+),", bib.read_text())
    assert keys[:2] == ["ecotrain", "lacoste2019"] and "luccioni2022" in keys
    assert set(re.findall(r"\\cite\{(\w+)\}", out.stdout)) <= set(keys)


@pytest.fixture(scope="module")
def lab_db(tmp_path_factory) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from gen_dashboard_db import generate

    path = tmp_path_factory.mktemp("lab") / "lab.db"
    generate(path, 5000, 300)
    return path


# Bytes per format for one project of a lab-scale store: a table of at most 50 lines, at
# most REUSE_ROWS + 1 reuse rows, a bounded paragraph.
BOUNDS = {"md": 12_000, "latex": 14_000, "html": 32_000, "json": 48_000, "model-card": 1_000}


@pytest.mark.parametrize("fmt", FORMATS)
def test_bounded_at_lab_scale(lab_db: Path, fmt: str) -> None:
    engine = Store(str(lab_db)).engine
    with engine.connect() as conn:
        project = conn.exec_driver_sql(
            "SELECT project FROM runs GROUP BY project ORDER BY count(*) DESC LIMIT 1"
        ).scalar()
    for flt in (RunFilter(project=project), RunFilter()):
        rep = build_report(engine, flt)
        text = render(rep, fmt)
        assert len(text) <= BOUNDS[fmt], (fmt, len(text))
        assert len(rep.methodology.split()) <= METHODOLOGY_MAX_WORDS
        assert len(rep.reuse) <= REUSE_ROWS and len(rep.lines) <= 50
        # No e-notation in our figures (a tag value such as lr=1e-4 is the user's text).
        visible = re.sub(r"<style>.*?</style>|<[^>]+>|\\allowbreak\{\}", "", text, flags=re.S)
        figures = re.sub(r"=[\w.+-]+", "", visible)
        assert not re.search(r"\d[eE][+-]?\d", figures) or fmt == "json"
        assert "None" not in text or fmt == "json"
        if fmt == "json":
            assert json.loads(text)["n_runs"] == rep.n_runs
        if fmt == "model-card":
            assert yaml.safe_load(text.strip("-\n"))["co2_eq_emissions"]["emissions"] > 0
