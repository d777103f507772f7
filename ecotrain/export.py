"""`ecotrain export`: runs (and optionally their samples and checkpoints) for pandas or a sheet.

Formats (``--format``, or inferred from the suffix of ``-o``; a mismatch is refused):

- ``csv`` / ``jsonl`` / ``parquet``: the runs go to FILE; samples and checkpoint links, when
  asked for, go next to it as ``<stem>.samples.<ext>`` and ``<stem>.checkpoints.<ext>`` (one
  table a file). JSON columns (tags, notes, command...) are JSON text in CSV and Parquet.
- ``json``: one object ``{"runs": [...], "samples": [...], "checkpoints": [...]}``.

Everything streams: rows come from the database in chunks (a server-side cursor on
PostgreSQL) and go out as they come (CSV and JSON rows, Parquet row groups), so memory stays
flat whether the store holds a hundred runs or a million. Without ``-o`` the export goes to
standard output (csv, json, jsonl). Machine output keeps full precision; a non-finite float
(NaN, inf) is written as empty/null, never as text JSON readers reject.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ecotrain.errors import UserError

FORMATS = ("csv", "parquet", "json", "jsonl")
SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
JSON_COLUMNS = ("command", "tags", "gpu_devices", "notes", "progress", "prediction")
# Rows fetched per round trip; and rows per Parquet row group (its columns are held as
# Python lists until written, so this bounds the export's memory).
CHUNK = 5_000
ROW_GROUP = 20_000


def resolve_format(fmt: str | None, output: str | None) -> str:
    """The format to write: ``--format`` if given, else the suffix of ``-o``, else csv.

    A ``--format`` that contradicts a known suffix (``-o runs.json --format csv``) is refused
    rather than writing CSV into a file every tool will read as JSON."""
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise UserError(f"bad --format {fmt!r}: use {', '.join(FORMATS)}")
    suffix = Path(output).suffix.lower() if output not in (None, "-") else ""
    inferred = SUFFIXES.get(suffix)
    if suffix and not inferred and not fmt:
        # `-o runs.txt`: CSV there would be a guess the user never made
        raise UserError(
            f"-o {output}: no format is known for {suffix!r} files: give --format "
            f"({', '.join(FORMATS)}) or a file name ending in {', '.join(sorted(SUFFIXES))}"
        )
    if fmt and inferred and fmt != inferred:
        raise UserError(
            f"-o {output} looks like {inferred} but --format is {fmt}: "
            f"change the file name or the format"
        )
    return fmt or inferred or "csv"


@dataclass
class _Table:
    name: str
    columns: list[Any]  # SQLAlchemy column expressions, labelled
    types: dict[str, str]  # column -> float | int | bool | datetime | text | json


def _kind(column: Any) -> str:
    from sqlalchemy import JSON, Boolean, DateTime, Float, Integer

    t = column.type
    if isinstance(t, JSON):
        return "json"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, Integer):
        return "int"
    if isinstance(t, Float):
        return "float"
    if isinstance(t, DateTime):
        return "datetime"
    return "text"


def _table(name: str, columns: list[Any]) -> _Table:
    from sqlalchemy import Text, cast

    types = {c.name: _kind(c) for c in columns}
    # JSON columns come out as their stored text: no parse and re-dump per value.
    exprs = [cast(c, Text).label(c.name) if types[c.name] == "json" else c for c in columns]
    return _Table(name, exprs, types)


def _tables(flt: Any, with_samples: bool, with_checkpoints: bool) -> list[tuple[_Table, Any]]:
    """(table, SELECT) for each table to export, in a stable order."""
    from sqlalchemy import select

    from ecotrain.store.queries import effective_status
    from ecotrain.store.schema import checkpoints, run_checkpoints, runs, samples

    status = effective_status()
    run_cols = [status if c.name == "status" else c for c in runs.columns]
    run_table = _table("runs", run_cols)
    out = [
        (
            run_table,
            select(*run_table.columns)
            .where(flt.where())
            .order_by(runs.c.started_at, runs.c.run_id),
        )
    ]
    selected = select(runs.c.run_id).where(flt.where())
    if with_samples:
        t = _table("samples", list(samples.columns))
        stmt = (
            select(*t.columns)
            .where(samples.c.run_id.in_(selected))
            .order_by(samples.c.run_id, samples.c.t_s)
        )
        out.append((t, stmt))
    if with_checkpoints:
        cols = [
            *run_checkpoints.columns,
            *[c for c in checkpoints.columns if c.name != "checkpoint_id"],
        ]
        t = _table("checkpoints", cols)
        stmt = (
            select(*t.columns)
            .select_from(
                run_checkpoints.outerjoin(
                    checkpoints, checkpoints.c.checkpoint_id == run_checkpoints.c.checkpoint_id
                )
            )
            .where(run_checkpoints.c.run_id.in_(selected))
            .order_by(run_checkpoints.c.run_id, run_checkpoints.c.role)
        )
        out.append((t, stmt))
    return out


def _chunks(engine: Any, stmt: Any) -> Iterator[list[tuple]]:
    """The rows of ``stmt`` in chunks of CHUNK, streamed (never all in memory)."""
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=CHUNK).execute(stmt)
        for part in result.partitions(CHUNK):
            yield [tuple(r) for r in part]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_row(names: list[str], types: dict[str, str], row: tuple) -> dict[str, Any]:
    out = {}
    for name, value in zip(names, row, strict=True):
        kind = types[name]
        if value is None:
            out[name] = None
        elif kind == "json":
            out[name] = json.loads(value) if isinstance(value, str) else value
        elif kind == "datetime":
            out[name] = value.isoformat()
        else:
            out[name] = _finite(value)
    return out


def _names(table: _Table) -> list[str]:
    return list(table.types)


_INFINITIES = (math.inf, -math.inf)


def _write_csv(f: IO[str], table: _Table, chunks: Iterator[list[tuple]]) -> int:
    # csv writes None as "" and floats with repr (full precision) by itself: only datetimes
    # and non-finite floats need a hand, so only their columns are touched (a million rows).
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(_names(table))
    kinds = list(table.types.values())
    dates = [i for i, k in enumerate(kinds) if k == "datetime"]
    floats = [i for i, k in enumerate(kinds) if k == "float"]
    n = 0
    for rows in chunks:
        out = []
        for row in rows:
            row = list(row)
            for i in dates:
                if row[i] is not None:
                    row[i] = row[i].isoformat()
            for i in floats:
                v = row[i]
                if v is not None and (v != v or v in _INFINITIES):
                    row[i] = None
            out.append(row)
        writer.writerows(out)
        n += len(rows)
    return n


def _write_jsonl(f: IO[str], table: _Table, chunks: Iterator[list[tuple]]) -> int:
    names, n = _names(table), 0
    for rows in chunks:
        f.writelines(
            json.dumps(_json_row(names, table.types, row), allow_nan=False) + "\n" for row in rows
        )
        n += len(rows)
    return n


def _arrow_schema(table: _Table) -> Any:
    import pyarrow as pa

    types = {
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "datetime": pa.timestamp("us"),
        "text": pa.string(),
        "json": pa.string(),
    }
    return pa.schema([(name, types[kind]) for name, kind in table.types.items()])


def _write_parquet(f: IO[bytes], table: _Table, chunks: Iterator[list[tuple]]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(table)
    names, n = _names(table), 0
    buffer: list[tuple] = []

    def flush(writer: Any) -> None:
        columns = list(zip(*buffer, strict=True)) if buffer else [()] * len(names)
        arrays = [
            pa.array([_finite(v) for v in col], type=schema.field(i).type)
            for i, col in enumerate(columns)
        ]
        writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        buffer.clear()

    with pq.ParquetWriter(f, schema) as writer:
        for rows in chunks:
            buffer.extend(rows)
            n += len(rows)
            if len(buffer) >= ROW_GROUP:
                flush(writer)
        if buffer or n == 0:
            flush(writer)
    return n


def _write_json(f: IO[str], tables: list[tuple[_Table, Iterator[list[tuple]]]]) -> dict:
    """One JSON object, written as it streams: ``{"runs": [...], "samples": [...]}``."""
    counts = {}
    f.write("{")
    for i, (table, chunks) in enumerate(tables):
        f.write(("," if i else "") + f"\n{json.dumps(table.name)}: [")
        names, n = _names(table), 0
        for rows in chunks:
            for row in rows:
                f.write(("," if n else "") + "\n ")
                f.write(json.dumps(_json_row(names, table.types, row), allow_nan=False))
                n += 1
        f.write("\n]")
        counts[table.name] = n
    f.write("\n}\n")
    return counts


def export(
    engine: Any,
    flt: Any,
    fmt: str,
    output: str | None,
    with_samples: bool = False,
    with_checkpoints: bool = False,
) -> dict[str, tuple[str, int]]:
    """Stream the runs matching ``flt`` (and their samples/links) to ``output`` in ``fmt``
    (stdout when ``output`` is None or ``-``); returns {table: (where, rows)}."""
    from ecotrain.outfile import check_target, is_stdout, open_output

    if fmt not in FORMATS:
        raise UserError(f"bad --format {fmt!r}: use {', '.join(FORMATS)}")
    if fmt == "parquet":
        from ecotrain.extras import require

        require("parquet", "parquet export")
    to_stdout = is_stdout(output)
    if to_stdout and fmt == "parquet":
        raise UserError("parquet is binary: give a file with -o FILE.parquet")
    if to_stdout and fmt != "json" and (with_samples or with_checkpoints):
        raise UserError(f"{fmt} holds one table a file: give -o FILE (or use --format json)")
    tables = _tables(flt, with_samples, with_checkpoints)
    if fmt == "json":
        with open_output(output) as f:
            counts = _write_json(f, [(t, _chunks(engine, stmt)) for t, stmt in tables])
        where = "stdout" if to_stdout else str(output)
        return {name: (where, n) for name, n in counts.items()}
    base = Path(str(output)) if not to_stdout else None
    paths = {
        t.name: None
        if base is None
        else (base if t.name == "runs" else base.with_name(f"{base.stem}.{t.name}{base.suffix}"))
        for t, _ in tables
    }
    for path in paths.values():
        if path is not None:
            check_target(path)  # all of them before writing any
    written: dict[str, tuple[str, int]] = {}
    for table, stmt in tables:
        path = paths[table.name]
        writer = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}[fmt]
        with open_output(path, binary=fmt == "parquet") as f:
            n = writer(f, table, _chunks(engine, stmt))
        written[table.name] = ("stdout" if path is None else str(path), n)
    return written
