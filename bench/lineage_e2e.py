"""End to end, on a real training loop nobody wrote for ecotrain (bench/lineage/train.py,
nanoGPT-style): pretrain -> resume in place -> fine-tune in another project -> the first
project evaluates the fine-tune. Each step is a plain `ecotrain run`; then the lineage, the
checkpoints and the savings table are printed, and the claims issue 12 makes are checked
against the database.

    python bench/lineage_e2e.py            # ~10 s on 2 idle cores, minutes on busy ones
    python bench/lineage_e2e.py --out bench/results/lineage-e2e.md

Everything goes to a throw-away directory (database, data dir, config).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN = HERE / "lineage" / "train.py"
ECOTRAIN = str(Path(sys.executable).parent / "ecotrain")

STEPS = [  # (what, project, train.py flags)
    ("pretrain from scratch", "pretrain", ["--dataset=docs", "--out_dir=out", "--max_iters=1500"]),
    (
        "resume in place (reads out/ckpt, overwrites it)",
        "pretrain",
        ["--dataset=docs", "--out_dir=out", "--init_from=resume", "--max_iters=3000"],
    ),
    (
        "fine-tune in another project",
        "finetune",
        ["--dataset=typing", "--out_dir=out-ft", "--init_from=out", "--max_iters=600"],
    ),
    (
        "the first project evaluates the fine-tune",
        "pretrain",
        ["--dataset=typing", "--out_dir=out-ft", "--init_from=resume", "--eval_only=True"],
    ),
]


def make_data(work: Path) -> None:
    """Byte-level token arrays (uint16, nanoGPT's format) from stdlib docstrings."""
    import numpy as np

    corpora = {
        "docs": ["re", "json", "collections", "argparse", "pathlib", "subprocess"],
        "typing": ["typing", "dataclasses", "enum", "abc"],
    }
    for name, modules in corpora.items():
        text = "\n".join((__import__(m).__doc__ or "") for m in modules).encode() * 4
        tokens = np.frombuffer(text, dtype=np.uint8).astype(np.uint16)
        split = int(len(tokens) * 0.9)
        folder = work / "data" / name
        folder.mkdir(parents=True)
        tokens[:split].tofile(folder / "train.bin")
        tokens[split:].tofile(folder / "val.bin")


def sh(args: list[str], env: dict, cwd: Path) -> tuple[str, float]:
    t0 = time.monotonic()
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout + result.stderr, time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the report here (Markdown)")
    args = parser.parse_args()
    lines: list[str] = ["# Lineage and savings, end to end (bench/lineage_e2e.py)", ""]

    def say(text: str = "") -> None:
        print(text)
        lines.append(text)

    with tempfile.TemporaryDirectory(prefix="ecotrain-e2e-") as tmp:
        tmp_path = Path(tmp)
        work = tmp_path / "work"
        work.mkdir()
        make_data(work)
        env = {
            **os.environ,
            "ECOTRAIN_DB": str(tmp_path / "ecotrain.db"),
            "ECOTRAIN_DATA_DIR": str(tmp_path / "ecotrain-data"),
            "ECOTRAIN_CONFIG": str(tmp_path / "config.toml"),
            "ECOTRAIN_REGION": "FRA",
        }
        say(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, no GPU used; region FRA.")
        say("")
        run_ids = []
        for i, (what, project, flags) in enumerate(STEPS, start=1):
            cmd = [ECOTRAIN, "run", "--project", project, "--", sys.executable, str(TRAIN), *flags]
            out, wall = sh(cmd, env, work)
            shown = " ".join(["ecotrain run --project", project, "-- python train.py", *flags])
            say(f"## {i}. {what} ({wall:.1f} s)")
            say("")
            say("    $ " + shown)
            for line in out.strip().splitlines():
                say("    " + line)
            say("")
            found = re.search(r"· run ([0-9a-f]{12}) \[", out)
            if not found:
                raise SystemExit(f"no run id in the summary line:\n{out}")
            run_ids.append(found[1])
        sh([ECOTRAIN, "sync", "-q"], env, work)
        run_ids = [_full_id(tmp_path / "ecotrain.db", prefix) for prefix in run_ids]
        for title, cmd in (
            ("Lineage of step 4's run", ["lineage", run_ids[-1]]),
            ("Checkpoints", ["checkpoints"]),
            ("Savings, whole lab (reproduce)", ["savings"]),
            ("Savings, project finetune", ["savings", "--project", "finetune"]),
            (
                "Savings, project pretrain (as-published)",
                ["savings", "--project", "pretrain", "--mode", "as-published"],
            ),
        ):
            out, _ = sh([ECOTRAIN, *cmd], {**env, "COLUMNS": "120"}, work)
            say(f"## {title}")
            say("")
            say("    $ ecotrain " + " ".join(cmd))
            for line in out.rstrip().splitlines():
                say("    " + line)
            say("")
        say("## Checks")
        say("")
        failed = 0
        for ok, claim in checks(tmp_path / "ecotrain.db", run_ids, env, work):
            failed += not ok
            say(f"- {'PASS' if ok else 'FAIL'}: {claim}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 1 if failed else 0


def _full_id(db: Path, prefix: str) -> str:
    """The full id of the run the summary line named (its final record may still be on its
    way through the detached sync: wait a little)."""
    for _ in range(100):
        try:
            with sqlite3.connect(db) as conn:
                row = conn.execute(
                    "select run_id from runs where run_id like ? and status != 'running'",
                    (prefix + "%",),
                ).fetchone()
            if row:
                return row[0]
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    raise SystemExit(f"run {prefix} not in the database")


def checks(db: Path, run_ids: list[str], env: dict, work: Path) -> list[tuple[bool, str]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        links = [dict(r) for r in conn.execute("select * from run_checkpoints")]
        runs = {r["run_id"]: dict(r) for r in conn.execute("select * from runs")}

    def ids(run: str, role: str) -> list[str]:
        return [x["checkpoint_id"] for x in links if x["run_id"] == run and x["role"] == role]

    pre, resume, ft, back = run_ids
    out = []
    out.append(
        (
            ids(resume, "consumed") == ids(pre, "produced") != ids(resume, "produced"),
            "the resumed run consumed the bytes the pretraining wrote (not the ones it wrote "
            "over them) and produced new ones",
        )
    )
    out.append(
        (
            ids(ft, "consumed") == ids(resume, "produced"),
            "the fine-tune consumed the resumed checkpoint",
        )
    )
    out.append(
        (
            not any(x["path"] and x["path"].endswith(".bin") for x in links),
            "train.bin / val.bin (token arrays) are not checkpoints",
        )
    )
    shares = [x["energy_share"] for x in links if x["role"] == "produced"]
    out.append(
        (
            all(s is not None and 0 < s <= 1 for s in shares),
            "each produced checkpoint carries its run's energy up to its write: shares "
            + ", ".join(f"{s:.3f}" for s in shares),
        )
    )
    data = json.loads(
        sh(
            [ECOTRAIN, "savings", "--project", "pretrain", "--json", "--mode", "as-published"],
            env,
            work,
        )[0]
    )
    (item,) = data["avoided"]
    fp = item["footprint"]
    mine = sum(c["energy_kwh"] for c in fp["contributions"] if c["project"] == "pretrain")
    ft_part = next(c["energy_kwh"] for c in fp["contributions"] if c["run_id"] == ft)
    out.append(
        (
            mine == 0 and abs(item["energy_kwh"] - ft_part) < 1e-12,
            f"project pretrain, reading the fine-tune back, avoided only the fine-tune's part "
            f"({item['energy_kwh'] * 1000:.4g} Wh), none of its own pretraining",
        )
    )
    total = sum(r["facility_energy_kwh"] for r in runs.values())
    out.append((True, f"total measured facility energy of the 4 runs: {total * 1000:.4g} Wh"))
    return out


if __name__ == "__main__":
    sys.exit(main())
