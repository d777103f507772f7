"""The lineage DAG as a Rich tree, for `ecotrain lineage`: a run with the checkpoints it
read (and the runs that made them, upwards) and wrote (and the runs that reused them)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.tree import Tree
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ecotrain.store.schema import checkpoints, run_checkpoints, runs
from ecotrain.units import fmt_co2, fmt_duration, fmt_energy, short_id

MAX_DEPTH = 8


def resolve_item(engine: Engine, item: str) -> tuple[str, str]:
    """('run', run_id) or ('checkpoint', checkpoint_id) for what the user typed."""
    if not item.strip():
        # An empty prefix matches everything, and Path("") is the current directory.
        raise LookupError("give a run id, checkpoint id, path or Hugging Face id")
    with engine.connect() as conn:
        run_ids = (
            conn.execute(
                select(runs.c.run_id)
                .where(runs.c.run_id.startswith(item, autoescape=True))
                .limit(2)
            )
            .scalars()
            .all()
        )
        if len(run_ids) == 1:
            return "run", run_ids[0]
        ids = (
            conn.execute(
                select(checkpoints.c.checkpoint_id)
                .where(
                    checkpoints.c.checkpoint_id.startswith(item, autoescape=True)
                    | checkpoints.c.checkpoint_id.startswith(f"sha256:{item}", autoescape=True)
                    | (checkpoints.c.hf_repo == item)
                    | (checkpoints.c.name == item)
                )
                .limit(2)
            )
            .scalars()
            .all()
        )
        if len(ids) == 1:
            return "checkpoint", ids[0]
    if Path(item).exists():
        from ecotrain.lineage import identify

        return "checkpoint", identify(item)["checkpoint_id"]
    raise LookupError(
        f"no run or checkpoint matches {item!r}"
        + (" (ambiguous prefix)" if len(run_ids) > 1 or len(ids) > 1 else "")
    )


def _run_label(row) -> str:
    return escape(
        f"run {row.run_id[:12]} [{row.project}] {row.status} · "
        f"{fmt_energy(row.facility_energy_kwh)} · {fmt_co2(row.co2_kg)} CO2e"
    )


def _ckpt_label(conn, ckpt_id: str, path: str | None = None) -> str:
    """A checkpoint as a tree shows it: its name and short id, and under a run, also the
    name the run read or wrote it by when that differs (a seeded rerun's
    `out/copy.safetensors` holding the bytes first written as `out/ckpt.safetensors`)."""
    from ecotrain.lineage import display_name

    row = conn.execute(
        select(checkpoints.c.name).where(checkpoints.c.checkpoint_id == ckpt_id)
    ).first()
    name = row.name if row and row.name else "?"
    here = display_name(path) if path and not ckpt_id.startswith("hf:") else None
    alias = f" as {here}" if here and here != name else ""
    return escape(f"{name}{alias} ({short_id(ckpt_id)})")


def _links(conn, ckpt_id: str, role: str):
    return conn.execute(
        select(runs)
        .join(run_checkpoints, run_checkpoints.c.run_id == runs.c.run_id)
        .where(run_checkpoints.c.checkpoint_id == ckpt_id, run_checkpoints.c.role == role)
    ).all()


def _ckpts_of(conn, run_id: str, role: str) -> list[tuple[str, str | None]]:
    """(checkpoint id, the path the run used) of what a run read or wrote."""
    return [
        (row.checkpoint_id, row.path)
        for row in conn.execute(
            select(run_checkpoints.c.checkpoint_id, run_checkpoints.c.path).where(
                run_checkpoints.c.run_id == run_id, run_checkpoints.c.role == role
            )
        )
    ]


def _written(conn, run_id: str) -> list[tuple[str, str | None, str]]:
    """The checkpoints a run wrote, each with when: the moment and the share of the run's
    energy its footprint carries."""
    rc = run_checkpoints
    out = []
    for ckpt, path, written_s, share in conn.execute(
        select(rc.c.checkpoint_id, rc.c.path, rc.c.written_s, rc.c.energy_share)
        .where(rc.c.run_id == run_id, rc.c.role == "produced")
        .order_by(rc.c.written_s)
    ):
        when = ""
        if written_s is not None:
            when = f" at {fmt_duration(written_s)}"
            if share is not None:
                when += f", {share:.0%} of the run's energy"
        out.append((ckpt, path, escape(when)))
    return out


def _up(conn, node: Tree, ckpt_id: str, depth: int, seen: set) -> None:
    for run in _links(conn, ckpt_id, "produced"):
        child = node.add(f"made by {_run_label(run)}")
        if depth < MAX_DEPTH and run.run_id not in seen:
            seen.add(run.run_id)
            for parent, path in _ckpts_of(conn, run.run_id, "consumed"):
                label = _ckpt_label(conn, parent, path)
                _up(conn, child.add(f"from {label}"), parent, depth + 1, seen)


def _down(conn, node: Tree, ckpt_id: str, depth: int, seen: set) -> None:
    for run in _links(conn, ckpt_id, "consumed"):
        child = node.add(f"reused by {_run_label(run)}")
        if depth < MAX_DEPTH and run.run_id not in seen:
            seen.add(run.run_id)
            for made, path in _ckpts_of(conn, run.run_id, "produced"):
                label = _ckpt_label(conn, made, path)
                _down(conn, child.add(f"wrote {label}"), made, depth + 1, seen)


def tree(engine: Engine, kind: str, key: str) -> Tree:
    """The lineage around one run or checkpoint."""
    with engine.connect() as conn:
        if kind == "run":
            run = conn.execute(select(runs).where(runs.c.run_id == key)).one()
            root = Tree(_run_label(run))
            for ckpt, path in _ckpts_of(conn, key, "consumed"):
                _up(conn, root.add(f"read {_ckpt_label(conn, ckpt, path)}"), ckpt, 1, {key})
            for ckpt, path, when in _written(conn, key):
                label = _ckpt_label(conn, ckpt, path)
                _down(conn, root.add(f"wrote {label}{when}"), ckpt, 1, {key})
            return root
        root = Tree(f"checkpoint {_ckpt_label(conn, key)}")
        _up(conn, root, key, 1, set())
        _down(conn, root, key, 1, set())
        return root


def as_dict(engine: Engine, kind: str, key: str) -> dict:
    """`ecotrain lineage --json`: the item, its direct links, and the whole tree as nested
    ``{"label", "children"}`` (the same walk as :func:`tree`)."""
    from rich.text import Text

    from ecotrain.store.aggregates import checkpoint_runs, run_detail

    def nested(node: Tree) -> dict:
        label = Text.from_markup(str(node.label)).plain  # the tree's labels are Rich markup
        return {"label": label, "children": [nested(c) for c in node.children]}

    out: dict = {"kind": kind, "id": key}
    if kind == "run":
        out["checkpoints"] = run_detail(engine, key)["checkpoints"]
    else:
        out["runs"] = checkpoint_runs(engine, key)
    out["tree"] = nested(tree(engine, kind, key))
    return out
