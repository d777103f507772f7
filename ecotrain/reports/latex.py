r"""LaTeX: booktabs tables and the methodology paragraph, as an \input-able fragment.

Pastes as is into `article` and into a two-column (`article,twocolumn`, ICML-style) paper:
the tables are `table*` (full text width in two columns) and each is scaled down to
\linewidth only if it would be wider. Any Unicode text compiles under pdflatex: user text is
put on one line, LaTeX specials are escaped, accented Latin letters lose their accents and
other scripts (Arabic, CJK, emoji) are written as their code points (U+0627), said in a note.
Needs \usepackage{booktabs} and \usepackage{graphicx}.
"""

from __future__ import annotations

import re
import unicodedata

from ecotrain.reports.model import Report, clean, methodology, status_text
from ecotrain.units import column_unit, fmt_in, fmt_number, fmt_usd

_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': "''",
}  # fmt: skip
_CITE = re.compile(r"@@CITE:([a-z0-9]+)@@")


_SYMBOLS = {"×": r"$\times$", "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''"}
_BREAK_AFTER = set("/._:=,;)")  # not "-": TeX breaks after a hyphen by itself
_LONG = 16  # a word longer than this may break anywhere (URLs, hashes, code points)


def _ascii(ch: str) -> tuple[str, bool]:
    """An ASCII stand-in for one character, and whether it had to be a code point."""
    if ch.isascii():
        return ch, False
    plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    if plain and plain.isprintable():
        return plain, False
    return f"U+{ord(ch):04X}", True


def escape_note(text: object) -> tuple[str, bool]:
    """``text`` safe for pdflatex, and whether some characters became code points.

    Long words get break points (\\allowbreak), so a URL or a name in a narrow column
    wraps instead of running into the next column."""
    out, coded, run = [], False, 0
    text = clean(text)
    for i, ch in enumerate(text):
        if ch in _SYMBOLS:
            out.append(_SYMBOLS[ch])
            run = 0 if ch == "×" else run + 1
            continue
        plain, was_coded = _ascii(ch)
        coded |= was_coded
        out.append(f"[{plain}]" if was_coded else "".join(_SPECIAL.get(c, c) for c in plain))
        run = 0 if ch.isspace() else run + 1
        last = i + 1 == len(text) or text[i + 1].isspace()
        if run and not last and (was_coded or ch in _BREAK_AFTER or run >= _LONG):
            out.append("\\allowbreak{}")
            run = 0
    return "".join(out), coded


def escape(text: object) -> str:
    """Escape a user string for pdflatex: one line, specials escaped, ASCII only."""
    return escape_note(text)[0]


def _co2e(text: str) -> str:
    return text.replace("CO2e", "CO$_2$e")


def _selection(report: Report) -> str:
    return ", ".join(f"{k}={v}" for k, v in report.selection.items()) or "all runs"


def _fit(tabular: list[str]) -> list[str]:
    r"""A tabular, scaled down to \linewidth only when wider (never scaled up)."""
    return [
        r"\ifdefined\ecotrainbox\else\newsavebox{\ecotrainbox}\fi",
        r"\sbox{\ecotrainbox}{%",
        *tabular,
        "}%",
        r"\ifdim\wd\ecotrainbox>\linewidth"
        r"\resizebox{\linewidth}{!}{\usebox{\ecotrainbox}}\else\usebox{\ecotrainbox}\fi",
    ]


def _measured_word(report: Report) -> str:
    """ "measured", "modelled" or "measured and modelled", as the runs' methods were."""
    methods = {m for c in report.components for m, n in c["methods"].items() if n}
    hard = methods & {"measured", "integrated"}
    soft = methods & {"modelled", "replayed", "imported"}
    if hard and soft:
        return "measured and partly modelled with ecotrain"
    if hard:
        return "measured with ecotrain"
    if "replayed" in soft:
        return "replayed from recorded traces by ecotrain"
    if "imported" in soft and "modelled" not in soft:
        return "imported into ecotrain"
    return "modelled by ecotrain (no hardware energy counters)"


def render(report: Report, bib: bool = False) -> str:
    r"""The report as a LaTeX fragment (needs booktabs and graphicx); ``bib``: cite the
    sources with \cite{key} (the keys of ``ecotrain report --bib``)."""
    t = report.totals
    head = "Group" if report.grouped_by else "Run"
    if report.grouped_by and report.grouped_by.startswith("tag:"):
        head = "Tag"
    elif report.grouped_by in ("project", "job", "week"):
        head = report.grouped_by.capitalize()
    coded = False

    def esc(text: object) -> str:
        nonlocal coded
        out, was = escape_note(text)
        coded |= was
        return out

    e_unit = column_unit([ln.energy_kwh for ln in report.lines] + [t["energy_kwh"]], "energy")
    c_unit = column_unit([ln.co2_kg for ln in report.lines] + [t["co2_kg"]], "co2")
    rows = [
        f"\\raggedright {esc(ln.label)} & {ln.runs:,} & {esc(ln.status)} & {esc(ln.gpu)} & "
        f"{fmt_number(ln.gpu_hours)} & {fmt_in(ln.energy_kwh, e_unit)} & "
        f"{fmt_in(ln.co2_kg, c_unit)} & {esc(fmt_usd(ln.cost_usd))} \\\\"
        for ln in report.lines
    ]
    status = esc(status_text(report.statuses))
    out = [
        "% Generated by ecotrain; needs \\usepackage{booktabs} and \\usepackage{graphicx}",
        "\\begin{table*}[t]",
        "\\centering",
        "\\small",
        *_fit(
            [
                "\\begin{tabular}{p{0.26\\linewidth}rlp{0.14\\linewidth}rrrr}",
                "\\toprule",
                f"{head} & Runs & Status & GPUs & GPU-h & Energy ({e_unit.symbol}) & "
                f"CO$_2$e ({c_unit.symbol}) & Cost \\\\",
                "\\midrule",
                *rows,
                "\\midrule",
                f"Total & {report.n_runs:,} & {status} & & {fmt_number(t['gpu_hours'])} & "
                f"{fmt_in(t['energy_kwh'], e_unit)} & {fmt_in(t['co2_kg'], c_unit)} & "
                f"{esc(fmt_usd(t['cost_usd']))} \\\\",
                "\\bottomrule",
                "\\end{tabular}",
            ]
        ),
        "\\caption{Compute, facility energy, CO$_2$e and cost of the training runs "
        f"({esc(_selection(report))}; {_measured_word(report)}). Energy is facility energy "
        "(IT energy times PUE).}",
        "\\label{tab:ecotrain-runs}",
        "\\end{table*}",
        "",
    ]
    if report.reuse:
        ae = column_unit([r.energy_kwh for r in report.reuse], "energy")
        ac = column_unit([r.co2_kg for r in report.reuse], "co2")
        reuse_rows = [
            f"\\raggedright {esc(r.name)} & \\raggedright {esc(r.footprint_source)} & "
            f"{r.reused_by:,} & {fmt_in(r.energy_kwh, ae)} & {fmt_in(r.co2_kg, ac)} & "
            f"{esc(fmt_usd(r.cost_usd))} \\\\"
            for r in report.reuse
        ]
        o = report.reuse_others
        if o:
            reuse_rows.append(
                f"{o['checkpoints']:,} others & & {o['reused_by']:,} & "
                f"{fmt_in(o['energy_kwh'], ae)} & {fmt_in(o['co2_kg'], ac)} & "
                f"{esc(fmt_usd(o['cost_usd']))} \\\\"
            )
        out += [
            "\\begin{table*}[t]",
            "\\centering",
            "\\small",
            *_fit(
                [
                    "\\begin{tabular}{p{0.26\\linewidth}p{0.26\\linewidth}rrrr}",
                    "\\toprule",
                    "Reused checkpoint & Footprint from & Reused by & "
                    f"Avoided energy ({ae.symbol}) & Avoided CO$_2$e ({ac.symbol}) & "
                    "Avoided cost \\\\",
                    "\\midrule",
                    *reuse_rows,
                    "\\bottomrule",
                    "\\end{tabular}",
                ]
            ),
            "\\caption{What reusing checkpoints avoided, under the counterfactual "
            f"``{esc(report.mode)}'' (producing each checkpoint again); reported beside the "
            "emissions, never subtracted. Largest first.}",
            "\\label{tab:ecotrain-reuse}",
            "\\end{table*}",
            "",
        ]
    # With --bib, the sources are cited by key; else the paragraph names them inline.
    text = (
        " ".join(
            filter(None, (methodology(report, cite=lambda k: f"@@CITE:{k}@@"), report.method_notes))
        )
        if bib
        else report.methodology
    )
    pieces = _CITE.split(text.replace(" @@CITE:", "@@CITE:"))  # text, key, text, key, ..., text
    para = "".join(
        f"~\\cite{{{piece}}}" if i % 2 else _co2e(esc(piece)) for i, piece in enumerate(pieces)
    )
    para = re.sub(r"'([a-z-]+)'", r"``\1''", para)  # 'reproduce' -> ``reproduce''
    out += ["\\paragraph{Methodology.}", para, ""]
    if coded:
        out += [
            "% Characters pdflatex cannot typeset are written as their code points [U+XXXX].",
            "",
        ]
    return "\n".join(out)
