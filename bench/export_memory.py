"""Peak memory and time of `ecotrain export` on a large store, per format.

    python bench/gen_dashboard_db.py /tmp/runs100k.db --runs 100000
    python bench/export_memory.py /tmp/runs100k.db [/tmp/runs1m.db postgresql://...] \
        [--out bench/results/export-memory.md]

Each export runs as its own process (``python -m ecotrain export``); its peak RSS is the
kernel's ``ru_maxrss`` for that process (os.wait4), its output goes to a temporary folder.
``--code DIR`` measures another checkout (e.g. the main branch before streaming).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ("csv", "jsonl", "json", "parquet")


def measure(db: str, fmt: str, code: Path | None, out_dir: Path) -> dict:
    """Export ``db`` as ``fmt``; returns peak RSS (MiB), wall seconds, output size and rc."""
    out = out_dir / f"runs.{fmt}"
    env = {**os.environ, "ECOTRAIN_DATA_DIR": str(out_dir / "data")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    argv = [sys.executable, "-m", "ecotrain", "export", "--db", str(db), "-o", str(out)]
    argv += ["--format", fmt]
    t0 = time.perf_counter()
    # cwd: `python -m` puts it first on sys.path, which would shadow --code's checkout.
    proc = subprocess.Popen(
        argv, env=env, cwd=out_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    size = out.stat().st_size if out.exists() else 0
    out.unlink(missing_ok=True)
    return {
        "rss_mib": usage.ru_maxrss / 1024,
        "wall_s": wall,
        "size_mb": size / 1e6,
        "rc": rc,
        "err": stderr.strip().splitlines()[-1:] if rc else [],
    }


def count_runs(db: str) -> int:
    """Runs in the store at ``db`` (SQLite path or URL)."""
    from sqlalchemy import text

    from ecotrain.store.engine import make_engine, resolve_url

    engine = make_engine(resolve_url(db), readonly=True)
    try:
        with engine.connect() as conn:
            return conn.execute(text("select count(*) from runs")).scalar()
    finally:
        engine.dispose()


def main() -> None:
    """Command line: databases to export, formats, where to write the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dbs", nargs="+", help="SQLite paths or database URLs")
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--code", type=Path, help="another checkout to measure (PYTHONPATH)")
    p.add_argument("--out", type=Path, help="append the Markdown table to this file")
    args = p.parse_args()
    lines = [
        f"\n### `ecotrain export` peak memory ({args.code or 'this checkout'})\n",
        "| runs | format | peak RSS | wall | output | rc |",
        "|---|---|---|---|---|---|",
    ]
    for db in args.dbs:
        n = count_runs(db)
        for fmt in args.formats.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                r = measure(db, fmt, args.code, Path(tmp))
            line = (
                f"| {n:,} | {fmt} | {r['rss_mib']:.0f} MiB | {r['wall_s']:.1f} s | "
                f"{r['size_mb']:.0f} MB | {r['rc']} {' '.join(r['err'])} |"
            )
            print(line, flush=True)
            lines.append(line)
    if args.out:
        with args.out.open("a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
