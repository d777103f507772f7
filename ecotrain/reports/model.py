"""The one report model: what a paper's compute statement says, built from the store.

Every renderer (Markdown, LaTeX, HTML, JSON, model card) reads this model and nothing
else, so the five outputs always agree. Aggregations run in SQL (ecotrain.store.aggregates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ecotrain import __version__
from ecotrain.store import aggregates as agg
from ecotrain.store.queries import RunFilter
from ecotrain.store.records import utcnow
from ecotrain.store.schema import run_checkpoints, runs

SCHEMA_VERSION = "1.0"
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
    data_versions: list[str]
    grouped_by: str | None
    lines: list[Line]
    mode: str
    reuse_available: bool
    reuse: list[Reuse] = field(default_factory=list)
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
        key, grouped = runs.c.run_id, None
    else:
        key, grouped = runs.c.project, "project"
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
        r["label"] = label[:12] if grouped is None else (label or "(none)")
        r["started"] = _iso(r["started"])
        out.append(Line(**r))
    return grouped, out


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
                    reused_by=len(a.reused_by),
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
        intensity=sources["intensity"],
        price=sources["price"],
        data_versions=sorted(
            {
                f"ecotrain {v['ecotrain_version']}"
                for v in sources["versions"]
                if v["ecotrain_version"]
            }
            | {v["data_version"] for v in sources["versions"] if v["data_version"]}
        ),
        grouped_by=grouped,
        lines=lines,
        mode=mode,
        reuse_available=available,
        reuse=reuse,
        checkpoints_consumed=int(consumed or 0),
    )
    report.methodology = methodology(report)
    return report


def _methods_sentence(report: Report) -> str:
    parts = []
    words = {
        "measured": "measured with hardware energy counters (NVML total-energy counter for "
        "GPUs, RAPL for CPUs and DRAM)",
        "integrated": "integrated from NVML power samples (trapezoid rule)",
        "modelled": "modelled energy (CPU: TDP x the process tree's CPU time / (wall time x "
        "logical CPUs), TDP from codecarbon's CPU table; RAM: 0.375 W per GiB of resident "
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
            f"{i['region']}: {i['intensity_g_per_kwh']:.4g} g CO2e/kWh ({i['intensity_source']})"
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
        f"{t['co2_kg']:.4g} kg CO2e. Cost is {price}. Data: {', '.join(report.data_versions)}. "
        "Excluded: embodied emissions of the hardware (about "
        f"{EMBODIED_KG_PER_GPU_HOUR[0]}-{EMBODIED_KG_PER_GPU_HOUR[1]} kg CO2e per GPU-hour, "
        f"i.e. {low:.3g}-{high:.3g} kg for these {t['gpu_hours']:.3g} GPU-hours), networking, "
        "storage, and idle time between runs."
    )
    if report.reuse:
        avoided = sum(r.co2_kg or 0.0 for r in report.reuse)
        items = " ".join(r.assumption[0].upper() + r.assumption[1:] + "." for r in report.reuse)
        text += (
            f" Reuse (counterfactual mode '{report.mode}'): {items} In total an estimated "
            f"{avoided:.4g} kg CO2e was avoided; this is reported beside, never subtracted "
            "from, the emissions above, and each checkpoint is counted once."
        )
    elif not report.reuse_available:
        text += " Reuse of checkpoints was not assessed."
    return text
