"""What producing a checkpoint cost (its footprint), and what reusing it avoided.

Footprint of checkpoint C, first that applies:

1. ``recorded``: the ecotrain runs that produced C, plus — recursively — the checkpoints
   those runs consumed, each run and each checkpoint counted once;
2. ``registered`` / ``model_card``: a footprint stated with ``ecotrain checkpoint register``
   or read from the ``co2_eq_emissions`` of a model card next to the weights;
3. ``catalogue``: a published figure for a well-known model (ecotrain/data/catalogue.toml);
4. ``unknown``: shown as unknown, never as zero.

Avoided cost of reusing C, under a named counterfactual mode:

- ``reproduce`` (default): producing C again *here*: its IT energy (or GPU-hours x board
  power when only GPU-hours are known) re-priced at the reusing runs' PUE, grid intensity
  and price, through the one accounting function;
- ``as-published``: the footprint's own figures as recorded or published;
- ``none``: nothing is claimed; reuse is still listed.

Rules (WBCSD avoided-emissions guidance): avoided figures are reported beside the
footprint, never subtracted from it; in any aggregate a checkpoint's retraining is avoided
once, however many runs reuse it — and a reused checkpoint whose cost is already inside the
footprint of another reused checkpoint (a base model under a reused fine-tune) is listed
with nothing claimed; and a checkpoint produced by a recorded run of the same
project as its reuser saves that project nothing (the cost was paid there) — it saves only
for reusers in other projects, and for the lab as a whole once it is reused across projects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from ecotrain.accounting import Site, reprice
from ecotrain.grid import Intensity
from ecotrain.store.queries import RunFilter
from ecotrain.store.schema import checkpoints, run_checkpoints, runs
from ecotrain.units import fmt_energy, fmt_number

MODES = ("reproduce", "as-published", "none")


@dataclass
class Footprint:
    """What producing a checkpoint cost, and where the figure comes from."""

    checkpoint_id: str
    name: str | None
    source: str  # recorded | registered | model_card | catalogue | unknown
    citation: str | None = None
    gpu_model: str | None = None
    gpu_hours: float | None = None
    it_energy_kwh: float | None = None
    energy_kwh: float | None = None  # facility
    co2_kg: float | None = None
    cost_usd: float | None = None
    pue: float | None = None
    intensity_g_per_kwh: float | None = None
    runs: list[str] = field(default_factory=list)  # the runs that produced it (not ancestors)
    ancestors: list[str] = field(default_factory=list)  # checkpoint ids whose cost is included


@dataclass
class Avoided:
    """What reusing one checkpoint avoided, under one counterfactual mode."""

    checkpoint_id: str
    name: str | None
    footprint: Footprint
    mode: str
    energy_kwh: float | None
    co2_kg: float | None
    cost_usd: float | None
    reuses: int  # runs (outside the paying project) that started from it
    assumption: str


def _stated(row: dict[str, Any] | None, checkpoint_id: str) -> Footprint | None:
    """A registered, model-card or catalogue footprint of a checkpoint with no recorded runs."""
    from ecotrain.catalogue import lookup

    name = (row or {}).get("name")
    if row and row.get("footprint_source") in ("registered", "model_card", "catalogue"):
        return Footprint(
            checkpoint_id=checkpoint_id,
            name=name,
            source=row["footprint_source"],
            citation=row.get("footprint_citation"),
            gpu_model=row.get("fp_gpu_model"),
            gpu_hours=row.get("fp_gpu_hours"),
            it_energy_kwh=(row["fp_energy_kwh"] / (row.get("fp_pue") or 1.0))
            if row.get("fp_energy_kwh") is not None and row.get("fp_pue")
            else None,
            energy_kwh=row.get("fp_energy_kwh"),
            co2_kg=row.get("fp_co2_kg"),
            cost_usd=row.get("fp_cost_usd"),
            pue=row.get("fp_pue"),
            intensity_g_per_kwh=row.get("fp_intensity_g_per_kwh"),
        )
    hf_repo = (row or {}).get("hf_repo")
    if checkpoint_id.startswith("hf:"):
        hf_repo = hf_repo or checkpoint_id[3:]
    published = lookup(hf_repo) or lookup(name)
    if published is None:
        return None
    it = published.it_energy_kwh
    if it is None and published.energy_kwh is not None and published.pue:
        it = published.energy_kwh / published.pue
    return Footprint(
        checkpoint_id=checkpoint_id,
        name=name or hf_repo,
        source="catalogue",
        citation=published.citation + ("" if published.verified else " (not re-verified)"),
        gpu_model=published.gpu_model,
        gpu_hours=published.gpu_hours,
        it_energy_kwh=it,
        energy_kwh=published.energy_kwh,
        co2_kg=published.co2_kg,
        pue=published.pue,
        intensity_g_per_kwh=published.intensity_g_per_kwh,
    )


_TOTALS = ("it_energy_kwh", "facility_energy_kwh", "co2_kg", "cost_usd", "gpu_hours")


def _add(acc: list, row: tuple) -> None:
    """Add a run's (totals..., gpu_model) into ``acc``; NULLs ignored, as SQL's SUM/MAX do."""
    for k, v in enumerate(row[:-1]):
        if v is not None:
            acc[k] = (acc[k] or 0.0) + v
    if row[-1] is not None and (acc[-1] is None or row[-1] > acc[-1]):
        acc[-1] = row[-1]


@dataclass
class _Node:
    """One checkpoint in the lineage: the runs that produced it, what they consumed, and
    their totals — summed for runs that produced only this checkpoint, kept per run for
    runs that produced several (so a footprint counts each run once)."""

    producers: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)
    # [totals..., gpu_model] of the runs that produced only this checkpoint, and their count
    own: list = field(default_factory=lambda: [None] * (len(_TOTALS) + 1))
    n_own: int = 0
    shared: dict[str, tuple] = field(default_factory=dict)


class _Lineage:
    """The lineage graph footprints walk, read a node at a time (one checkpoint: a few
    queries per ancestor) or all at once with :meth:`load_all` (savings over a lab: at
    100,000 runs a query per step made 93,000 queries and took 114 s)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._nodes: dict[str, _Node] = {}
        self._all = False
        self._rows: dict[str, dict[str, Any] | None] = {}

    @classmethod
    def load_all(cls, conn: Any) -> _Lineage:
        """Every produced link, and the inputs and totals of every producing run."""
        rc = run_checkpoints
        producing = select(rc.c.run_id).where(rc.c.role == "produced")
        outputs: dict[str, list[str]] = {}
        for ckpt, run_id in conn.execute(
            select(rc.c.checkpoint_id, rc.c.run_id).where(rc.c.role == "produced")
        ):
            outputs.setdefault(run_id, []).append(ckpt)
        inputs: dict[str, list[str]] = {}
        for run_id, ckpt in conn.execute(
            select(rc.c.run_id, rc.c.checkpoint_id).where(
                rc.c.role == "consumed", rc.c.run_id.in_(producing)
            )
        ):
            inputs.setdefault(run_id, []).append(ckpt)
        totals = {
            row[0]: tuple(row[1:])
            for row in conn.execute(
                select(runs.c.run_id, *(runs.c[c] for c in _TOTALS), runs.c.gpu_model).where(
                    runs.c.run_id.in_(producing)
                )
            )
        }
        g = cls(conn)
        g._all = True
        for run_id, ckpts in outputs.items():
            for ckpt in ckpts:
                g._place(ckpt, run_id, len(ckpts), inputs.get(run_id, ()), totals.get(run_id))
        return g

    def _place(self, ckpt: str, run_id: str, n_outputs: int, inputs, total) -> None:  # noqa: ANN001
        node = self._nodes.setdefault(ckpt, _Node())
        node.producers.append(run_id)
        node.parents.update(inputs)
        if total is None:
            return
        if n_outputs == 1:
            _add(node.own, total)
            node.n_own += 1
        else:
            node.shared[run_id] = total

    def node(self, checkpoint_id: str) -> _Node | None:
        """The checkpoint's producers and their inputs and totals; None if no run made it."""
        if checkpoint_id in self._nodes or self._all:
            return self._nodes.get(checkpoint_id)
        rc, other = run_checkpoints, run_checkpoints.alias("other")
        producers = list(
            self.conn.execute(
                select(rc.c.run_id).where(
                    rc.c.checkpoint_id == checkpoint_id, rc.c.role == "produced"
                )
            ).scalars()
        )
        if not producers:
            self._nodes[checkpoint_id] = None  # type: ignore[assignment]
            return None
        inputs: dict[str, list[str]] = {}
        for run_id, ckpt in self.conn.execute(
            select(rc.c.run_id, rc.c.checkpoint_id).where(
                rc.c.run_id.in_(producers), rc.c.role == "consumed"
            )
        ):
            inputs.setdefault(run_id, []).append(ckpt)
        self._nodes[checkpoint_id] = _Node()
        n_outputs = (
            select(func.count())
            .where(other.c.run_id == runs.c.run_id, other.c.role == "produced")
            .scalar_subquery()
        )
        for row in self.conn.execute(
            select(runs.c.run_id, n_outputs, *(runs.c[c] for c in _TOTALS), runs.c.gpu_model).where(
                runs.c.run_id.in_(producers)
            )
        ):
            self._place(checkpoint_id, row[0], row[1], inputs.get(row[0], ()), tuple(row[2:]))
        for run_id in set(producers) - set(self._nodes[checkpoint_id].producers):
            self._place(checkpoint_id, run_id, 1, inputs.get(run_id, ()), None)
        return self._nodes[checkpoint_id]

    def load_rows(self, checkpoint_ids: list[str]) -> None:
        """Read these checkpoints' rows in one query (see :meth:`row`)."""
        self._rows.update(dict.fromkeys(checkpoint_ids))
        for row in self.conn.execute(
            select(checkpoints).where(checkpoints.c.checkpoint_id.in_(checkpoint_ids))
        ):
            self._rows[row.checkpoint_id] = dict(row._mapping)

    def row(self, checkpoint_id: str) -> dict[str, Any] | None:
        """The checkpoint's stored row (name, stated footprint), or None."""
        if checkpoint_id not in self._rows:
            self.load_rows([checkpoint_id])
        return self._rows[checkpoint_id]


def checkpoint_footprint(engine: Engine, checkpoint_id: str) -> Footprint:
    """What producing ``checkpoint_id`` cost (see the module docstring for the order)."""
    with engine.connect() as conn:
        return _footprint(_Lineage(conn), checkpoint_id)


def footprints(engine: Engine, checkpoint_ids: list[str]) -> dict[str, Footprint]:
    """:func:`checkpoint_footprint` of many checkpoints, reading the lineage once."""
    with engine.connect() as conn:
        graph = _Lineage.load_all(conn)
        graph.load_rows(checkpoint_ids)
        return {c: _footprint(graph, c) for c in checkpoint_ids}


def _footprint(graph: _Lineage, checkpoint_id: str) -> Footprint:
    row = graph.row(checkpoint_id)
    root = graph.node(checkpoint_id)
    if root is None:
        return _stated(row, checkpoint_id) or Footprint(
            checkpoint_id, (row or {}).get("name") or _hf_name(checkpoint_id), "unknown"
        )
    # The checkpoint and, recursively, what its producers consumed: each checkpoint once,
    # each run once (runs that produced several of them are in `shared`).
    totals: list = [None] * (len(_TOTALS) + 1)
    n_runs = 0
    shared: dict[str, tuple] = {}
    stated: list[Footprint] = []
    seen = {checkpoint_id}
    todo = [checkpoint_id]
    while todo:
        ckpt = todo.pop()
        node = graph.node(ckpt)
        if node is None:
            ancestor = _stated(graph.row(ckpt), ckpt)
            if ancestor is not None:
                stated.append(ancestor)
            continue
        _add(totals, node.own)
        n_runs += node.n_own
        shared.update(node.shared)
        for parent in node.parents - seen:
            seen.add(parent)
            todo.append(parent)
    for total in shared.values():
        _add(totals, total)
    n_runs += len(shared)
    it, facility, co2, cost, gpu_hours, gpu_model = totals
    fp = Footprint(
        checkpoint_id=checkpoint_id,
        name=(row or {}).get("name"),
        source="recorded",
        citation=f"{n_runs} ecotrain-recorded run(s)",
        gpu_model=gpu_model,
        gpu_hours=gpu_hours,
        it_energy_kwh=it,
        energy_kwh=facility,
        co2_kg=co2,
        cost_usd=cost,
        runs=sorted(root.producers),
        ancestors=sorted(seen - {checkpoint_id}),
    )
    for ancestor in stated:  # published ancestors of recorded runs, each once
        fp.citation += f"; ancestor {ancestor.name}: {ancestor.source}"
        # Re-pricing needs the ancestor's IT energy, even when only its GPU-hours are known.
        ancestor.it_energy_kwh = it_energy(ancestor)[0]
        for attr in ("it_energy_kwh", "energy_kwh", "co2_kg", "cost_usd", "gpu_hours"):
            value = getattr(ancestor, attr)
            if value is not None:
                setattr(fp, attr, (getattr(fp, attr) or 0.0) + value)
    return fp


def _hf_name(checkpoint_id: str) -> str | None:
    return checkpoint_id[3:] if checkpoint_id.startswith("hf:") else None


def _site_of(run: dict[str, Any]) -> Site:
    """The accounting site a past run was computed with (its stored inputs)."""
    price = run.get("price") if run.get("cost_method") != "gpu_hour" else None
    return Site(
        pue=run.get("pue") or 1.0,
        pue_source=run.get("pue_source") or "as recorded",
        intensity=Intensity(
            run.get("region") or "?",
            run.get("intensity_g_per_kwh") or 0.0,
            run.get("intensity_source") or "as recorded",
        ),
        cost_method="electricity",
        price=price,
        price_source=run.get("price_source") or "",
    )


def it_energy(footprint: Footprint) -> tuple[float | None, str]:
    """The IT energy (kWh) of producing a checkpoint, and how it was obtained: as recorded,
    else GPU-hours x the GPU's board power (data/gpus.toml), else the published energy
    divided by its PUE (taken as IT energy when no PUE is published)."""
    if footprint.it_energy_kwh is not None:
        return footprint.it_energy_kwh, "its recorded IT energy"
    if footprint.gpu_hours and footprint.gpu_model:
        from ecotrain.estimate import UnknownGPU, find_gpu

        try:
            gpu = find_gpu(footprint.gpu_model)
        except UnknownGPU:
            pass
        else:
            return (
                footprint.gpu_hours * gpu.power_w / 1000.0,
                f"{footprint.gpu_hours:,.0f} {gpu.key} GPU-hours at {gpu.power_w:g} W board power",
            )
    if footprint.energy_kwh is not None:
        return (
            footprint.energy_kwh / (footprint.pue or 1.0),
            "its published energy" + ("" if footprint.pue else " (taken as IT energy)"),
        )
    return None, "no energy figure"


def avoided(footprint: Footprint, mode: str, site: Site | None, reuses: int = 0) -> Avoided:
    """Price the counterfactual "produce this checkpoint again" under ``mode``."""
    if mode not in MODES:
        from ecotrain.errors import UserError

        raise UserError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    name = footprint.name or footprint.checkpoint_id[:19]
    if mode == "none":
        return Avoided(
            footprint.checkpoint_id,
            footprint.name,
            footprint,
            mode,
            0.0,
            0.0,
            0.0,
            reuses,
            "no counterfactual claimed (mode none)",
        )
    if footprint.source == "unknown":
        return Avoided(
            footprint.checkpoint_id,
            footprint.name,
            footprint,
            mode,
            None,
            None,
            None,
            reuses,
            f"the cost of producing {name} is unknown",
        )
    if mode == "as-published" or site is None:
        return Avoided(
            footprint.checkpoint_id,
            footprint.name,
            footprint,
            mode,
            footprint.energy_kwh,
            footprint.co2_kg,
            footprint.cost_usd,
            reuses,
            f"training {name} again would cost what it cost when it was produced "
            f"({footprint.source}: {footprint.citation or 'no citation'})",
        )
    it_kwh, basis = it_energy(footprint)
    if it_kwh is None:
        # Only a CO2 figure (a model card): nothing to re-price, keep it as published.
        return Avoided(
            footprint.checkpoint_id,
            footprint.name,
            footprint,
            "as-published",
            None,
            footprint.co2_kg,
            footprint.cost_usd,
            reuses,
            f"only the CO2e of producing {name} is known ({footprint.source}); kept as published",
        )
    acc = reprice(
        site, it_energy_kwh=it_kwh, gpu_hours=footprint.gpu_hours, gpu_model=footprint.gpu_model
    )
    return Avoided(
        footprint.checkpoint_id,
        footprint.name,
        footprint,
        mode,
        acc.facility_energy_kwh,
        acc.co2_kg,
        acc.cost_usd,
        reuses,
        f"starting from {name} avoided training it again here: {basis} "
        f"({fmt_energy(it_kwh)} IT) at PUE {site.pue:g}, {fmt_number(site.intensity.g_per_kwh)} "
        "g CO2e/kWh "
        f"({site.intensity.region}) and the site's price",
    )


_REUSER_COLUMNS = (
    "run_id", "project", "started_at", "pue", "pue_source", "region", "intensity_g_per_kwh",
    "intensity_source", "cost_method", "price", "price_source",
)  # fmt: skip


def avoided_for_runs(
    engine: Engine, flt: RunFilter | None = None, mode: str = "reproduce", site: Site | None = None
) -> list[Avoided]:
    """What the checkpoints consumed by the runs in ``flt`` avoided, each counted once."""
    flt = flt or RunFilter()
    rc = run_checkpoints
    producer, producer_run = rc.alias("producer"), runs.alias("producer_run")
    # (checkpoint, project) pairs where a recorded run paid for the checkpoint.
    paid = (
        select(producer.c.checkpoint_id, producer_run.c.project)
        .join(producer_run, producer_run.c.run_id == producer.c.run_id)
        .where(producer.c.role == "produced")
        .distinct()
        .subquery("paid")
    )
    # Reuse inside the project that paid for the checkpoint avoids nothing: reuses by other
    # projects, counted and ranked in SQL (a big lab has 100,000 of them; the site of the
    # earliest one prices the checkpoint, so only that run's row is read).
    reuses = (
        select(
            rc.c.checkpoint_id,
            runs.c.run_id,
            func.count().over(partition_by=rc.c.checkpoint_id).label("reuses"),
            func.row_number()
            .over(partition_by=rc.c.checkpoint_id, order_by=(runs.c.started_at, runs.c.run_id))
            .label("rank"),
        )
        .join(runs, runs.c.run_id == rc.c.run_id)
        .outerjoin(
            paid, and_(paid.c.checkpoint_id == rc.c.checkpoint_id, paid.c.project == runs.c.project)
        )
        .where(rc.c.role == "consumed", paid.c.checkpoint_id.is_(None), flt.where())
        .subquery("reuses")
    )
    with engine.connect() as conn:
        first = conn.execute(
            select(reuses.c.checkpoint_id, reuses.c.run_id, reuses.c.reuses).where(
                reuses.c.rank == 1
            )
        ).all()
        sites: dict[str, dict] = {}
        if first:
            for row in conn.execute(
                select(*(runs.c[c] for c in _REUSER_COLUMNS)).where(
                    runs.c.run_id.in_({r.run_id for r in first})
                )
            ):
                sites[row.run_id] = dict(row._mapping)
    # In order of first reuse, as listed everywhere.
    first = sorted(first, key=lambda r: (sites[r.run_id]["started_at"], r.run_id))
    fps = footprints(engine, [r.checkpoint_id for r in first]) if first else {}
    out = [
        avoided(fps[r.checkpoint_id], mode, site or _site_of(sites[r.run_id]), r.reuses)
        for r in first
    ]
    return _fold_ancestors(out)


def _fold_ancestors(items: list[Avoided]) -> list[Avoided]:
    """Avoid each retraining once: a reused checkpoint whose cost is already inside the
    footprint of another reused checkpoint (its descendant) is listed with nothing claimed."""
    ancestors = {b.checkpoint_id: set(b.footprint.ancestors) for b in items}
    for a in items:
        for b in items:
            if (
                a is not b
                and a.checkpoint_id in ancestors[b.checkpoint_id]
                and b.checkpoint_id not in ancestors[a.checkpoint_id]
                and a.mode != "none"
            ):
                a.energy_kwh = a.co2_kg = a.cost_usd = 0.0
                a.assumption = (
                    f"already counted in the avoided retraining of {b.name or b.checkpoint_id}, "
                    "which descends from it"
                )
                break
    return items


def list_checkpoints(
    engine: Engine, limit: int = 200, project: str | None = None
) -> list[dict[str, Any]]:
    """Checkpoints with how often they were produced and consumed (newest first); with
    ``project``, only those a run of that project read or wrote."""
    uses = (
        select(
            run_checkpoints.c.checkpoint_id,
            func.sum((run_checkpoints.c.role == "consumed").cast(_int())).label("reused"),
            func.sum((run_checkpoints.c.role == "produced").cast(_int())).label("produced"),
        )
        .group_by(run_checkpoints.c.checkpoint_id)
        .subquery()
    )
    stmt = (
        select(
            checkpoints,
            func.coalesce(uses.c.reused, 0).label("times_reused"),
            func.coalesce(uses.c.produced, 0).label("times_produced"),
        )
        .outerjoin(uses, uses.c.checkpoint_id == checkpoints.c.checkpoint_id)
        .order_by(checkpoints.c.first_seen_at.desc())
        .limit(limit)
    )
    if project is not None:
        of_project = (
            select(run_checkpoints.c.checkpoint_id)
            .join(runs, runs.c.run_id == run_checkpoints.c.run_id)
            .where(runs.c.project == project)
        )
        stmt = stmt.where(checkpoints.c.checkpoint_id.in_(of_project))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def _int():
    from sqlalchemy import Integer

    return Integer()


def register_footprint(
    engine: Engine,
    row: dict[str, Any],
    *,
    gpu: str | None = None,
    gpu_hours: float | None = None,
    energy_kwh: float | None = None,
    co2_kg: float | None = None,
    source: str | None = None,
    site: Site | None = None,
) -> dict[str, Any]:
    """Store a user-stated footprint for a checkpoint (``ecotrain checkpoint register``).

    Missing energy and CO2e are estimated from GPU-hours x board power at ``site``, and the
    citation says so.
    """
    from ecotrain.store.db import upsert

    citation = source or "stated by the user"
    pue = intensity = None
    if gpu_hours is not None and gpu and (energy_kwh is None or co2_kg is None) and site:
        from ecotrain.estimate import estimate

        est = estimate(gpu, site, gpu_hours=gpu_hours)
        if energy_kwh is None:
            energy_kwh = est.accounting.facility_energy_kwh
            pue = site.pue
        if co2_kg is None:
            co2_kg = est.accounting.co2_kg
            intensity = site.intensity.g_per_kwh
        citation += (
            f"; energy/CO2e estimated from {gpu_hours:g} {est.gpu.key} GPU-hours x "
            f"{est.gpu.power_w:g} W at PUE {site.pue:g}, {site.intensity.g_per_kwh:.4g} g/kWh"
        )
    row = {
        **row,
        "footprint_source": "registered",
        "footprint_citation": citation,
        "fp_gpu_model": gpu,
        "fp_gpu_hours": gpu_hours,
        "fp_energy_kwh": energy_kwh,
        "fp_co2_kg": co2_kg,
        "fp_pue": pue,
        "fp_intensity_g_per_kwh": intensity,
    }
    with engine.begin() as conn:
        upsert(conn, checkpoints, row, ["checkpoint_id"])
    return row
