"""Run every ecotrain benchmark and write the figures as Markdown into bench/results/.

    python bench/run.py                  # everything: a few minutes on 2 cores
    python bench/run.py --quick          # fewer repetitions, a 2 s "long" child
    python bench/run.py --only overhead  # one section: overhead, sampling, hooks

Writes bench/results/<YYYY-MM-DD>.md and bench/results/latest.md (same content), and the
raw figures as bench/results/latest.json.

Sections:
- overhead: the same command bare, under `ecotrain run`, and under
  `codecarbon monitor --offline --country-iso-code FRA --`, interleaved (the order rotates
  each repetition), on `true` and on a sleeping Python child; wall time, CPU time and peak
  RSS from wait4(2), and the exit latency (the child's last timestamp to the wrapper's exit).
  The whole cost too: this harness is a subreaper (prctl PR_SET_CHILD_SUBREAPER), so the
  processes a wrapper leaves behind (ecotrain's detached `sync`) become its children; it
  waits for every one of them, until the record is stored, and sums their CPU and RSS.
  codecarbon runs from its own clean virtual environment (``--codecarbon``, made by
  ``--make-codecarbon-venv``): beside ecotrain's pandas and pyarrow its RSS is larger.
- sampling: CPU per sample tick of each tool, from two runs of the same sleeping child at a
  fast and at a slow sample interval: (CPU_fast - CPU_slow) / (ticks_fast - ticks_slow).
- hooks: the other benchmark scripts in bench/ (see HOOKS), each run as `python bench/X.py`.
  Protocol: a hook prints Markdown table rows (lines starting with "|", header included)
  and/or a last line of JSON {"name": ..., "figures": {...}} (or {"name": ..., "skipped":
  reason}); anything else it prints is kept only when it printed neither. Exit code 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOOLS = ("bare", "ecotrain", "codecarbon")
# Benchmarks written beside this one; each is optional.
HOOKS = (
    "sensor_tick.py",
    "dashboard_pages.py",
    "report_bench.py",
    "concurrency.py",
    "gpu_nvml.py",
)


# --- measuring one command --------------------------------------------------------------


@dataclass
class Sample:
    """One execution of one command."""

    wall_s: float
    cpu_s: float  # user + system of the command and every descendant it waited for
    rss_mb: float  # the command's own peak resident set (polled every 10 ms; not its child's)
    exit_latency_s: float | None  # child's last timestamp -> the command's exit
    rc: int
    # The whole tree, including what outlives the command (a detached sync), until every
    # process of it has exited: for ecotrain, until the record is stored.
    tree_wall_s: float | None = None
    tree_cpu_s: float | None = None
    tree_rss_mb: float | None = None  # peak of the sum of the tree's RSS
    tree_max_proc_mb: float | None = None  # the largest single process of the tree
    tree_procs: int | None = None  # processes the tree had, the command's included


def set_subreaper(on: bool) -> bool:
    """Make this process the reaper of every orphan below it, or stop (Linux >= 3.4)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, int(on), 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def measure(argv: list[str], env: dict[str, str], cwd: Path, stamp: Path | None = None) -> Sample:
    """Run ``argv`` once, silenced: wall clock, CPU from wait4(2), RSS polled meanwhile.

    wait4's ru_maxrss is no use here: a forked child inherits the harness's high-water mark.
    """
    # A subreaper only while measuring: the harness (or a test session) must not collect
    # the orphans of everything else it runs.
    subreaper = set_subreaper(True)
    try:
        return _measure(argv, env, cwd, stamp, subreaper)
    finally:
        if subreaper:
            set_subreaper(False)


def _measure(
    argv: list[str], env: dict[str, str], cwd: Path, stamp: Path | None, subreaper: bool
) -> Sample:
    if stamp is not None:
        stamp.unlink(missing_ok=True)
    me = os.getpid()
    others = set(_descendants(me))  # not ours to wait for or count (a test's servers)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    peak = [0]
    tree = {"sum": 0, "max": 0, "pids": set(), "stop": False}
    poller = threading.Thread(target=_poll_rss, args=(proc.pid, peak), daemon=True)
    poller.start()
    tree_poller = threading.Thread(target=_poll_tree, args=(tree, others), daemon=True)
    tree_poller.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    exited_at = time.time()
    poller.join(timeout=1.0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    latency = None
    if stamp is not None and stamp.exists():
        latency = exited_at - float(stamp.read_text())
    tree_cpu = usage.ru_utime + usage.ru_stime
    tree_wall = None
    if subreaper:
        # What the command left behind is ours now: wait for all of it.
        while left := [p for p in _children(me) if p not in others]:
            for pid in left:
                try:
                    _, _, more = os.wait4(pid, 0)
                except ChildProcessError:
                    continue
                tree_cpu += more.ru_utime + more.ru_stime
        tree_wall = time.perf_counter() - t0
    tree["stop"] = True
    tree_poller.join(timeout=1.0)
    return Sample(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        rss_mb=peak[0] / 2**20,
        exit_latency_s=latency,
        rc=proc.returncode,
        tree_wall_s=tree_wall,
        tree_cpu_s=tree_cpu if subreaper else None,
        tree_rss_mb=tree["sum"] / 2**20 if subreaper else None,
        tree_max_proc_mb=tree["max"] / 2**20 if subreaper else None,
        tree_procs=len(tree["pids"]) if subreaper else None,
    )


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return kids


def _descendants(pid: int, skip: set[int] | frozenset[int] = frozenset()) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = [k for k in _children(todo.pop()) if k not in skip]
        out += kids
        todo += kids
    return out


def _poll_tree(tree: dict, others: set[int]) -> None:
    """Every 10 ms: the RSS of every process below this harness (the subreaper), summed;
    ``others`` (and theirs) were there before the command and are not counted."""
    page = os.sysconf("SC_PAGE_SIZE")
    me = os.getpid()
    while not tree["stop"]:
        total = 0
        for pid in _descendants(me, others):
            try:
                with open(f"/proc/{pid}/statm") as f:
                    rss = int(f.read().split()[1]) * page
            except (OSError, ValueError, IndexError):
                continue
            tree["pids"].add(pid)
            total += rss
            tree["max"] = max(tree["max"], rss)
        tree["sum"] = max(tree["sum"], total)
        time.sleep(0.01)


def _poll_rss(pid: int, peak: list[int]) -> None:
    """Keep the largest RSS seen of process ``pid`` in ``peak[0]`` until it is gone."""
    import psutil

    try:
        proc = psutil.Process(pid)
        while True:
            peak[0] = max(peak[0], proc.memory_info().rss)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
            time.sleep(0.01)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return


def find_tool(name: str) -> str | None:
    """The console script beside this interpreter (the venv's), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


# codecarbon in a virtual environment of its own: its cost as a user who installs it alone
# would see it (beside pandas 3 and pyarrow its RSS grows from ~99 to ~140 MiB).
CC_VENV = Path.home() / ".cache" / "ecotrain-bench" / "codecarbon-venv"
CC_VERSION = "codecarbon==3.3.2"


def make_codecarbon_venv(path: Path = CC_VENV) -> None:
    """Create ``path`` with only codecarbon (and what it needs) installed."""
    if (path / "bin" / "codecarbon").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(path / "bin" / "pip"), "install", "-q", CC_VERSION], check=True)


def codecarbon_tool(given: Path | None) -> str | None:
    """The codecarbon to compare with: given, else the clean venv's, else beside us."""
    if given is not None:
        return str(given) if given.exists() else None
    clean = CC_VENV / "bin" / "codecarbon"
    return str(clean) if clean.exists() else find_tool("codecarbon")


def _python_of(tool: str | None) -> str | None:
    if not tool:
        return None
    python = Path(tool).parent / "python"
    return str(python) if python.exists() else None


def codecarbon_info(tool: str | None) -> str:
    """codecarbon's version and where it runs from (its own venv or ecotrain's)."""
    if not tool:
        return "not installed"
    python = _python_of(tool) or sys.executable
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('codecarbon'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    own = Path(python).parent != Path(sys.executable).parent
    where = "its own clean venv" if own else "ecotrain's venv (beside pandas, pyarrow)"
    return f"{version or '?'} ({where}: {tool})"


def wrap(tool: str, child: list[str], exe: dict[str, str | None]) -> list[str]:
    """The command line that runs ``child`` under ``tool``."""
    if tool == "bare":
        return child
    if tool == "ecotrain":
        return [exe["ecotrain"], "run", "--project", "bench", "--region", "FRA", "-q", "--", *child]
    return [exe["codecarbon"], "monitor", "--offline", "--country-iso-code", "FRA", "--", *child]


def sleeper(seconds: float, stamp: Path) -> list[str]:
    """A Python child that sleeps, then writes its last timestamp to ``stamp``."""
    code = f"import time; time.sleep({seconds}); open({str(stamp)!r}, 'w').write(repr(time.time()))"
    return [sys.executable, "-c", code]


def bench_env(work: Path, **extra: str) -> dict[str, str]:
    """The environment for every command: a private ecotrain store, config and data dir."""
    env = dict(os.environ)
    env.update(
        ECOTRAIN_DB=str(work / "bench.db"),
        ECOTRAIN_DATA_DIR=str(work / "data"),
        ECOTRAIN_CONFIG=str(work / "no-config.toml"),
        ECOTRAIN_PROJECT="bench",
    )
    env.pop("ECOTRAIN_RUN_ID", None)
    env.update(extra)
    return env


def interleaved(
    label: str, child: list[str], reps: int, exe: dict, work: Path, stamp: Path | None
) -> dict[str, list[Sample]]:
    """``reps`` rounds of every available tool on ``child``, rotating the order each round."""
    tools = [t for t in TOOLS if t == "bare" or exe.get(t)]
    out: dict[str, list[Sample]] = {t: [] for t in tools}
    env = bench_env(work)
    for tool in tools:  # one unrecorded warm-up each: page cache, .pyc files
        measure(wrap(tool, child, exe), env, work, stamp)
    for rep in range(reps):
        order = tools[rep % len(tools) :] + tools[: rep % len(tools)]
        for tool in order:
            sample = measure(wrap(tool, child, exe), env, work, stamp)
            out[tool].append(sample)
            print(
                f"  {label:<10} {tool:<10} rep {rep + 1}/{reps}: {sample.wall_s:7.3f} s wall, "
                f"{sample.cpu_s:6.3f} s CPU, {sample.rss_mb:6.1f} MB RSS, rc {sample.rc}",
                file=sys.stderr,
                flush=True,
            )
    return out


def summarise(samples: dict[str, list[Sample]]) -> dict[str, dict]:
    """min/median wall, median CPU, max RSS, exit latency and ratios to bare, per tool."""
    bare = samples["bare"]
    bare_med = statistics.median(s.wall_s for s in bare)
    bare_min = min(s.wall_s for s in bare)
    out = {}
    for tool, runs in samples.items():
        walls = [s.wall_s for s in runs]
        latencies = [s.exit_latency_s for s in runs if s.exit_latency_s is not None]
        out[tool] = {
            "n": len(runs),
            "wall_min_s": min(walls),
            "wall_median_s": statistics.median(walls),
            "cpu_median_s": statistics.median(s.cpu_s for s in runs),
            "rss_mb": max(s.rss_mb for s in runs),
            "overhead_median_s": statistics.median(walls) - bare_med,
            "overhead_min_s": min(walls) - bare_min,
            "ratio_median": statistics.median(walls) / bare_med if bare_med else None,
            "exit_latency_median_s": statistics.median(latencies) if latencies else None,
            "failed": sum(1 for s in runs if s.rc != 0),
        }
        trees = [s for s in runs if s.tree_wall_s is not None]
        if trees:
            out[tool].update(
                tree_wall_median_s=statistics.median(s.tree_wall_s for s in trees),
                tree_overhead_median_s=statistics.median(s.tree_wall_s for s in trees) - bare_med,
                tree_cpu_median_s=statistics.median(s.tree_cpu_s for s in trees),
                tree_rss_mb=max(s.tree_rss_mb for s in trees),
                tree_max_proc_mb=max(s.tree_max_proc_mb for s in trees),
                tree_procs=max(s.tree_procs for s in trees),
            )
    eco, cc = out.get("ecotrain"), out.get("codecarbon")
    if eco and cc and eco["overhead_median_s"] > 0:
        out["codecarbon_vs_ecotrain_overhead"] = cc["overhead_median_s"] / eco["overhead_median_s"]
    if eco and cc and eco.get("tree_overhead_median_s", 0) > 0:
        out["codecarbon_vs_ecotrain_tree_overhead"] = (
            cc["tree_overhead_median_s"] / eco["tree_overhead_median_s"]
        )
        bare_cpu = out["bare"].get("tree_cpu_median_s") or 0.0
        eco_cpu = eco["tree_cpu_median_s"] - bare_cpu
        if eco_cpu > 0:
            out["codecarbon_vs_ecotrain_tree_cpu"] = (cc["tree_cpu_median_s"] - bare_cpu) / eco_cpu
    return out


# --- sampling cost --------------------------------------------------------------------


def count_samples(db: Path) -> int | None:
    """Timeline points ecotrain stored (one per tick) in a one-run database."""
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    except sqlite3.Error:
        return None


def _per_tick(
    label: str, reps: int, argv_env: dict[str, tuple[list[str], dict, Path]], stamp: Path
) -> dict[str, list[Sample]]:
    """``reps`` runs each of the fast- and slow-interval commands, alternating."""
    runs: dict[str, list[Sample]] = {"fast": [], "slow": []}
    for rep in range(reps):
        for name in ("fast", "slow") if rep % 2 == 0 else ("slow", "fast"):
            argv, env, cwd = argv_env[name]
            sample = measure(argv, env, cwd, stamp)
            runs[name].append(sample)
            print(
                f"  tick {label:<10} {name} rep {rep + 1}/{reps}: {sample.cpu_s:6.3f} s CPU",
                file=sys.stderr,
                flush=True,
            )
    return runs


def sampling_cost(seconds: float, reps: int, exe: dict, work: Path) -> dict[str, dict]:
    """CPU per tick for each wrapper: median CPU at a fast minus at a slow interval, per tick.

    The same sleeping child runs under each wrapper ``reps`` times at each interval.
    """
    out: dict[str, dict] = {}
    stamp = work / "stamp"
    child = sleeper(seconds, stamp)
    if exe.get("ecotrain"):
        cmds, dbs = {}, {}
        for name, interval in (("fast", 0.05), ("slow", 3600.0)):
            sub = work / f"tick-{name}"
            sub.mkdir(exist_ok=True)
            env = bench_env(sub, ECOTRAIN_SAMPLE_INTERVAL_S=str(interval))
            cmds[name] = (wrap("ecotrain", child, exe), env, sub)
            dbs[name] = sub / "bench.db"
        runs = _per_tick("ecotrain", reps, cmds, stamp)
        time.sleep(0.5)  # a detached sync, if any, finishes writing
        n_fast, n_slow = count_samples(dbs["fast"]), count_samples(dbs["slow"])
        estimated = n_fast is None or n_slow is None
        if estimated:  # no database to count in: the nominal number of ticks
            n_fast, n_slow = reps * int(seconds / 0.05), 0
        out["ecotrain"] = _tick_row(0.05, max(1, (n_fast - n_slow) // reps), estimated, runs)
    if exe.get("codecarbon"):
        cmds = {}
        for name, interval in (("fast", 1), ("slow", 3600)):
            argv = [exe["codecarbon"], "monitor", "--offline", "--country-iso-code", "FRA"]
            argv += ["--measure-power-secs", str(interval), "--", *child]
            cmds[name] = (argv, bench_env(work), work)
        runs = _per_tick("codecarbon", reps, cmds, stamp)
        out["codecarbon"] = _tick_row(1, max(1, int(seconds)), True, runs)
    return out


def _tick_row(interval: float, ticks: int, estimated: bool, runs: dict) -> dict:
    fast = statistics.median(s.cpu_s for s in runs["fast"])
    slow = statistics.median(s.cpu_s for s in runs["slow"])
    return {
        "interval_s": interval,
        "ticks": ticks,
        "ticks_estimated": estimated,
        "reps": len(runs["fast"]),
        "cpu_fast_s": fast,
        "cpu_slow_s": slow,
        "cpu_per_tick_ms": 1000 * (fast - slow) / ticks,
        "rss_mb": max(s.rss_mb for v in runs.values() for s in v),
    }


# In-process tick cost: each tool's per-tick work, called back to back (10 ms apart) in one
# process, timed with process_time. Steadier than differences of whole runs.
ECOTRAIN_TICK = """
import json, os, subprocess, sys, time
from ecotrain.sensors import discover
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
try:
    sensors, _ = discover(child.pid, os.environ, {})
    now = time.monotonic()
    for sensor in sensors:
        sensor.start(now)
    n, cpu = int(sys.argv[1]), 0.0
    for _ in range(n):
        time.sleep(0.01)
        c0 = time.process_time()
        now = time.monotonic()
        for sensor in sensors:
            sensor.sample(now)
        cpu += time.process_time() - c0
finally:
    child.kill()
what = ", ".join(f"{s.component}: {s.name} ({s.method})" for s in sensors) or "no sensors"
print(json.dumps({"what": what, "ticks": n, "cpu_per_tick_ms": 1000 * cpu / n}))
"""
# codecarbon's tick is EmissionsTracker._measure_power_and_energy (private, stable in 2.x-3.x).
CODECARBON_TICK = """
import json, sys, time
from codecarbon.emissions_tracker import OfflineEmissionsTracker
tracker = OfflineEmissionsTracker(country_iso_code="FRA", measure_power_secs=3600,
                                  save_to_file=False, log_level="error")
tracker.start()
n, cpu = int(sys.argv[1]), 0.0
for _ in range(n):
    time.sleep(0.01)
    c0 = time.process_time()
    tracker._measure_power_and_energy()
    cpu += time.process_time() - c0
tracker.stop()
what = "OfflineEmissionsTracker._measure_power_and_energy()"
print(json.dumps({"what": what, "ticks": n, "cpu_per_tick_ms": 1000 * cpu / n}))
"""


def tick_in_process(code: str, ticks: int, work: Path, python: str | None = None) -> dict:
    """Run one of the in-process tick snippets; its JSON result, or the error."""
    try:
        proc = subprocess.run(
            [python or sys.executable, "-c", code, str(ticks)],
            capture_output=True,
            text=True,
            env=bench_env(work),
            cwd=work,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- hooks ----------------------------------------------------------------------------


@dataclass
class HookResult:
    """What one hook script gave back."""

    name: str
    status: str  # ok | not present | skipped | failed | timed out
    rows: list[str]  # Markdown table lines
    figures: dict
    detail: str = ""
    seconds: float = 0.0


def parse_hook_output(name: str, stdout: str) -> HookResult:
    """Table rows and/or a final JSON line, per the protocol in this module's docstring."""
    lines = [line.rstrip() for line in stdout.splitlines() if line.strip()]
    rows = [line for line in lines if line.lstrip().startswith("|")]
    figures: dict = {}
    status, detail = "ok", ""
    if lines and lines[-1].lstrip().startswith("{"):
        try:
            payload = json.loads(lines[-1])
        except json.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            name = str(payload.get("name", name))
            figures = payload.get("figures") or {}
            if payload.get("skipped"):
                status, detail = "skipped", str(payload["skipped"])
    if not rows and not figures and status == "ok":
        detail = "\n".join(lines[-10:])
    return HookResult(name=name, status=status, rows=rows, figures=figures, detail=detail)


def _dashboard_db(work: Path, timeout: float) -> list[str]:
    """dashboard_pages.py times a database given as its argument: generate the large one."""
    db = work / "dashboard-bench.db"
    subprocess.run(
        [sys.executable, str(HERE / "gen_dashboard_db.py"), str(db)],
        check=True,
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return [str(db)]


# Arguments some hooks need, made in a scratch directory: name -> f(work, timeout) -> argv.
HOOK_ARGS = {"dashboard_pages.py": _dashboard_db}


def run_hooks(names: tuple[str, ...], timeout: float) -> list[HookResult]:
    """Run each hook script that exists; list the others as not present."""
    results = []
    with tempfile.TemporaryDirectory(prefix="ecotrain-bench-hooks-") as tmp:
        for script in names:
            results.append(_run_hook(script, timeout, Path(tmp)))
    return results


def _run_hook(script: str, timeout: float, work: Path) -> HookResult:
    path = HERE / script
    stem = script.removesuffix(".py")
    if not path.exists():
        return HookResult(stem, "not present", [], {})
    print(f"  hook {script} …", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        extra = HOOK_ARGS[script](work, timeout) if script in HOOK_ARGS else []
        proc = subprocess.run(
            [sys.executable, str(path), *extra],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return HookResult(stem, "timed out", [], {}, f"after {timeout:.0f} s")
    except (OSError, subprocess.CalledProcessError) as e:
        return HookResult(stem, "failed", [], {}, f"preparing its input: {e}")
    result = parse_hook_output(stem, proc.stdout)
    result.seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        result.status = "failed"
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        result.detail = f"exit code {proc.returncode}: " + " / ".join(tail)
    return result


# --- machine info and the report ------------------------------------------------------------


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's marketing name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    """What the figures were measured on."""
    import psutil

    gpus = "none"
    if shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20
            ).stdout.strip()
            gpus = "; ".join(listing.splitlines()) or "none"
        except (OSError, subprocess.TimeoutExpired):
            gpus = "nvidia-smi failed"
    rapl = Path("/sys/class/powercap/intel-rapl:0/energy_uj")
    try:
        rapl_state = "readable" if rapl.exists() and rapl.read_text() else "absent"
    except OSError:
        rapl_state = "present, not readable"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": f"{psutil.cpu_count(logical=True)} logical / "
        f"{psutil.cpu_count(logical=False)} physical",
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "gpu": gpus,
        "rapl": rapl_state,
        # Other work on the machine skews every figure: say how busy it was.
        "load average at start": " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)",
        "os": platform.platform(),
        "python": platform.python_version(),
        "ecotrain": _version("ecotrain") + (f" (git {commit})" if commit else ""),
        "codecarbon": _version("codecarbon"),
    }


def _s(value: float | None, unit: str = "s", digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f} {unit}".strip()


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def render(info: dict, results: dict) -> str:
    """The Markdown page."""
    out = ["# ecotrain benchmarks", ""]
    out += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items()] + [""]
    for key, title in (("overhead_true", "`true`"), ("overhead_long", "a sleeping child")):
        block = results.get(key)
        if not block:
            continue
        out += [f"## Wrapper overhead on {title} ({block['child']})", ""]
        out += [
            "| tool | n | wall min | wall median | overhead (median − bare) | × bare | "
            "CPU median | wrapper peak RSS | exit latency (median) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for tool in TOOLS:
            row = block["summary"].get(tool)
            if row is None:
                out.append(f"| {tool} | not installed | | | | | | | |")
                continue
            failed = f" ({row['failed']} failed)" if row["failed"] else ""
            out.append(
                f"| {tool} | {row['n']}{failed} | {_s(row['wall_min_s'])} | "
                f"{_s(row['wall_median_s'])} | {_s(row['overhead_median_s'])} | "
                f"{_x(row['ratio_median'])} | {_s(row['cpu_median_s'])} | "
                f"{_s(row['rss_mb'], 'MB', 1)} | {_s(row['exit_latency_median_s'])} |"
            )
        ratio = block["summary"].get("codecarbon_vs_ecotrain_overhead")
        if ratio:
            out += ["", f"codecarbon's added wall time is {ratio:.1f}× ecotrain's (medians)."]
        out.append("")
        if any("tree_wall_median_s" in (block["summary"].get(t) or {}) for t in TOOLS):
            out += [
                f"Whole tree on {title}, until every process it started has exited (for "
                "ecotrain: the record stored, by the detached sync where there is one):",
                "",
                "| tool | wall | overhead (− bare) | CPU, all processes | peak RSS, all "
                "processes | largest process | processes |",
                "|---|---|---|---|---|---|---|",
            ]
            for tool in TOOLS:
                row = block["summary"].get(tool) or {}
                if "tree_wall_median_s" not in row:
                    continue
                out.append(
                    f"| {tool} | {_s(row['tree_wall_median_s'])} | "
                    f"{_s(row['tree_overhead_median_s'])} | {_s(row['tree_cpu_median_s'])} | "
                    f"{_s(row['tree_rss_mb'], 'MB', 1)} | {_s(row['tree_max_proc_mb'], 'MB', 1)}"
                    f" | {row['tree_procs']} |"
                )
            wall = block["summary"].get("codecarbon_vs_ecotrain_tree_overhead")
            cpu = block["summary"].get("codecarbon_vs_ecotrain_tree_cpu")
            if wall:
                out += [
                    "",
                    f"Whole tree: codecarbon's added wall time is {wall:.1f}× ecotrain's"
                    + (f", its added CPU {cpu:.1f}×" if cpu else "")
                    + " (medians).",
                ]
            out.append("")
    sampling = results.get("sampling")
    if sampling:
        out += [f"## CPU per sample tick ({sampling['child']})", ""]
        out += [
            "| tool | interval | ticks per run | runs | CPU fast (median) | CPU slow (median) "
            "| CPU per tick | wrapper peak RSS |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for tool, row in sampling["tools"].items():
            est = " (nominal)" if row["ticks_estimated"] else ""
            out.append(
                f"| {tool} | {row['interval_s']} s | {row['ticks']}{est} | {row['reps']} | "
                f"{_s(row['cpu_fast_s'])} | {_s(row['cpu_slow_s'])} | "
                f"{_s(row['cpu_per_tick_ms'], 'ms', 2)} | {_s(row['rss_mb'], 'MB', 1)} |"
            )
        inproc = sampling.get("in_process") or {}
        if inproc:
            out += [
                "",
                "In one process, each tool's per-tick work called 10 ms apart:",
                "",
                "| tool | ticks | CPU per tick | what was sampled |",
                "|---|---|---|---|",
            ]
            for tool, row in inproc.items():
                if "error" in row:
                    out.append(f"| {tool} | — | failed | {row['error']} |")
                else:
                    out.append(
                        f"| {tool} | {row['ticks']} | **{row['cpu_per_tick_ms']:.3f} ms** | "
                        f"{row['what']} |"
                    )
        out.append("")
    hooks = results.get("hooks")
    if hooks:
        out += ["## Other benchmarks", ""]
        for hook in hooks:
            head = f"### {hook['name']}: {hook['status']}"
            if hook["seconds"]:
                head += f" ({hook['seconds']:.1f} s)"
            out += [head, ""]
            if hook["rows"]:
                out += hook["rows"] + [""]
            if hook["figures"]:
                out += ["| figure | value |", "|---|---|"]
                out += [f"| {k} | {v} |" for k, v in hook["figures"].items()] + [""]
            if hook["detail"]:
                out += ["```", hook["detail"], "```", ""]
    out += [
        "Method: wall time from the parent's clock; CPU time from wait4(2) (the wrapper "
        "plus its waited-for child; the long child sleeps, so its CPU is the wrapper's); "
        "peak RSS of the wrapper process alone, polled every 10 ms; exit latency = the "
        "wrapper's exit minus the child's last timestamp. "
        "CPU per tick = (median CPU at a fast interval − median CPU at a slow interval) / "
        "ticks per run (a difference of small numbers: noisy on a busy machine; the "
        "in-process figures are the steadier ones). "
        "Regenerate with `python bench/run.py`.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, a 2 s child")
    ap.add_argument("--reps-true", type=int, default=7)
    ap.add_argument("--reps-long", type=int, default=3)
    ap.add_argument("--long-s", type=float, default=10.0, help="seconds the long child sleeps")
    ap.add_argument("--ticks", type=int, default=500, help="in-process sensor ticks")
    ap.add_argument("--only", choices=("overhead", "sampling", "hooks"), action="append")
    ap.add_argument("--hook-timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument(
        "--codecarbon",
        type=Path,
        default=None,
        help=f"codecarbon executable (default: {CC_VENV}/bin/codecarbon if it exists)",
    )
    ap.add_argument(
        "--make-codecarbon-venv",
        action="store_true",
        help=f"create {CC_VENV} with codecarbon alone in it, then run",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.reps_true, args.reps_long, args.long_s, args.ticks = 3, 1, 2.0, 100
    sections = set(args.only or ("overhead", "sampling", "hooks"))
    if args.make_codecarbon_venv:
        make_codecarbon_venv()
    exe = {"ecotrain": find_tool("ecotrain"), "codecarbon": codecarbon_tool(args.codecarbon)}
    info = machine_info()
    info["codecarbon"] = codecarbon_info(exe["codecarbon"])
    results: dict = {"machine": info}

    with tempfile.TemporaryDirectory(prefix="ecotrain-bench-") as tmp:
        work = Path(tmp)
        stamp = work / "stamp"
        if "overhead" in sections:
            print("overhead on `true`", file=sys.stderr)
            true = [shutil.which("true") or "/bin/true"]
            samples = interleaved("true", true, args.reps_true, exe, work, None)
            results["overhead_true"] = {
                "child": "true",
                "summary": summarise(samples),
                "samples": {t: [asdict(s) for s in v] for t, v in samples.items()},
            }
            print(f"overhead on a {args.long_s:g} s child", file=sys.stderr)
            long_child = sleeper(args.long_s, stamp)
            samples = interleaved("long", long_child, args.reps_long, exe, work, stamp)
            results["overhead_long"] = {
                "child": f"python -c 'time.sleep({args.long_s:g})'",
                "summary": summarise(samples),
                "samples": {t: [asdict(s) for s in v] for t, v in samples.items()},
            }
        if "sampling" in sections:
            print("CPU per sample tick", file=sys.stderr)
            results["sampling"] = {
                "child": f"python -c 'time.sleep({args.long_s:g})'",
                "tools": sampling_cost(args.long_s, args.reps_long, exe, work),
                "in_process": {
                    "ecotrain": tick_in_process(ECOTRAIN_TICK, args.ticks, work),
                    "codecarbon": tick_in_process(
                        CODECARBON_TICK, args.ticks, work, _python_of(exe["codecarbon"])
                    ),
                },
            }
    if "hooks" in sections:
        print("other benchmarks", file=sys.stderr)
        results["hooks"] = [asdict(h) for h in run_hooks(HOOKS, args.hook_timeout)]

    page = render(info, results)
    args.out.mkdir(parents=True, exist_ok=True)
    dated = args.out / f"{datetime.now(UTC):%Y-%m-%d}.md"
    dated.write_text(page)
    (args.out / "latest.md").write_text(page)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(page)
    print(f"written: {dated} and {args.out / 'latest.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
