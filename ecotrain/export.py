"""`ecotrain export`: runs (and optionally their samples and checkpoints) for pandas or a sheet.

Formats:

- ``csv`` / ``parquet``: the runs go to FILE; samples and checkpoint links, when asked for,
  go next to it as ``<stem>.samples.<ext>`` and ``<stem>.checkpoints.<ext>`` (one table a file).
  JSON columns (tags, notes, command...) are written as JSON text.
- ``json``: one object ``{"runs": [...], "samples": [...], "checkpoints": [...]}``.

pandas is imported here only (never on the run path); parquet needs pyarrow.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from ecotrain.errors import UserError

FORMATS = ("csv", "parquet", "json")
JSON_COLUMNS = ("command", "tags", "gpu_devices", "notes", "progress", "prediction")


def collect(engine: Any, flt: Any, with_samples: bool, with_checkpoints: bool) -> dict[str, list]:
    """The rows to export: runs matching ``flt``, oldest first, and their samples/links."""
    from sqlalchemy import select

    from ecotrain.store.queries import list_runs
    from ecotrain.store.schema import checkpoints, run_checkpoints, samples

    rows = list_runs(engine, flt, limit=10**9, descending=False)
    tables: dict[str, list] = {"runs": rows}
    ids = [r["run_id"] for r in rows]
    with engine.connect() as conn:
        if with_samples:
            tables["samples"] = []
            for chunk in _chunks(ids, 500):
                stmt = (
                    select(samples)
                    .where(samples.c.run_id.in_(chunk))
                    .order_by(samples.c.run_id, samples.c.t_s)
                )
                tables["samples"].extend(dict(r._mapping) for r in conn.execute(stmt))
        if with_checkpoints:
            tables["checkpoints"] = []
            cols = [
                *run_checkpoints.columns,
                *[c for c in checkpoints.columns if c.name != "checkpoint_id"],
            ]
            for chunk in _chunks(ids, 500):
                stmt = (
                    select(*cols)
                    .select_from(
                        run_checkpoints.outerjoin(
                            checkpoints,
                            checkpoints.c.checkpoint_id == run_checkpoints.c.checkpoint_id,
                        )
                    )
                    .where(run_checkpoints.c.run_id.in_(chunk))
                )
                tables["checkpoints"].extend(dict(r._mapping) for r in conn.execute(stmt))
    return tables


def _empty_columns(name: str) -> list[str]:
    from ecotrain.store.schema import runs, samples

    table = {"runs": runs, "samples": samples}.get(name)
    return [c.name for c in table.columns] if table is not None else []


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)] or []


def write(tables: dict[str, list], fmt: str, out: Path) -> list[Path]:
    """Write the tables in ``fmt``; returns the files written."""
    if fmt not in FORMATS:
        raise UserError(f"bad --format {fmt!r}: use {', '.join(FORMATS)}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise UserError("parquet export needs pyarrow: pip install pyarrow (or use --format csv)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        from ecotrain.store.records import to_json_value

        out.write_text(json.dumps(tables, default=to_json_value, indent=1) + "\n")
        return [out]
    from ecotrain.extras import require

    require("dashboard", f"{fmt} export", ("pandas",))
    import pandas as pd

    written = []
    for name, rows in tables.items():
        path = out if name == "runs" else out.with_name(f"{out.stem}.{name}{out.suffix}")
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=_empty_columns(name))
        for col in JSON_COLUMNS:
            if col in frame.columns:
                frame[col] = frame[col].map(lambda v: None if v is None else json.dumps(v))
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        written.append(path)
    return written
