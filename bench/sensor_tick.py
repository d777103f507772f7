"""CPU cost of one sampling tick of the sensors discover() picks on this machine.

    python bench/sensor_tick.py [--ticks 1000] [--children 4]

Starts a small process tree (a sleeping parent with ``--children`` sleeping children, like
a trainer with DataLoader workers), discovers sensors for it as ``ecotrain run`` would, and
reports CPU time per tick (time.process_time, so NVML latency spent waiting is excluded
but its CPU is not) and the wall time of discover() itself. Ticks are spaced so the
process tree's back-off rescans happen at the rate they would in a run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

CHILD = (
    "import subprocess, sys, time\n"
    "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])"
    " for _ in range(int(sys.argv[1]))]\n"
    "time.sleep(600)\n"
)


def main() -> None:
    """Run the benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0, help="simulated seconds/tick")
    args = parser.parse_args()

    # a session of its own, so the whole tree is killed at the end
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(args.children)], start_new_session=True
    )
    try:
        time.sleep(3.0)  # let the children start
        t = time.perf_counter()
        from ecotrain.sensors import discover

        sensors, reasons = discover(child.pid, os.environ, None)
        discover_ms = (time.perf_counter() - t) * 1000
        now = 0.0
        for s in sensors:
            s.start(now)
        # simulated time: each tick advances `interval` seconds, so rescans of the tree
        # happen every 5 "seconds" exactly as in a run sampled at that interval
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        for _ in range(args.ticks):
            now += args.interval
            for s in sensors:
                s.sample(now)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        print(f"sensors: {', '.join(f'{s.component}/{s.method}' for s in sensors) or 'none'}")
        for r in reasons:
            print(f"not used: {r}")
        tree = next((s.tree for s in sensors if hasattr(s, "tree")), None)
        if tree is not None:
            print(f"process tree: {len(tree.live_pids)} live processes tracked")
        print(f"discover(): {discover_ms:.1f} ms wall (including imports)")
        print(
            f"tick: {cpu / args.ticks * 1e6:.0f} us CPU, {wall / args.ticks * 1e6:.0f} us wall "
            f"per tick over {args.ticks} ticks (all sensors together)"
        )
        for s in sensors:
            s.close()
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


if __name__ == "__main__":
    main()
