"""Regenerate sample_runs/example.db by really running the demo pipeline on this machine.

    python sample_runs/make_example_db.py            # full-length runs (about half a minute)
    python sample_runs/make_example_db.py --quick    # shorter runs

It runs sample_runs/demo.sh --published-base (two fine-tunes, an adapter and a merge in
project demo, each under `ecotrain run --region FRA`, starting from a base registered as a
stand-in for BERT-base with its published pre-training footprint) in a temporary directory,
with a private ecotrain config and data dir and no GPU (ECOTRAIN_NO_GPU=1: the scripts are
CPU-only, so the energy is this host's CPU and RAM, as ecotrain measures or models them),
then copies the demo's database, compacted, to sample_runs/example.db. Nothing in it is
invented: every run figure is what ecotrain recorded for those four runs, and the base's
footprint is the published one, labelled as a stand-in. So the first dashboard a newcomer
sees reads in kWh, kg and dollars: what reusing a published base saved, beside the
fine-tunes' own (tiny) cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ecotrain_command() -> str:
    """The ecotrain console script beside this interpreter, else the one on PATH."""
    local = Path(sys.executable).parent / "ecotrain"
    found = str(local) if local.exists() else shutil.which("ecotrain")
    if not found:
        raise SystemExit("error: ecotrain is not installed here: pip install . first")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "example.db")
    ap.add_argument("--quick", action="store_true", help="shorter training runs")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ecotrain-example-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "ECOTRAIN": ecotrain_command(),
            "PYTHON": sys.executable,
            "ECOTRAIN_DATA_DIR": str(work / "data"),
            "ECOTRAIN_CONFIG": str(work / "no-config.toml"),
            "ECOTRAIN_NO_GPU": "1",
        }
        for var in ("ECOTRAIN_DB", "ECOTRAIN_PROJECT", "ECOTRAIN_REGION", "ECOTRAIN_PUE"):
            env.pop(var, None)
        demo = work / "demo"
        cmd = ["bash", str(HERE / "demo.sh"), "--dir", str(demo), "--published-base"]
        if args.quick:
            cmd.append("--quick")
        subprocess.run(cmd, env=env, check=True, cwd=work)

        source = demo / "ecotrain.db"
        with sqlite3.connect(source) as conn:
            statuses = [row[0] for row in conn.execute("SELECT status FROM runs")]
        if len(statuses) != 4 or set(statuses) != {"finished"}:
            raise SystemExit(f"error: expected 4 finished runs, got {statuses}")
        args.out.unlink(missing_ok=True)
        # The backup API gives one consistent file (no -wal beside it); VACUUM compacts it.
        src = sqlite3.connect(source)
        dst = sqlite3.connect(args.out)
        with dst:
            src.backup(dst)
        src.close()
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.execute("VACUUM")
        dst.close()
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out} ({size_kb:.0f} KiB, {len(statuses)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
