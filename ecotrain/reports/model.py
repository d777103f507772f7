"""The one report model: what a paper's compute statement says, built from the store.

Every renderer (Markdown, LaTeX, HTML, JSON, model card) reads this model and nothing
else, so the five outputs always agree. Aggregations run in SQL (ecotrain.store.aggregates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.engine import Engine

from ecotrain import __version__
from ecotrain.store import aggregates as agg
from ecotrain.store.queries import RunFilter, effective_status
from ecotrain.store.records import utcnow
from ecotrain.store.schema import checkpoints, run_checkpoints, runs
from ecotrain.units import (
    fmt_co2,
    fmt_energy,
    fmt_number,
    fmt_usd,
)

SCHEMA_VERSION = "1.3"  # 1.1: grid_data_version, reuse_note, intensity year; 1.2: statuses,
# per-line status and GPU list, bounded reuse rows (reuse_others), consumed names, sources;
# 1.3: embodied (ecotrain.embodied, beside the totals; null when switched off), method_notes


class NoRuns(LookupError):
    """No run matches the selection."""


@dataclass
class Line:
    """One row of the report's table: a run, or a group of runs."""

    label: str
    runs: int
    started: str | None
    gpu: str | None
    gpu_hours: float
    it_energy_kwh: float
    energy_kwh: float  # facility
    co2_kg: float
    cost_usd: float
    gpu_kwh: float = 0.0
    cpu_kwh: float = 0.0
    ram_kwh: float = 0.0
    status: str = ""  # "finished", or "9 finished, 1 failed"
    not_finished: int = 0  # failed, killed, lost or still running
    key: str | None = None  # the run id (one line per run) or the raw group value


@dataclass
class Reuse:
    """One reused checkpoint and what reusing it avoided."""

    name: str
    checkpoint_id: str
    footprint_source: str
    citation: str | None
    reused_by: int
    energy_kwh: float | None
    co2_kg: float | None
    cost_usd: float | None
    assumption: str


@dataclass
class Report:
    """Everything a compute/energy/carbon statement needs, with its provenance."""

    schema_version: str
    generated_at: str
    ecotrain_version: str
    selection: dict[str, Any]
    n_runs: int
    first_start: str | None
    last_end: str | None
    totals: dict[str, float]
    components: list[dict[str, Any]]
    hardware: list[dict[str, Any]]
    pue: list[dict[str, Any]]
    intensity: list[dict[str, Any]]
    price: list[dict[str, Any]]
    data_versions: list[str]  # what the runs were accounted with
    grid_data_version: str | None  # the grid data installed now (grid.data_version())
    grouped_by: str | None
    lines: list[Line]
    mode: str
    reuse_available: bool
    reuse: list[Reuse] = field(default_factory=list)
    reuse_note: str | None = None  # why reuse is not reported, when it is not
    checkpoints_consumed: int = 0  # distinct checkpoints the runs started from
    consumed_names: list[str] = field(default_factory=list)  # the first few, by name
    statuses: dict[str, int] = field(default_factory=dict)  # runs per status
    reuse_others: dict[str, Any] | None = None  # rows beyond the top REUSE_ROWS, summed
    sources: list[str] = field(default_factory=list)  # citation keys the methodology uses
    methodology: str = ""
    # Embodied emissions (ecotrain.embodied) when switched on, else None: beside the totals,
    # never part of them.
    embodied: dict[str, Any] | None = None
    # Time-resolved CO2e and per-unit figures (ecotrain.efficiency): the end of the
    # methodology paragraph, also given apart for JSON readers.
    method_notes: str = ""

    @property
    def consumed_checkpoints(self) -> bool:
        """Whether the runs started from a checkpoint (fine-tuning rather than pre-training)."""
        return self.checkpoints_consumed > 0

    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-able data."""
        return asdict(self)


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else value


# Tag keys whose values name an experiment group, preferred when several keys would do.
GROUP_TAG_HINTS = ("experiment", "exp", "group", "sweep", "stage", "model", "task")


def _distinct(conn, expr, flt: RunFilter) -> int:
    return int(conn.execute(select(func.count(distinct(expr))).where(flt.where())).scalar() or 0)


def _group_key(engine: Engine, flt: RunFilter, threshold: int) -> tuple[str, Any]:
    """The experiment grouping for a selection too large to list run by run.

    The first of project, job, a tag key, that splits the runs into 2..threshold groups;
    else the week the runs started in. Distinct counts run in SQL; only the tag *keys* are
    read from a bounded sample of rows (their values are grouped in SQL).
    """
    with engine.connect() as conn:
        candidates: list[tuple[str, Any]] = [
            ("project", runs.c.project),
            ("job", runs.c.job_id),
        ]
        keys: dict[str, int] = {}
        for tags in conn.execute(
            select(runs.c.tags).where(flt.where(), runs.c.tags.isnot(None)).limit(500)
        ).scalars():
            for key in tags if isinstance(tags, dict) else ():
                keys[key] = keys.get(key, 0) + 1
        ordered = sorted(
            keys, key=lambda k: (k.lower() not in GROUP_TAG_HINTS, -keys[k], k.lower())
        )
        candidates += [(f"tag:{k}", runs.c.tags[k].as_string()) for k in ordered[:10]]
        for name, expr in candidates:
            if 2 <= _distinct(conn, expr, flt) <= threshold:
                return name, expr
    return "week", agg.week_start(engine)


short_gpu = agg.short_gpu  # one place for the reader's GPU name


def gpu_list(pairs: list[tuple[str | None, int | None]]) -> str:
    """Every accelerator type with how many were used at once: "4× A100-80GB, 2× H100".

    ``pairs`` are (model, GPUs in a run); the count per model is the most any one run used,
    the models ordered by that count. Runs without a GPU say "CPU only" if nothing else ran.
    """
    most: dict[str, int] = {}
    for model, count in pairs:
        if not model:
            continue
        name = short_gpu(model)
        most[name] = max(most.get(name, 0), int(count or 1))
    if not most:
        return "CPU only"
    return ", ".join(f"{n}× {m}" for m, n in sorted(most.items(), key=lambda kv: (-kv[1], kv[0])))


def status_text(counts: dict[str, int]) -> str:
    """ "finished" when every run finished, else "9 finished, 1 failed" (largest first)."""
    if set(counts) == {"finished"}:
        return "finished"
    ordered = sorted(counts.items(), key=lambda kv: (kv[0] != "finished", -kv[1], kv[0]))
    return ", ".join(f"{n:,} {s}" for s, n in ordered)


def _run_label(started: Any, project: str | None, tags: Any, command: Any) -> str:
    """One run, as a reader tells it apart: its start, project, and tags (else its script)."""
    when = started.strftime("%Y-%m-%d %H:%M") if isinstance(started, datetime) else str(started)
    if isinstance(tags, dict) and tags:
        what = " ".join(f"{k}={v}" for k, v in sorted(tags.items()))
    elif isinstance(command, list) and command:
        script = next((str(c) for c in command[1:] if not str(c).startswith("-")), command[0])
        what = str(script).rsplit("/", 1)[-1]
    else:
        what = ""
    return " ".join(p for p in (when, project or "", what) if p)


def _lines(engine: Engine, flt: RunFilter, n_runs: int, threshold: int) -> tuple[str | None, list]:
    j = 3.6e6
    cols = [
        func.count().label("runs"),
        func.min(runs.c.started_at).label("started"),
        func.coalesce(func.sum(runs.c.gpu_hours), 0.0).label("gpu_hours"),
        func.coalesce(func.sum(runs.c.it_energy_kwh), 0.0).label("it_energy_kwh"),
        func.coalesce(func.sum(runs.c.facility_energy_kwh), 0.0).label("energy_kwh"),
        func.coalesce(func.sum(runs.c.co2_kg), 0.0).label("co2_kg"),
        func.coalesce(func.sum(runs.c.cost_usd), 0.0).label("cost_usd"),
        (func.coalesce(func.sum(runs.c.gpu_energy_j), 0.0) / j).label("gpu_kwh"),
        (func.coalesce(func.sum(runs.c.cpu_energy_j), 0.0) / j).label("cpu_kwh"),
        (func.coalesce(func.sum(runs.c.ram_energy_j), 0.0) / j).label("ram_kwh"),
    ]
    if n_runs <= threshold:
        grouped, key = None, runs.c.run_id
    else:
        grouped, key = _group_key(engine, flt, threshold)
    label = key.label("label")
    stmt = (
        select(label, *cols).where(flt.where()).group_by(key).order_by(func.min(runs.c.started_at))
    )
    status = effective_status()
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        statuses: dict[Any, dict[str, int]] = {}
        for k, st, n in conn.execute(
            select(key, status, func.count()).where(flt.where()).group_by(key, status)
        ):
            statuses.setdefault(k, {})[st or "unknown"] = n
        gpus: dict[Any, list] = {}
        for k, model, count in conn.execute(
            select(key, runs.c.gpu_model, func.max(runs.c.gpu_count))
            .where(flt.where())
            .group_by(key, runs.c.gpu_model)
        ):
            gpus.setdefault(k, []).append((model, count))
        about: dict[Any, tuple] = {}
        if grouped is None:
            for rid, project, tags, command in conn.execute(
                select(runs.c.run_id, runs.c.project, runs.c.tags, runs.c.command).where(
                    flt.where()
                )
            ):
                about[rid] = (project, tags, command)
    prefix = grouped[4:] + "=" if grouped and grouped.startswith("tag:") else ""
    if len({a[0] for a in about.values()}) == 1:  # one project: the labels need not repeat it
        about = {k: (None, *a[1:]) for k, a in about.items()}
    out = []
    for r in rows:
        raw = r.pop("label")
        counts = statuses.get(raw, {})
        r["status"] = status_text(counts)
        r["not_finished"] = sum(n for s, n in counts.items() if s != "finished")
        r["gpu"] = gpu_list(gpus.get(raw, []))
        r["key"] = None if raw is None else str(raw)
        if grouped is None:
            r["label"] = _run_label(r["started"], *about.get(raw, (None, None, None)))
        elif raw is None:
            r["label"] = "(none)"
        else:
            r["label"] = prefix + str(raw)[: 10 if grouped == "week" else None]
        r["started"] = _iso(r["started"])
        out.append(Line(**r))
    return grouped, out


def _with_years(intensity: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the data year to each stored intensity that today's grid data reproduces."""
    from ecotrain.grid import UnknownRegion, resolve_intensity

    for row in intensity:
        row["year"] = None
        try:
            now = resolve_intensity(row["region"]) if row["region"] else None
        except (UnknownRegion, OSError, ValueError):
            now = None
        value = row["intensity_g_per_kwh"]
        if now is not None and value is not None and abs(now.g_per_kwh - value) < 1e-6:
            row["year"] = now.year
    return intensity


def _grid_data_version() -> str | None:
    from ecotrain.grid import data_version

    try:
        return data_version()
    except (OSError, ValueError):
        return None


REUSE_ROWS = 10  # reuse table rows; the rest are summed into one "N others" row
NAMES_LISTED = 3  # checkpoints, regions, PUE values named in the methodology before "N more"


def clean(text: Any) -> str:
    """User text on one line: runs of whitespace (newlines, tabs, blank lines) become one space,
    control and bidi-format characters are dropped. Renderers then escape it for their format."""
    import unicodedata

    kept = "".join(
        ch for ch in str(text) if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return " ".join(kept.split())


def build_report(
    engine: Engine,
    flt: RunFilter,
    mode: str = "reproduce",
    group_threshold: int = 50,
    avoided_fn: Any = None,
) -> Report:
    """The report over the runs matching ``flt`` (raises NoRuns when there are none)."""
    totals = agg.totals(engine, flt)
    if not totals["runs"]:
        raise NoRuns("no runs match this selection")
    in_scope = select(runs.c.run_id).where(flt.where())
    consumed_links = and_(
        run_checkpoints.c.role == "consumed", run_checkpoints.c.run_id.in_(in_scope)
    )
    with engine.connect() as conn:
        first, last, duration = conn.execute(
            select(
                func.min(runs.c.started_at),
                func.max(runs.c.ended_at),
                func.coalesce(func.sum(runs.c.duration_s), 0.0),
            ).where(flt.where())
        ).one()
        hardware = [
            dict(r._mapping)
            for r in conn.execute(
                select(
                    runs.c.gpu_model,
                    runs.c.gpu_count,
                    runs.c.cpu_model,
                    func.count().label("runs"),
                    func.coalesce(func.sum(runs.c.gpu_hours), 0.0).label("gpu_hours"),
                )
                .where(flt.where())
                .group_by(runs.c.gpu_model, runs.c.gpu_count, runs.c.cpu_model)
                .order_by(func.count().desc())
                .limit(20)
            )
        ]
        consumed = conn.execute(
            select(func.count(distinct(run_checkpoints.c.checkpoint_id))).where(consumed_links)
        ).scalar()
        # The most-used checkpoints the runs started from, by name, for "started from N: ...".
        uses = func.count(distinct(run_checkpoints.c.run_id))
        consumed_names = [
            clean(name or agg.short_id(cid))
            for cid, name, _ in conn.execute(
                select(run_checkpoints.c.checkpoint_id, checkpoints.c.name, uses)
                .select_from(
                    run_checkpoints.outerjoin(
                        checkpoints,
                        checkpoints.c.checkpoint_id == run_checkpoints.c.checkpoint_id,
                    )
                )
                .where(consumed_links)
                .group_by(run_checkpoints.c.checkpoint_id, checkpoints.c.name)
                .order_by(uses.desc(), run_checkpoints.c.checkpoint_id)
                .limit(NAMES_LISTED)
            )
        ]
        statuses = {
            str(st or "unknown"): int(n)
            for st, n in conn.execute(
                select(effective_status(), func.count())
                .where(flt.where())
                .group_by(effective_status())
            )
        }
    sources = agg.sources_in_use(engine, flt)
    grouped, lines = _lines(engine, flt, totals["runs"], group_threshold)
    reuse, available = [], True
    try:
        fn = avoided_fn
        if fn is None:
            from ecotrain.savings import avoided_for_runs as fn
        for a in fn(engine, flt, mode=mode):
            reuse.append(
                Reuse(
                    name=clean(a.name or a.checkpoint_id[:19]),
                    checkpoint_id=a.checkpoint_id,
                    footprint_source=clean(a.footprint.source),
                    citation=clean(a.footprint.citation) if a.footprint.citation else None,
                    reused_by=a.reuses,
                    energy_kwh=a.energy_kwh,
                    co2_kg=a.co2_kg,
                    cost_usd=a.cost_usd,
                    assumption=clean(a.assumption),
                )
            )
    except ImportError:
        available = False
    reuse, others = _top_reuse(reuse)
    for row in sources["pue"]:
        row["pue_source"] = clean(row["pue_source"]) if row["pue_source"] else None
    for row in sources["intensity"]:
        for k in ("region", "intensity_source"):
            row[k] = clean(row[k]) if row[k] else None
    for row in sources["price"]:
        row["price_source"] = clean(row["price_source"]) if row["price_source"] else None
    report = Report(
        schema_version=SCHEMA_VERSION,
        generated_at=_iso(utcnow()),
        ecotrain_version=__version__,
        selection={
            k: (_iso(v) if isinstance(v, datetime) else v) for k, v in asdict(flt).items() if v
        },
        n_runs=totals["runs"],
        first_start=_iso(first),
        last_end=_iso(last),
        totals={
            **{k: float(v or 0.0) for k, v in totals.items() if k != "runs"},
            "duration_h": float(duration or 0.0) / 3600,
        },
        components=agg.component_split(engine, flt),
        hardware=hardware,
        pue=sources["pue"],
        intensity=_with_years(sources["intensity"]),
        price=sources["price"],
        data_versions=sorted(
            {
                f"ecotrain {v['ecotrain_version']}"
                for v in sources["versions"]
                if v["ecotrain_version"]
            }
            | {v["data_version"] for v in sources["versions"] if v["data_version"]}
        ),
        grid_data_version=_grid_data_version(),
        grouped_by=grouped,
        lines=lines,
        mode=mode,
        reuse_available=available,
        reuse_note=None if available else "not available (ecotrain.savings not installed)",
        reuse=reuse,
        reuse_others=others,
        checkpoints_consumed=int(consumed or 0),
        consumed_names=consumed_names,
        statuses=statuses,
    )
    from ecotrain.config import load_settings
    from ecotrain.embodied import embodied

    figure = embodied(report.totals.get("gpu_hours", 0.0), load_settings())
    report.embodied = asdict(figure) if figure is not None else None
    report.sources = used_sources(report)
    from ecotrain.efficiency import report_sentences  # time-resolved, per unit of work

    report.method_notes = report_sentences(engine, flt, report.n_runs)
    report.methodology = methodology(report)
    return report


def _top_reuse(rows: list[Reuse]) -> tuple[list[Reuse], dict[str, Any] | None]:
    """The REUSE_ROWS rows that avoided most (CO2e, then energy), and the rest summed.

    Rows that avoided nothing (a checkpoint produced within the scope) or an unknown amount
    go to the summed row: the table answers "what did reuse save", largest first."""
    ordered = sorted(rows, key=lambda r: (-(r.co2_kg or 0.0), -(r.energy_kwh or 0.0), r.name))
    top = [r for r in ordered if (r.co2_kg or 0.0) > 0 or (r.energy_kwh or 0.0) > 0]
    if not top:  # nothing avoided: still show which checkpoints were reused (a few)
        top = ordered[:REUSE_ROWS]
    top = top[:REUSE_ROWS]
    rest = ordered[len(top) :]
    if not rest:
        return top, None

    def total(attr: str) -> float | None:
        known = [getattr(r, attr) for r in rest if getattr(r, attr) is not None]
        return sum(known) if known else None

    return top, {
        "checkpoints": len(rest),
        "reused_by": sum(r.reused_by for r in rest),
        "energy_kwh": total("energy_kwh"),
        "co2_kg": total("co2_kg"),
        "cost_usd": total("cost_usd"),
    }


# -- the methodology paragraph ----------------------------------------------------------------
# Sources the paragraph cites: key -> (how it reads inline, BibTeX entry). `--bib` writes the
# entries the report used; LaTeX then cites them with \cite{key}.
SOURCES: dict[str, tuple[str, str]] = {
    "ecotrain": (
        "ecotrain",
        "@software{ecotrain,\n  title = {ecotrain: energy, emissions and cost of machine "
        "learning training runs},\n  note = {Version {VERSION}},\n  year = {2026}\n}",
    ),
    "lacoste2019": (
        "Lacoste et al., 2019",
        "@article{lacoste2019,\n  title = {Quantifying the Carbon Emissions of Machine "
        "Learning},\n  author = {Lacoste, Alexandre and Luccioni, Alexandra and Schmidt, "
        "Victor and Dandres, Thomas},\n  journal = {arXiv preprint arXiv:1910.09700},\n"
        "  year = {2019}\n}",
    ),
    "codecarbon": (
        "Courty et al., 2024",
        "@software{codecarbon,\n  title = {{CodeCarbon}: estimate and track carbon emissions "
        "from machine learning computing},\n  author = {Courty, Beno{\\^\\i}t and others},\n"
        "  url = {https://github.com/mlco2/codecarbon},\n  year = {2024}\n}",
    ),
    "uptime2024": (
        "Uptime Institute, 2024",
        "@techreport{uptime2024,\n  title = {Global Data Center Survey 2024},\n"
        "  institution = {Uptime Institute},\n  year = {2024}\n}",
    ),
    "luccioni2022": (
        "Luccioni et al., 2022",
        "@article{luccioni2022,\n  title = {Estimating the Carbon Footprint of {BLOOM}, a "
        "176{B} Parameter Language Model},\n  author = {Luccioni, Alexandra Sasha and "
        "Viguier, Sylvain and Ligozat, Anne-Laure},\n  journal = {arXiv preprint "
        "arXiv:2211.02001},\n  year = {2022}\n}",
    ),
    "wbcsd2023": (
        "WBCSD, 2023",
        "@techreport{wbcsd2023,\n  title = {Guidance on Avoided Emissions},\n"
        "  institution = {World Business Council for Sustainable Development},\n"
        "  year = {2023}\n}",
    ),
}


def used_sources(report: Report) -> list[str]:
    """The citation keys the methodology of ``report`` cites, in order."""
    keys = ["ecotrain", "lacoste2019"]
    texts = [str(p["pue_source"] or "") for p in report.pue] + [
        str(i["intensity_source"] or "") for i in report.intensity
    ]
    methods = {m for c in report.components for m in c["methods"]}
    if "modelled" in methods or any("codecarbon" in t.lower() for t in texts):
        keys.append("codecarbon")
    if any("uptime" in t.lower() for t in texts):
        keys.append("uptime2024")
    if _embodied_cited(report):
        keys.append("luccioni2022")
    if report.reuse and report.mode != "none":
        keys.append("wbcsd2023")
    return keys


def bibtex(report: Report) -> str:
    """The BibTeX entries of the sources the report's methodology cites."""
    entries = [SOURCES[k][1].replace("{VERSION}", report.ecotrain_version) for k in report.sources]
    return "\n\n".join(entries) + "\n"


def _inline(key: str) -> str:
    # ecotrain itself is named in the sentence; it needs a key only for \cite.
    return "" if key == "ecotrain" else f"({SOURCES[key][0]})"


def _cited(text: str, key: str, cite: Any) -> str:
    """``text`` followed by its citation (if the citation reads as anything)."""
    ref = cite(key)
    return f"{text} {ref}" if ref else text


def _few(
    items: list[str], total: int | None = None, more: str = "", limit: int = NAMES_LISTED
) -> str:
    """The first ``limit`` items, then "and N more <more>"."""
    total = len(items) if total is None else total
    shown = items[:limit]
    rest = total - len(shown)
    return ", ".join(shown) + (f" and {rest:,} more {more}".rstrip() if rest > 0 else "")


def _runs(n: int) -> str:
    return f"{n:,} run{'s' if n != 1 else ''}"


def _methods_sentence(report: Report, cite: Any, limit: int) -> str:
    words = {
        "measured": "measured: NVML energy counters, RAPL",
        "integrated": "integrated: NVML power samples",
        "modelled": "modelled: CPU TDP x utilisation from "
        + _cited("CodeCarbon's CPU table", "codecarbon", cite)
        + ", RAM 0.375 W per GiB resident",
        "replayed": "replayed: a recorded power trace",
        "imported": "imported: CodeCarbon measurements",
    }
    parts = []
    for c in report.components:
        used = [f"{m} ({n:,})" for m, n in sorted(c["methods"].items(), key=lambda kv: -kv[1])]
        parts.append(f"{c['component'].upper()} {_few(used, more='methods', limit=limit)}")
    seen = [m for m in words if any(m in c["methods"] for c in report.components)]
    how = "; ".join(words[m] for m in seen)
    return "Energy per component (runs): " + "; ".join(parts) + (f" ({how})." if how else ".")


METHODOLOGY_MAX_WORDS = 250


def methodology(report: Report, cite: Any = _inline) -> str:
    """The methodology paragraph: one paragraph of at most METHODOLOGY_MAX_WORDS words
    whatever the data size, every input stated (the first few of each kind, the rest
    counted), sources cited through ``cite(key)``."""
    for limit, detail in ((NAMES_LISTED, 2), (1, 2), (1, 1), (1, 0)):
        text = _methodology(report, cite, limit, detail)
        if len(text.split()) <= METHODOLOGY_MAX_WORDS:
            return text
    # Only hostile data (names of hundreds of words) gets here: cut, and say so.
    words = text.split()[: METHODOLOGY_MAX_WORDS - 3]
    return " ".join(words) + " [shortened; see tables]"


def _cut(text: str, detail: int) -> str:
    """User text as is, or its first 6 words at the tersest wording (``detail`` 0)."""
    words = str(text).split()
    return text if detail or len(words) <= 6 else " ".join(words[:6]) + " [...]"


def _methodology(report: Report, cite: Any, limit: int, detail: int) -> str:
    """One wording of the paragraph: ``limit`` items per list; ``detail`` 2: name the
    sources of each PUE, intensity and price and the footprints' citations; 1: not; 0: also
    cut each name to a few words."""
    t = report.totals
    pue = _few(
        [f"PUE {p['pue']:g}" + (f" ({p['pue_source'] or 'source not recorded'})" if detail
         == 2 else "") for p in report.pue if p["pue"] is not None],
        more="values", limit=limit,
    ) or "PUE not recorded"  # fmt: skip
    grid = _few(
        [
            f"{_cut(i['region'] or 'unknown region', detail)}: "
            f"{fmt_number(i['intensity_g_per_kwh'])} g CO2e/kWh"
            + (
                f" ({i['intensity_source'] or 'source not recorded'}"
                + (f", {i['year']} data" if i.get("year") else "")
                + ")"
                if detail == 2
                else ""
            )
            for i in report.intensity
            if i["intensity_g_per_kwh"] is not None
        ],
        more="regions",
        limit=limit,
    ) or "not recorded"  # fmt: skip
    price = _few(
        [
            f"USD {p['price']:g} per {'GPU-hour' if p['cost_method'] == 'gpu_hour' else 'kWh'}"
            + (f" ({p['price_source'] or 'source not recorded'})" if detail == 2 else "")
            for p in report.price
            if p["price"] is not None
        ],
        more="prices",
        limit=limit,
    ) or "no price recorded"  # fmt: skip
    finished = report.statuses.get("finished", report.n_runs if not report.statuses else 0)
    others = report.n_runs - finished
    status = (
        f" ({finished:,} finished; {others:,} failed, killed or lost, included)" if others else ""
    )
    grid_source = _grid_basis(report.intensity)
    if any("codecarbon" in str(i["intensity_source"] or "").lower() for i in report.intensity):
        grid_source = _cited(grid_source + " (CodeCarbon's data", "codecarbon", cite) + ")"
    if "uptime2024" in report.sources:
        pue = _cited(pue, "uptime2024", cite)
    text = (
        f"We report the energy, emissions and cost of {_runs(report.n_runs)}{status}, "
        f"{_cited(f'recorded with ecotrain {report.ecotrain_version}', 'ecotrain', cite)}, "
        "which wraps each training command and samples its energy while it runs. "
        f"{_methods_sentence(report, cite, limit)} "
        f"{_cited('As in common practice', 'lacoste2019', cite)}, IT energy "
        f"({fmt_energy(t['it_energy_kwh'])}) is multiplied by the data centre's power usage "
        f"effectiveness, {pue}, to give facility energy ({fmt_energy(t['energy_kwh'])}), "
        f"and by the {grid_source} ({grid}) to give {fmt_co2(t['co2_kg'])} CO2e. "
        f"Cost: {price}; {fmt_usd(t['cost_usd'])} in total. "
        f"Data: {_data_sentence(report, limit, detail)}. "
        f"{_embodied_sentence(report, cite)} "
        "Excluded: networking, storage and idle time."
    )
    text += " " + _reuse_sentence(report, cite, limit, detail)
    # time-resolved CO2e and per-unit figures inside the paragraph: its word bound and the
    # LaTeX --bib rendering keep them
    return f"{text} {report.method_notes}" if report.method_notes else text


def _grid_basis(intensity: list[dict[str, Any]]) -> str:
    """What kind of grid intensity the runs used, from the boundary each stored: "location-
    based lifecycle grid intensity", "... (direct emissions only)", mixed, or with
    user-supplied figures, whose basis (location, market, PPA) ecotrain cannot know."""
    from ecotrain.grid import DIRECT, LIFECYCLE, USER_SUPPLIED

    used = [i for i in intensity if i["intensity_g_per_kwh"] is not None]
    user = [i for i in used if i.get("intensity_source") == USER_SUPPLIED]
    located = [i for i in used if i.get("intensity_source") != USER_SUPPLIED]
    stated = {i.get("intensity_boundary") for i in located} & {LIFECYCLE, DIRECT}
    unstated = any(i.get("intensity_boundary") not in (LIFECYCLE, DIRECT) for i in located)
    if not located:
        return "user-supplied grid intensity (basis not stated)" if user else "grid intensity"
    kind = "location-based lifecycle" if stated == {LIFECYCLE} else "location-based"
    qualifiers = []
    if stated == {DIRECT}:
        qualifiers.append("direct emissions only")
    elif len(stated) == 2:
        qualifiers.append("lifecycle for some regions, direct emissions for others")
    if stated and unstated:
        qualifiers.append("boundary not recorded for some runs")
    text = f"{kind} grid intensity" + (f" ({'; '.join(qualifiers)})" if qualifiers else "")
    if user:
        text += " and user-supplied figures (basis not stated)"
    return text


def _embodied_cited(report: Report) -> bool:
    """Whether the report states an embodied figure resting on the cited default factor."""
    from ecotrain.embodied import DEFAULT_KG_PER_GPU_HOUR

    return bool(report.embodied) and report.embodied["kg_per_gpu_hour"] == DEFAULT_KG_PER_GPU_HOUR


def _embodied_sentence(report: Report, cite: Any = _inline) -> str:
    """ecotrain.embodied's sentence: that it is off, or the figure beside the operational one."""
    from ecotrain.embodied import OFF, Embodied

    if report.embodied is None:
        return OFF
    return Embodied(**report.embodied).sentence(
        cite("luccioni2022") if _embodied_cited(report) else ""
    )


def _data_sentence(report: Report, limit: int = NAMES_LISTED, detail: int = 2) -> str:
    versions = [_cut(v, detail) for v in report.data_versions]
    used = _few(versions, more="versions", limit=limit) or "versions not recorded"
    if report.grid_data_version and report.grid_data_version not in report.data_versions:
        return f"{used} (grid data installed now: {report.grid_data_version})"
    return used


def _reuse_sentence(
    report: Report, cite: Any = _inline, limit: int = NAMES_LISTED, detail: int = 2
) -> str:
    """The reuse counterfactual in plain words; avoided figures stated apart, never netted.
    Bounded: the checkpoints are named up to NAMES_LISTED, the rest counted."""
    if not report.reuse_available:
        return f"Reuse: {report.reuse_note}."
    n = max(report.checkpoints_consumed, len(report.reuse))
    if not n:
        return "The runs started from no recorded checkpoint (training from scratch)."
    names = [_cut(n, detail) for n in report.consumed_names or [r.name for r in report.reuse]]
    plural = "s" if n != 1 else ""
    started = f"The runs started from {n:,} checkpoint{plural} ({_few(names, n, limit=limit)})"
    if not report.reuse:
        return (
            f"{started}, each produced within the selected project(s): their cost is "
            "already included above, so no avoided emissions are claimed."
        )
    if report.mode == "none":
        return f"{started}; no counterfactual is claimed (mode 'none')."
    items = []
    for r in report.reuse[: min(2, limit)]:
        src = _cut(r.footprint_source, detail) + (
            f", {r.citation}" if r.citation and detail == 2 else ""
        )
        if r.co2_kg is None:
            items.append(f"For {_cut(r.name, detail)} the cost of producing it is unknown ({src}).")
            continue
        figures = f"{fmt_co2(r.co2_kg)} CO2e"
        if r.energy_kwh is not None:
            figures = f"{fmt_energy(r.energy_kwh)} and {figures}"
        if r.cost_usd is not None:
            figures += f" ({fmt_usd(r.cost_usd)})"
        items.append(
            f"Starting from {_cut(r.name, detail)} avoided an estimated {figures} "
            f"(footprint: {src}; reused by {_runs(r.reused_by)})."
        )
    counted = len(report.reuse) + (report.reuse_others or {}).get("checkpoints", 0)
    if counted > len(items):
        items.append(f"{counted - len(items):,} more reused checkpoint(s) are in the table.")
    avoided = sum(r.co2_kg or 0.0 for r in report.reuse) + (
        (report.reuse_others or {}).get("co2_kg") or 0.0
    )
    return (
        f"{started}. {_cited('Avoided emissions', 'wbcsd2023', cite)} are the counterfactual "
        f"of producing each reused checkpoint again (mode '{report.mode}'). {' '.join(items)} "
        f"In total an estimated {fmt_co2(avoided)} CO2e was avoided; this is reported beside, "
        "never subtracted from, the emissions above, and each checkpoint is counted once."
    )
