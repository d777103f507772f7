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

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ecotrain.accounting import Site, reprice
from ecotrain.grid import Intensity
from ecotrain.store.queries import RunFilter
from ecotrain.store.schema import checkpoints, run_checkpoints, runs

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
    runs: list[str] = field(default_factory=list)
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
    reused_by: list[str]
    assumption: str


def _checkpoint_row(conn, checkpoint_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(checkpoints).where(checkpoints.c.checkpoint_id == checkpoint_id)
    ).first()
    return dict(row._mapping) if row else None


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


def checkpoint_footprint(engine: Engine, checkpoint_id: str) -> Footprint:
    """What producing ``checkpoint_id`` cost (see the module docstring for the order)."""
    with engine.connect() as conn:
        row = _checkpoint_row(conn, checkpoint_id)
        run_ids: set[str] = set()
        stated: list[Footprint] = []
        seen_ckpts: set[str] = set()
        todo = [checkpoint_id]
        while todo:
            ckpt = todo.pop()
            if ckpt in seen_ckpts:
                continue
            seen_ckpts.add(ckpt)
            producers = (
                conn.execute(
                    select(run_checkpoints.c.run_id).where(
                        run_checkpoints.c.checkpoint_id == ckpt,
                        run_checkpoints.c.role == "produced",
                    )
                )
                .scalars()
                .all()
            )
            if not producers:
                if ckpt != checkpoint_id:
                    ancestor = _stated(_checkpoint_row(conn, ckpt), ckpt)
                    if ancestor is not None:
                        stated.append(ancestor)
                continue
            new = set(producers) - run_ids
            run_ids |= new
            if new:
                todo.extend(
                    conn.execute(
                        select(run_checkpoints.c.checkpoint_id).where(
                            run_checkpoints.c.run_id.in_(new),
                            run_checkpoints.c.role == "consumed",
                        )
                    )
                    .scalars()
                    .all()
                )
        if not run_ids:
            return _stated(row, checkpoint_id) or Footprint(
                checkpoint_id, (row or {}).get("name") or _hf_name(checkpoint_id), "unknown"
            )
        totals = conn.execute(
            select(
                func.sum(runs.c.it_energy_kwh),
                func.sum(runs.c.facility_energy_kwh),
                func.sum(runs.c.co2_kg),
                func.sum(runs.c.cost_usd),
                func.sum(runs.c.gpu_hours),
                func.max(runs.c.gpu_model),
            ).where(runs.c.run_id.in_(run_ids))
        ).one()
    it, facility, co2, cost, gpu_hours, gpu_model = totals
    fp = Footprint(
        checkpoint_id=checkpoint_id,
        name=(row or {}).get("name"),
        source="recorded",
        citation=f"{len(run_ids)} ecotrain-recorded run(s)",
        gpu_model=gpu_model,
        gpu_hours=gpu_hours,
        it_energy_kwh=it,
        energy_kwh=facility,
        co2_kg=co2,
        cost_usd=cost,
        runs=sorted(run_ids),
        ancestors=sorted(seen_ckpts - {checkpoint_id}),
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


def avoided(
    footprint: Footprint, mode: str, site: Site | None, reused_by: list[str] | None = None
) -> Avoided:
    """Price the counterfactual "produce this checkpoint again" under ``mode``."""
    if mode not in MODES:
        from ecotrain.errors import UserError

        raise UserError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    name = footprint.name or footprint.checkpoint_id[:19]
    reused_by = reused_by or []
    if mode == "none":
        return Avoided(
            footprint.checkpoint_id,
            footprint.name,
            footprint,
            mode,
            0.0,
            0.0,
            0.0,
            reused_by,
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
            reused_by,
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
            reused_by,
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
            reused_by,
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
        reused_by,
        f"starting from {name} avoided training it again here: {basis} "
        f"({it_kwh:.4g} kWh IT) at PUE {site.pue:g}, {site.intensity.g_per_kwh:.4g} g CO2e/kWh "
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
    selected = select(runs.c.run_id).where(flt.where())
    with engine.connect() as conn:
        consumed = conn.execute(
            # Only the columns used below (a reuser's project and accounting site): reading
            # whole rows decodes every run's JSON columns, most of a report's time at 10k runs.
            select(run_checkpoints.c.checkpoint_id, *(runs.c[c] for c in _REUSER_COLUMNS))
            .join(runs, runs.c.run_id == run_checkpoints.c.run_id)
            .where(run_checkpoints.c.role == "consumed", run_checkpoints.c.run_id.in_(selected))
            .order_by(runs.c.started_at)
        ).all()
        by_ckpt: dict[str, list[dict]] = {}
        for row in consumed:
            by_ckpt.setdefault(row.checkpoint_id, []).append(dict(row._mapping))
        producer_projects: dict[str, set[str]] = {}
        if by_ckpt:
            for ckpt, project in conn.execute(
                select(run_checkpoints.c.checkpoint_id, runs.c.project)
                .join(runs, runs.c.run_id == run_checkpoints.c.run_id)
                .where(
                    run_checkpoints.c.role == "produced",
                    run_checkpoints.c.checkpoint_id.in_(list(by_ckpt)),
                )
            ):
                producer_projects.setdefault(ckpt, set()).add(project)
    out = []
    for ckpt, reusers in by_ckpt.items():
        made_in = producer_projects.get(ckpt, set())
        # Reuse inside the project that paid for the checkpoint avoids nothing.
        outside = [r for r in reusers if r["project"] not in made_in]
        if not outside:
            continue
        fp = checkpoint_footprint(engine, ckpt)
        here = site or _site_of(outside[0])
        out.append(avoided(fp, mode, here, sorted({r["run_id"] for r in outside})))
    return _fold_ancestors(out)


def _fold_ancestors(items: list[Avoided]) -> list[Avoided]:
    """Avoid each retraining once: a reused checkpoint whose cost is already inside the
    footprint of another reused checkpoint (its descendant) is listed with nothing claimed."""
    for a in items:
        for b in items:
            if (
                a is not b
                and a.checkpoint_id in b.footprint.ancestors
                and b.checkpoint_id not in a.footprint.ancestors
                and a.mode != "none"
            ):
                a.energy_kwh = a.co2_kg = a.cost_usd = 0.0
                a.assumption = (
                    f"already counted in the avoided retraining of {b.name or b.checkpoint_id}, "
                    "which descends from it"
                )
                break
    return items


def list_checkpoints(engine: Engine, limit: int = 200) -> list[dict[str, Any]]:
    """Checkpoints with how often they were produced and consumed (newest first)."""
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
