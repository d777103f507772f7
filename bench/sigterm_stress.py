"""SIGTERM `ecotrain run` 0-30 ms after its child exists, many times: does it ever hang?

That window is when the wrapper's helper threads (git, lineage) spawn processes, and a
signal the kernel hands to one of them used to leave the main thread asleep in ``wait4``
with the child never told (ecotrain.childwait). Each try: start ``ecotrain run -q -- sleep
41.5`` in a git work tree, wait for the child, sleep a random 0-30 ms, SIGTERM the wrapper,
and count a hang if it has not exited 8 s later.

    python bench/sigterm_stress.py --seconds 560          # the installed ecotrain
    PYTHONPATH=/path/to/old/checkout python bench/sigterm_stress.py --seconds 560

Load it as CI is loaded (the figures in bench/results/sigterm-stress.md had two busy loops
beside it on the 2-core VM): ``for k in 1 2; do (timeout 600 sh -c 'while :; do :; done' &); done``
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARKER = "41.5"


def _children(pid: int) -> list[str]:
    out: list[str] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += f.read().split()
    except OSError:
        pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="stop after this long")
    ap.add_argument("--tries", type=int, default=100_000, help="or after this many tries")
    ap.add_argument("--cwd", default=str(Path(__file__).resolve().parents[1]), help="a git tree")
    args = ap.parse_args()
    ecotrain = shutil.which("ecotrain") or sys.exit("ecotrain is not on PATH")
    work = Path(tempfile.mkdtemp(prefix="ecotrain-sigterm-"))
    env = dict(
        os.environ,
        ECOTRAIN_DB=str(work / "runs.db"),
        ECOTRAIN_DATA_DIR=str(work / "data"),
        ECOTRAIN_LOCK_DIR=str(work / "locks"),
        ECOTRAIN_NO_GPU="1",
        ECOTRAIN_SAMPLE_INTERVAL_S="0.1",
    )
    end = time.monotonic() + args.seconds
    tries = hangs = 0
    while tries < args.tries and time.monotonic() < end:
        tries += 1
        wrapper = subprocess.Popen(
            [ecotrain, "run", "-q", "--", "sleep", MARKER],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=args.cwd,
        )
        deadline = time.monotonic() + 10
        while not _children(wrapper.pid) and wrapper.poll() is None:
            if time.monotonic() > deadline:
                break
        time.sleep(random.uniform(0, 0.03))
        wrapper.send_signal(signal.SIGTERM)
        try:
            wrapper.wait(timeout=8)
        except subprocess.TimeoutExpired:
            hangs += 1
            print(f"hang on try {tries}", flush=True)
            wrapper.kill()
            wrapper.wait()
            subprocess.run(["pkill", "-f", f"sleep {MARKER}"], check=False)
    print(f"tries {tries} hangs {hangs}")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if hangs else 0


if __name__ == "__main__":
    sys.exit(main())
