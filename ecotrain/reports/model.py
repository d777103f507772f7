"""The one report model: what a paper's compute statement says, built from the store.

Every renderer (Markdown, LaTeX, HTML, JSON, model card) reads this model and nothing
else, so the five outputs always agree. Aggregations run in SQL (ecotrain.store.aggregates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.engine import Engine

from ecotrain import __version__
from ecotrain.store import aggregates as agg
from ecotrain.store.queries import RunFilter
from ecotrain.store.records import utcnow
from ecotrain.store.schema import run_checkpoints, runs

SCHEMA_VERSION = "1.1"  # 1.1: grid_data_version, reuse_note, intensity year
# Embodied emissions of GPU manufacturing per GPU-hour (REFERENCES.md); excluded, stated.
EMBODIED_KG_PER_GPU_HOUR = (0.010, 0.013)


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
    methodology: str = ""

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


def _lines(engine: Engine, flt: RunFilter, n_runs: int, threshold: int) -> tuple[str | None, list]:
    j = 3.6e6
    cols = [
        func.count().label("runs"),
        func.min(runs.c.started_at).label("started"),
        func.max(runs.c.gpu_model).label("gpu"),
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
    stmt = (
        select(key.label("label"), *cols)
        .where(flt.where())
        .group_by(key)
        .order_by(func.min(runs.c.started_at))
    )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    out = []
    for r in rows:
        label = r.pop("label")
        r["label"] = (
            label[:12]
            if grouped is None
            else (
                str(label)[: 10 if grouped == "week" else None] if label is not None else "(none)"
            )
        )
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
            )
        ]
        consumed = conn.execute(
            select(func.count(func.distinct(run_checkpoints.c.checkpoint_id))).where(
                run_checkpoints.c.role == "consumed",
                run_checkpoints.c.run_id.in_(select(runs.c.run_id).where(flt.where())),
            )
        ).scalar()
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
                    name=a.name or a.checkpoint_id[:19],
                    checkpoint_id=a.checkpoint_id,
                    footprint_source=a.footprint.source,
                    citation=a.footprint.citation,
                    reused_by=a.reuses,
                    energy_kwh=a.energy_kwh,
                    co2_kg=a.co2_kg,
                    cost_usd=a.cost_usd,
                    assumption=a.assumption,
                )
            )
    except ImportError:
        available = False
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
        checkpoints_consumed=int(consumed or 0),
    )
    report.methodology = methodology(report)
    from ecotrain.efficiency import report_sentences  # time-resolved, per unit, embodied

    extra = report_sentences(engine, flt, report.n_runs, report.totals.get("gpu_hours", 0.0))
    report.methodology += f" {extra}" if extra else ""
    return report


def _methods_sentence(report: Report) -> str:
    parts = []
    words = {
        "measured": "measured with hardware energy counters (NVML total-energy counter for "
        "GPUs, RAPL for CPUs and DRAM)",
        "integrated": "integrated from NVML power samples (trapezoid rule)",
        "modelled": "modelled energy (CPU: TDP x the process tree's CPU time / (wall time x "
        "logical CPUs), TDP from codecarbon's CPU table, or 4 W per logical thread for an "
        "unlisted CPU; RAM: 0.375 W per GiB of resident "
        "memory)",
        "replayed": "replayed from recorded traces",
        "imported": "imported from codecarbon measurements",
    }
    for c in report.components:
        used = [f"{m} ({n} run{'s' if n != 1 else ''})" for m, n in c["methods"].items()]
        parts.append(f"{c['component'].upper()} energy: {', '.join(used)}")
    seen = {m for c in report.components for m in c["methods"]}
    explained = "; ".join(words[m] for m in words if m in seen)
    return "; ".join(parts) + (f". Methods: {explained}." if explained else ".")


def methodology(report: Report) -> str:
    """The methodology paragraph, in plain words, with every input stated."""
    t = report.totals
    pue = (
        "; ".join(
            f"{p['pue']:g} ({p['pue_source']}, {p['runs']} runs)"
            for p in report.pue
            if p["pue"] is not None
        )
        or "not recorded"
    )
    grid = (
        "; ".join(
            f"{i['region']}: {i['intensity_g_per_kwh']:.4g} g CO2e/kWh ({i['intensity_source']}"
            + (f", {i['year']} data" if i.get("year") else "")
            + f"; {i['runs']} run{'s' if i['runs'] != 1 else ''})"
            for i in report.intensity
            if i["intensity_g_per_kwh"] is not None
        )
        or "not recorded"
    )
    price = (
        "; ".join(
            f"{p['cost_method']} at USD {p['price']:g} per "
            f"{'GPU-hour' if p['cost_method'] == 'gpu_hour' else 'kWh'} ({p['price_source']})"
            for p in report.price
            if p["price"] is not None
        )
        or "no price recorded"
    )
    low, high = (t["gpu_hours"] * k for k in EMBODIED_KG_PER_GPU_HOUR)
    text = (
        f"We report the energy, carbon emissions and cost of {report.n_runs} training run(s) "
        f"recorded with ecotrain {report.ecotrain_version}, which wraps each training "
        f"command and samples its energy while it runs. {_methods_sentence(report)} "
        f"IT energy ({t['it_energy_kwh']:.4g} kWh) is multiplied by the data centre's power "
        f"usage effectiveness (PUE {pue}) to give facility energy ({t['energy_kwh']:.4g} kWh), "
        f"which is multiplied by the location-based grid carbon intensity ({grid}) to give "
        f"{t['co2_kg']:.4g} kg CO2e. Cost is {price}. Data: {_data_sentence(report)}. "
        "Excluded: embodied emissions of the hardware (about "
        f"{EMBODIED_KG_PER_GPU_HOUR[0]}-{EMBODIED_KG_PER_GPU_HOUR[1]} kg CO2e per GPU-hour, "
        f"i.e. {low:.3g}-{high:.3g} kg for these {t['gpu_hours']:.3g} GPU-hours), networking, "
        "storage, and idle time between runs."
    )
    return text + " " + _reuse_sentence(report)


def _data_sentence(report: Report) -> str:
    used = ", ".join(report.data_versions) or "versions not recorded"
    if report.grid_data_version and report.grid_data_version not in report.data_versions:
        return f"{used} (grid data installed now: {report.grid_data_version})"
    return used


def _reuse_sentence(report: Report) -> str:
    """The reuse counterfactual in plain words; avoided figures stated apart, never netted."""
    if not report.reuse_available:
        return f"Reuse: {report.reuse_note}."
    n = max(report.checkpoints_consumed, len(report.reuse))
    if not n:
        return "The runs started from no recorded checkpoint (training from scratch)."
    started = f"The runs started from {n} checkpoint{'s' if n != 1 else ''}"
    if not report.reuse:
        return (
            f"{started}, each produced within the selected project(s): their cost is "
            "already included above, so no avoided emissions are claimed."
        )
    if report.mode == "none":
        names = ", ".join(r.name for r in report.reuse)
        return f"{started} ({names}); no counterfactual is claimed (mode 'none')."
    items = []
    for r in report.reuse:
        src = r.footprint_source + (f", {r.citation}" if r.citation else "")
        if r.co2_kg is None:
            items.append(f"For {r.name} the cost of producing it is unknown ({src}).")
            continue
        figures = f"{r.co2_kg:.4g} kg CO2e"
        if r.energy_kwh is not None:
            figures = f"{r.energy_kwh:.4g} kWh and {figures}"
        if r.cost_usd is not None:
            figures += f" (USD {r.cost_usd:,.2f})"
        assumption = r.assumption
        prefix = f"starting from {r.name} avoided "
        if assumption.startswith(prefix):
            assumption = assumption[len(prefix) :]
        items.append(
            f"Starting from {r.name} avoided an estimated {figures} under the assumption "
            f"that the alternative was {assumption} (footprint: {src}; reused by "
            f"{r.reused_by} run{'s' if r.reused_by != 1 else ''})."
        )
    avoided = sum(r.co2_kg or 0.0 for r in report.reuse)
    return (
        f"{started}. Counterfactual mode '{report.mode}': {' '.join(items)} In total an "
        f"estimated {avoided:.4g} kg CO2e was avoided; this is reported beside, never "
        "subtracted from, the emissions above, and each checkpoint is counted once."
    )
