"""What producing a checkpoint cost (its footprint), and what reusing it avoided.

Footprint of checkpoint C, first that applies:

1. ``recorded``: *one* production of C — the first recorded run that wrote these bytes
   (earliest start + write time) — charged up to the moment it wrote them (its energy share
   then, from its power timeline: ``run_checkpoints.energy_share``; GPU-hours by elapsed
   time), plus — recursively — one production of each checkpoint that production
   consumed. A run charged for several checkpoints counts once, up to the latest moment.
   Producing identical bytes again (a seeded rerun) is shown (``productions``), never
   added: a figure reported once does not change when someone reproduces the checkpoint;
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
claimed footprint of another reused checkpoint (a base model under a reused fine-tune) is
listed with nothing claimed; and a checkpoint produced by a recorded run of the same
project as its reuser saves that project nothing (the cost was paid there) — it saves only
for reusers in other projects, and for the lab as a whole once it is reused across projects.
The same holds up the ancestry: the parts of a footprint paid by the reusing project's own
runs (A pretrained the base that B fine-tuned, and A reads the fine-tune) are taken out
before anything is claimed (:meth:`Footprint.excluding`); the price is set by the first
reuse outside the paying project, and its project's share is the one taken out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from ecotrain.accounting import Site, reprice
from ecotrain.grid import Intensity
from ecotrain.store.queries import RunFilter
from ecotrain.store.schema import checkpoints, run_checkpoints, runs
from ecotrain.units import fmt_energy, fmt_number, short_id

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
    runs: list[str] = field(default_factory=list)  # every run that produced it (not ancestors)
    ancestors: list[str] = field(default_factory=list)  # checkpoint ids whose cost is included
    producer: str | None = None  # the run whose production is counted (the first)
    productions: int = 0  # how many recorded runs produced these bytes (a fact, not a cost)
    share: float | None = None  # the producer's energy share up to the write (None: whole run)
    # the parts summed above: one per run charged (its share), one per stated ancestor
    contributions: list[dict[str, Any]] = field(default_factory=list)

    def excluding(self, project: str) -> Footprint:
        """This footprint less the parts ``project``'s own runs paid (anywhere up the
        ancestry): what producing it cost *others*."""
        mine = [c for c in self.contributions if c.get("project") == project]
        if not mine:
            return self
        kept = [c for c in self.contributions if c.get("project") != project]
        fp = dataclasses.replace(self, contributions=kept)
        for attr in _FIELDS:
            values = [c[attr] for c in kept if c.get(attr) is not None]
            setattr(fp, attr, sum(values) if values else None)
        fp.citation = (
            f"{self.citation}; less {len(mine)} run(s) of project {project}, which paid them"
        )
        return fp


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
    path: str | None = None  # where its first reuser read it: what `checkpoint register` takes


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
_RUN_COLUMNS = (*_TOTALS, "gpu_model", "project", "started_at", "duration_s", "cost_method")
_FIELDS = ("it_energy_kwh", "energy_kwh", "co2_kg", "cost_usd", "gpu_hours")  # Footprint's


@dataclass
class _Production:
    """One run's production of a checkpoint: when it wrote it, and the share of the run's
    energy spent by then (None: not known, the whole run)."""

    run_id: str
    written_s: float | None = None
    energy_share: float | None = None


@dataclass
class _Node:
    """One checkpoint in the lineage: every run that produced it, and what the first of them
    consumed (the production the footprint counts)."""

    productions: list[_Production] = field(default_factory=list)
    first: _Production | None = None
    parents: set[str] = field(default_factory=set)


class _Lineage:
    """The lineage graph footprints walk, read a node at a time (one checkpoint: a few
    queries per ancestor) or all at once with :meth:`load_all` (savings over a lab: at
    100,000 runs a query per step made 93,000 queries and took 114 s)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._nodes: dict[str, _Node | None] = {}
        self._runs: dict[str, dict[str, Any]] = {}
        self._inputs: dict[str, list[str]] = {}
        self._all = False
        self._rows: dict[str, dict[str, Any] | None] = {}

    _LINK = (
        run_checkpoints.c.checkpoint_id,
        run_checkpoints.c.run_id,
        run_checkpoints.c.written_s,
        run_checkpoints.c.energy_share,
    )

    @classmethod
    def load_all(cls, conn: Any) -> _Lineage:
        """Every produced link, and the inputs and totals of every producing run."""
        rc = run_checkpoints
        producing = select(rc.c.run_id).where(rc.c.role == "produced")
        g = cls(conn)
        g._all = True
        links = conn.execute(select(*cls._LINK).where(rc.c.role == "produced")).all()
        g._load_runs(producing)
        for run_id, ckpt in conn.execute(
            select(rc.c.run_id, rc.c.checkpoint_id).where(
                rc.c.role == "consumed", rc.c.run_id.in_(producing)
            )
        ):
            g._inputs.setdefault(run_id, []).append(ckpt)
        for ckpt, run_id, written_s, share in links:
            g._nodes.setdefault(ckpt, _Node()).productions.append(  # type: ignore[union-attr]
                _Production(run_id, written_s, share)
            )
        for node in g._nodes.values():
            g._settle(node)  # type: ignore[arg-type]
        return g

    def _load_runs(self, run_ids: Any) -> None:
        for row in self.conn.execute(
            select(runs.c.run_id, *(runs.c[c] for c in _RUN_COLUMNS)).where(
                runs.c.run_id.in_(run_ids)
            )
        ):
            self._runs[row.run_id] = dict(row._mapping)

    def _settle(self, node: _Node) -> None:
        """Pick the first production: the earliest write of the bytes (start + write time)."""

        def when(p: _Production) -> tuple:
            run = self._runs.get(p.run_id)
            if run is None or run["started_at"] is None:
                return (1, 0.0, p.run_id)  # a link to a run not stored: last
            start = run["started_at"].timestamp()
            return (0, start + (p.written_s or 0.0), p.run_id)

        node.first = min(node.productions, key=when)
        node.parents = set(self._inputs.get(node.first.run_id, ()))

    def node(self, checkpoint_id: str) -> _Node | None:
        """The checkpoint's productions and the inputs of the first; None if no run made it."""
        if checkpoint_id in self._nodes or self._all:
            return self._nodes.get(checkpoint_id)
        rc = run_checkpoints
        links = self.conn.execute(
            select(*self._LINK).where(rc.c.checkpoint_id == checkpoint_id, rc.c.role == "produced")
        ).all()
        if not links:
            self._nodes[checkpoint_id] = None
            return None
        node = _Node([_Production(r, w, s) for _, r, w, s in links])
        self._load_runs([p.run_id for p in node.productions if p.run_id not in self._runs])
        self._settle(node)
        first = node.first.run_id  # type: ignore[union-attr]
        if first not in self._inputs:
            self._inputs[first] = list(
                self.conn.execute(
                    select(rc.c.checkpoint_id).where(rc.c.run_id == first, rc.c.role == "consumed")
                ).scalars()
            )
            node.parents = set(self._inputs[first])
        self._nodes[checkpoint_id] = node
        return node

    def run(self, run_id: str) -> dict[str, Any] | None:
        """A producing run's totals, project and duration (loaded with its node)."""
        return self._runs.get(run_id)

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

    def registered_for_repo(self, repo: str, revision: str | None) -> dict[str, Any] | None:
        """A footprint registered for a Hugging Face repo id (``hf:org/name``, or any row
        of that repo with a stated footprint), preferring the same revision."""
        key = ("repo", repo, revision)
        if key not in self._rows:
            rows = self.conn.execute(
                select(checkpoints).where(
                    checkpoints.c.hf_repo == repo,
                    checkpoints.c.footprint_source.in_(("registered", "model_card")),
                )
            ).all()
            ranked = sorted(
                (dict(r._mapping) for r in rows),
                key=lambda r: (
                    r["hf_revision"] != revision if revision else False,
                    r["footprint_source"] != "registered",
                    r["hf_revision"] is not None,  # a repo-wide registration before another rev
                ),
            )
            ranked = [r for r in ranked if not r["hf_revision"] or r["hf_revision"] == revision]
            self._rows[key] = ranked[0] if ranked else None  # type: ignore[index]
        return self._rows[key]  # type: ignore[index]


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


def _charge(run: dict[str, Any], prod: _Production) -> dict[str, Any]:
    """One run's part of a footprint: its totals up to the moment it wrote the checkpoint.
    Energy, CO2e and an electricity cost scale with the energy share; GPU-hours (and a
    GPU-hour cost) with the elapsed time."""
    energy = 1.0 if prod.energy_share is None else prod.energy_share
    elapsed = energy
    if prod.written_s is not None and run.get("duration_s"):
        elapsed = min(1.0, prod.written_s / run["duration_s"])
    scale = {
        "it_energy_kwh": energy,
        "energy_kwh": energy,
        "co2_kg": energy,
        "cost_usd": elapsed if run.get("cost_method") == "gpu_hour" else energy,
        "gpu_hours": elapsed,
    }
    column = dict(zip(_FIELDS, _TOTALS, strict=True))
    out: dict[str, Any] = {
        "run_id": prod.run_id,
        "project": run.get("project"),
        "energy_share": energy,
        "gpu_model": run.get("gpu_model"),
    }
    for name, factor in scale.items():
        value = run.get(column[name])
        out[name] = None if value is None else value * factor
    return out


def _footprint(graph: _Lineage, checkpoint_id: str) -> Footprint:
    row = graph.row(checkpoint_id)
    root = graph.node(checkpoint_id)
    if root is None:
        return _stated_of(graph, row, checkpoint_id) or Footprint(
            checkpoint_id, (row or {}).get("name") or _hf_name(checkpoint_id), "unknown"
        )
    # One production of the checkpoint (the first), plus — recursively — one production of
    # each checkpoint that production consumed; a run charged for several of them is counted
    # once, up to the latest moment it is charged for.
    charged: dict[str, dict[str, Any]] = {}
    stated: list[Footprint] = []
    seen = {checkpoint_id}
    todo = [checkpoint_id]
    while todo:
        ckpt = todo.pop()
        node = graph.node(ckpt)
        if node is None:
            ancestor = _stated_of(graph, graph.row(ckpt), ckpt)
            if ancestor is not None:
                stated.append(ancestor)
            continue
        prod = node.first
        run = graph.run(prod.run_id) if prod else None
        if prod is not None and run is not None:
            part = _charge(run, prod)
            before = charged.get(prod.run_id)
            if before is None or part["energy_share"] > before["energy_share"]:
                charged[prod.run_id] = part
        for parent in node.parents - seen:
            seen.add(parent)
            todo.append(parent)
    contributions = sorted(charged.values(), key=lambda c: c["run_id"])
    first = root.first
    n_prod = len({p.run_id for p in root.productions})
    citation = f"{len(contributions)} ecotrain-recorded run(s)"
    if n_prod > 1:
        citation += f"; produced {n_prod} times, the first production counted"
    fp = Footprint(
        checkpoint_id=checkpoint_id,
        name=(row or {}).get("name"),
        source="recorded",
        citation=citation,
        gpu_model=max((c["gpu_model"] for c in contributions if c["gpu_model"]), default=None),
        runs=sorted({p.run_id for p in root.productions}),
        ancestors=sorted(seen - {checkpoint_id}),
        producer=first.run_id if first else None,
        productions=n_prod,
        share=first.energy_share if first else None,
        contributions=contributions,
    )
    for c in contributions:
        for attr in _FIELDS:
            if c[attr] is not None:
                setattr(fp, attr, (getattr(fp, attr) or 0.0) + c[attr])
    for ancestor in stated:  # published ancestors of recorded runs, each once
        fp.citation += f"; ancestor {ancestor.name}: {ancestor.source}"
        # Re-pricing needs the ancestor's IT energy, even when only its GPU-hours are known.
        ancestor.it_energy_kwh = it_energy(ancestor)[0]
        part = {"run_id": None, "project": None, "checkpoint_id": ancestor.checkpoint_id}
        for attr in _FIELDS:
            value = getattr(ancestor, attr)
            part[attr] = value
            if value is not None:
                setattr(fp, attr, (getattr(fp, attr) or 0.0) + value)
        fp.contributions.append(part)
    return fp


def _stated_of(graph: _Lineage, row: dict[str, Any] | None, checkpoint_id: str) -> Footprint | None:
    """A stated footprint for a checkpoint no recorded run produced: its own, else one
    registered for the Hugging Face repo (and revision) it was loaded from, else the
    catalogue's."""
    own = (row or {}).get("footprint_source") in ("registered", "model_card")
    if row and row.get("hf_repo") and not own:
        registered = graph.registered_for_repo(row["hf_repo"], row.get("hf_revision"))
        if registered is not None and registered["checkpoint_id"] != checkpoint_id:
            fp = _stated(registered, checkpoint_id)
            if fp is not None:
                fp.name = row.get("name") or fp.name
                fp.citation = (
                    f"{fp.citation} (registered for {row['hf_repo']}"
                    + (f"@{registered['hf_revision']}" if registered.get("hf_revision") else "")
                    + ")"
                )
                return fp
    return _stated(row, checkpoint_id)


def _quoted(path: str | None) -> str | None:
    import shlex

    return shlex.quote(path) if path else None


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
    name = footprint.name or short_id(footprint.checkpoint_id)
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
        f"({site.intensity.region}) and the site's price; footprint {footprint.source}: "
        f"{footprint.citation or 'no citation'}",
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
            rc.c.path,
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
            select(reuses.c.checkpoint_id, reuses.c.run_id, reuses.c.path, reuses.c.reuses).where(
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
    out = []
    for r in first:
        # The part of the footprint the reusing project paid itself, anywhere up the
        # ancestry (it pretrained the base another project fine-tuned), is not avoided.
        fp = fps[r.checkpoint_id].excluding(sites[r.run_id]["project"])
        item = avoided(fp, mode, site or _site_of(sites[r.run_id]), r.reuses)
        out.append(dataclasses.replace(item, path=r.path))
    return _fold_ancestors(out)


def avoided_total(
    items: list[Avoided],
) -> tuple[tuple[float | None, ...], list[tuple[str, str]]]:
    """(energy kWh, CO2e kg, cost $) avoided in all, and (name, what to register) of the
    reused checkpoints whose footprint is unknown. A total is None (unknown) when nothing
    in it is known; it is never a zero made of unknowns."""
    totals = []
    for attr in ("energy_kwh", "co2_kg", "cost_usd"):
        known = [getattr(a, attr) for a in items if getattr(a, attr) is not None]
        totals.append(sum(known) if known else None)
    unknown = [
        (
            a.name or short_id(a.checkpoint_id),
            _hf_name(a.checkpoint_id) or _quoted(getattr(a, "path", None)) or "<its path>",
        )
        for a in items
        if a.footprint.source == "unknown" and a.mode != "none"
    ]
    return tuple(totals), unknown


def _fold_ancestors(items: list[Avoided]) -> list[Avoided]:
    """Avoid each retraining once: a reused checkpoint whose cost is already inside the
    claimed footprint of another reused checkpoint (its descendant) is listed with nothing
    claimed. Inside means every part of it (each run, each stated ancestor) is still in the
    descendant's figure: a part the descendant's reuser paid itself was taken out there."""
    ancestors = {b.checkpoint_id: set(b.footprint.ancestors) for b in items}
    parts = {
        b.checkpoint_id: {_part_key(c) for c in b.footprint.contributions}
        or {(None, b.checkpoint_id)}  # a stated footprint is one part
        for b in items
    }
    for a in items:
        for b in items:
            if (
                a is not b
                and a.checkpoint_id in ancestors[b.checkpoint_id]
                and b.checkpoint_id not in ancestors[a.checkpoint_id]
                and a.mode != "none"
                and parts[a.checkpoint_id] <= parts[b.checkpoint_id]
            ):
                a.energy_kwh = a.co2_kg = a.cost_usd = 0.0
                a.assumption = (
                    f"already counted in the avoided retraining of {b.name or b.checkpoint_id}, "
                    "which descends from it"
                )
                break
    return items


def _part_key(part: dict[str, Any]) -> tuple:
    return (part.get("run_id"), part.get("checkpoint_id") if part.get("run_id") is None else None)


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
