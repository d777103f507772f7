"""Reports at lab scale: size, paragraph length and LaTeX fit over a large store.

    python bench/gen_dashboard_db.py /tmp/dash-bench.db        # 100,000 runs
    python bench/report_lab_scale.py /tmp/dash-bench.db

For the largest project and for all runs: build_report time, table lines, reuse rows,
methodology words, bytes per format; then the LaTeX fragment (with --bib) compiled with
pdflatex + bibtex in `article` and in `article,twocolumn`: exit code, pages, the largest
overfull box and undefined citations. Issue 14's bounds: methodology <= 250 words, reuse
rows <= 10 + "N others", no overfull box beyond a few points.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ecotrain.reports import FORMATS, render
from ecotrain.reports.model import bibtex, build_report
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter

DOC = (
    "\\documentclass[{opts}]{{article}}\\usepackage{{booktabs,graphicx}}"
    "\\usepackage[T1]{{fontenc}}\\begin{{document}}\\input{{frag}}"
    "\\bibliographystyle{{plain}}\\bibliography{{refs}}\\end{{document}}\n"
)


def compile_latex(tex: str, bib: str, opts: str) -> str:
    """One line: how the fragment compiles in ``article[opts]``."""
    if not shutil.which("pdflatex"):
        return "pdflatex not installed"
    d = Path(tempfile.mkdtemp(prefix="ecotrain-tex-"))
    (d / "frag.tex").write_text(tex)
    (d / "refs.bib").write_text(bib)
    (d / "doc.tex").write_text(DOC.format(opts=opts))
    latex = ["pdflatex", "-interaction=nonstopmode", "doc.tex"]
    for cmd in (latex, ["bibtex", "doc"], latex, latex):
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=120)
    log = (d / "doc.log").read_text(errors="replace")
    over = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt", log)]
    pages = re.search(r"Output written on doc.pdf \((\d+) page", r.stdout)
    shutil.rmtree(d, ignore_errors=True)
    return (
        f"rc {r.returncode}, {pages.group(1) if pages else '?'} page(s), max overfull "
        f"{max(over, default=0.0):.1f} pt, {log.count('undefined')} undefined reference(s)"
    )


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    args = ap.parse_args()
    engine = Store(args.db).engine
    with engine.connect() as conn:
        project = conn.exec_driver_sql(
            "SELECT project FROM runs GROUP BY project ORDER BY count(*) DESC LIMIT 1"
        ).scalar()
    for label, flt in ((f"project {project}", RunFilter(project=project)), ("all", RunFilter())):
        t0 = time.perf_counter()
        rep = build_report(engine, flt)
        built = time.perf_counter() - t0
        others = rep.reuse_others["checkpoints"] if rep.reuse_others else 0
        print(
            f"\n{label}: {rep.n_runs:,} runs, build_report {built:.2f} s, {len(rep.lines)} lines "
            f"(grouped by {rep.grouped_by or 'run'}), {len(rep.reuse)} reuse rows + {others} "
            f"others, methodology {len(rep.methodology.split())} words"
        )
        for fmt in FORMATS:
            t0 = time.perf_counter()
            text = render(rep, fmt)
            print(f"  {fmt:<11}{len(text):>8,} bytes  {(time.perf_counter() - t0) * 1000:5.0f} ms")
        tex = render(rep, "latex", bib=True)
        for opts in ("", "twocolumn"):
            print(
                f"  article{',' + opts if opts else '':<11} {compile_latex(tex, bibtex(rep), opts)}"
            )


if __name__ == "__main__":
    main()
