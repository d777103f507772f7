"""Reports for papers: one model (model.py), five renderers."""

from __future__ import annotations

FORMATS = ("md", "latex", "html", "json", "model-card")


def render(report, fmt: str, bib: bool = False) -> str:
    """Render ``report`` in ``fmt`` (one of FORMATS); ``bib``: LaTeX cites with \\cite."""
    if fmt == "md":
        from ecotrain.reports.markdown import render as r
    elif fmt == "latex":
        from ecotrain.reports.latex import render as r
    elif fmt == "html":
        from ecotrain.reports.html import render as r
    elif fmt == "json":
        from ecotrain.reports.json import render as r
    elif fmt == "model-card":
        from ecotrain.reports.modelcard import render as r
    else:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt == "latex":
        return r(report, bib=bib)
    return r(report)
