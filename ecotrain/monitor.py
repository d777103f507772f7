"""`ecotrain run`: start the child, sample its energy, forward signals, record the run.

Order matters for overhead: the child starts first; sensors, the database layer
(SQLAlchemy takes ~0.4 s to import) and git are set up afterwards in background threads.
The final record is always spooled first (a small JSON file, atomic), then written to the
database if the background writer is ready; otherwise a detached ``ecotrain sync`` writes
it, so a short run never waits for the database and a long run never loses its record.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecotrain import __version__
from ecotrain.config import Settings
from ecotrain.redact import redact_argv
from ecotrain.runwatch import RunWatch
from ecotrain.store.records import utcnow

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
MAX_POINTS = 2000
# After the child exits, wait at most this long for the database write; the spool keeps it.
FINAL_WRITE_TIMEOUT_S = 0.05
# How long the end of a run waits for sensor discovery that has not finished yet.
SENSOR_START_WAIT_S = 10.0
# The writer imports SQLAlchemy (~0.2 s of CPU) only once the command has run this long: a
# shorter command's record goes through the spool and a detached sync anyway, so importing
# it in the wrapper only competed with the wrapper's own exit.
WRITER_START_DELAY_S = 0.5


@dataclass
class RunOptions:
    """What `ecotrain run` was asked to do."""

    argv: list[str]
    settings: Settings
    tags: dict[str, str] = field(default_factory=dict)
    job: str | None = None
    uses: list[str] = field(default_factory=list)
    produces: list[str] = field(default_factory=list)
    quiet: bool = False
    budget: Any = None  # ecotrain.budget.Budget
    expected_duration_s: float | None = None
    live_every_s: float | None = None  # print a progress line on a terminal's stderr


class Timeline:
    """A power timeline that never holds more than ``max_points``: when full, adjacent points
    are averaged pairwise and the stride doubles, so a run of any length keeps its shape."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.max_points = max_points
        self.points: list[list[float]] = []
        self.stride = 1
        self._pending: list[list[float]] = []

    def add(self, point: list[float]) -> None:
        """Add one sample [t_s, gpu_w, cpu_w, ram_w]."""
        self._pending.append(point)
        if len(self._pending) < self.stride:
            return
        self.points.append(_mean(self._pending))
        self._pending = []
        if len(self.points) >= self.max_points:
            self.points = [_mean(self.points[i : i + 2]) for i in range(0, len(self.points), 2)]
            self.stride *= 2

    def export(self) -> list[list[float]]:
        """The points, including a partial bucket at the end."""
        if self._pending:
            return [*self.points, _mean(self._pending)]
        return list(self.points)


def _mean(points: list[list[float]]) -> list[float]:
    n = len(points)
    return [round(sum(p[i] for p in points) / n, 3) for i in range(len(points[0]))]


class BackgroundWriter(threading.Thread):
    """Imports the database layer, opens the store and writes records handed to it.

    It never blocks the sampler or the child: ``submit`` replaces any record not yet written
    (the latest state of a run is all that matters) and failures are kept for the summary.
    """

    def __init__(self, url: str | None, start_delay_s: float = 0.0) -> None:
        super().__init__(name="ecotrain-writer", daemon=True)
        self.url = url
        self.start_delay_s = start_delay_s
        self._go = threading.Event()  # start now, whatever the delay
        self._cancelled = False
        self.ready = threading.Event()
        self.failed: str | None = None
        self.store = None
        self._queue: queue.Queue[dict | None] = queue.Queue(maxsize=1)
        self._written = threading.Condition()
        self._last_written: Any = None
        # A blackholed server must not hold a thread for minutes; the spool waits instead.
        self.connect_timeout_s = 10.0

    def run(self) -> None:
        self._go.wait(self.start_delay_s)
        if self._cancelled:
            return
        self._open()
        self.ready.set()
        while True:
            record = self._queue.get()
            if record is None:
                return
            # The database was unreachable: try again, at most once a heartbeat, so a run
            # that outlives an outage shows up as running again, not as lost.
            if self.store is None and not self._open():
                continue
            try:
                self.store.write_record(record)
                self.failed = None
                with self._written:
                    self._last_written = record
                    self._written.notify_all()
                # The heartbeat's spooled copy is now redundant (the final one is the
                # caller's to remove, as it may still be waiting for it).
                if record["run"].get("ended_at") is None:
                    from ecotrain.store.spool import discard_if_same, spool_path

                    discard_if_same(spool_path(record["run"]["run_id"]), record)
            except Exception as e:  # noqa: BLE001
                self.failed = f"database write failed: {_one_line(e)}"

    def _open(self) -> bool:
        try:
            from ecotrain.store.db import Store

            store = Store(self.url, timeout_s=self.connect_timeout_s)
            store.mark_lost()
            store.sync_spool()
            self.store = store
            self.failed = None
            return True
        except Exception as e:  # noqa: BLE001 - degrade: the spool keeps every record
            self.failed = f"database unavailable: {_one_line(e)}"
            return False

    def hurry(self) -> None:
        """Open the store now rather than after the start delay."""
        self._go.set()

    def cancel_start(self) -> bool:
        """Never open the store if the start delay is still running; whether it was."""
        if self.ready.is_set() or self._go.is_set():
            return False
        self._cancelled = True
        self._go.set()
        return True

    def submit(self, record: dict) -> None:
        """Queue a record for writing, dropping an older one still waiting."""
        try:
            self._queue.get_nowait()
        except queue.Empty:
            pass
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            pass

    def wait_written(self, record: dict, timeout: float) -> bool:
        """Wait until ``record`` itself has been written, for at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._written:
            while self._last_written is not record:
                left = deadline - time.monotonic()
                if left <= 0 or self.failed:
                    return False
                self._written.wait(left)
        return True


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def _give_terminal_to_child() -> None:
    """In the child, before exec: own process group, and the terminal's foreground if the
    wrapper had it, so Ctrl-C and reads from the terminal go to the child as without us."""
    os.setpgid(0, 0)
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgid(os.getppid()):
            old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(0, os.getpgrp())
            signal.signal(signal.SIGTTOU, old)
    except OSError:
        pass


def _take_terminal_back() -> None:
    try:
        if os.isatty(0):
            old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(0, os.getpgrp())
            signal.signal(signal.SIGTTOU, old)
    except OSError:
        pass


class Recorder:
    """The measuring half of a run: sensors, timeline, heartbeat, events, budget, record.

    It measures a process tree (``pid``) without owning it: :class:`Monitor` adds the child
    for `ecotrain run`; :mod:`ecotrain.api` uses it for the current Python process.
    """

    source = "run"
    # After the measured work ends, wait at most this long for the database write.
    final_wait_s = FINAL_WRITE_TIMEOUT_S

    def __init__(self, options: RunOptions, site: Any) -> None:
        self.opts = options
        self.site = site
        self.settings = options.settings
        self.run_id = uuid.uuid4().hex
        self.notes: list[str] = []
        self.timeline = Timeline()
        self._last_t_s = -1.0
        self.sensors: list[Any] = []
        self.unavailable: list[str] = []
        self._stop = threading.Event()
        self._sensors_ready = threading.Event()
        self._lock = threading.Lock()
        self._record_lock = threading.Lock()  # orders heartbeats before the final record
        self._final_spooled = False
        self.started_at = utcnow()
        self.t0 = time.monotonic()
        self.context: dict[str, Any] = {}
        self._git_thread: threading.Thread | None = None
        self.target = _absolute_target(self.settings["database.url"])
        self.writer = BackgroundWriter(self.target, WRITER_START_DELAY_S)
        self.lineage: Any = None
        self.watch = RunWatch(self)
        self._sampler_thread: threading.Thread | None = None

    # -- sampling -----------------------------------------------------------------------

    def start(self, pid: int | None) -> None:
        """Start the writer and the sampler for process tree ``pid`` (None: no tree)."""
        self.writer.start()
        self._sampler_thread = threading.Thread(
            target=self._sampler, args=(pid,), name="ecotrain-sampler", daemon=True
        )
        self._sampler_thread.start()

    def stop(self) -> None:
        """Stop sampling, with one last tick so the totals end now."""
        self._stop.set()
        if self._sampler_thread is not None:
            # Discovery takes ~40 ms, but a short child on an overloaded node (64 runs starting
            # at once on 2 cores) can end first; waiting for it costs only the time it still
            # needs, and without it the record would have no sensors at all.
            if not self._sensors_ready.wait(timeout=SENSOR_START_WAIT_S):
                self.notes.append(
                    f"sensors not started {SENSOR_START_WAIT_S:.0f} s after the command ended: "
                    "no energy recorded"
                )
            self._sampler_thread.join(timeout=0.5)
        if self.sensors:
            self._tick()
        self.watch.read_events()

    def _sampler(self, pid: int | None) -> None:
        try:
            from ecotrain.sensors import discover

            self.sensors, self.unavailable = discover(pid, os.environ, self.settings)
            now = time.monotonic()
            for sensor in self.sensors:
                sensor.start(now)
        except Exception as e:  # noqa: BLE001 - no sensors is a degraded run, not a dead one
            self.notes.append(f"sensors failed to start: {_one_line(e)}")
            self.sensors = []
        finally:
            self._sensors_ready.set()
        interval = max(0.05, float(self.settings.get("sample_interval_s", 1.0)))
        heartbeat = max(0.5, float(self.settings.get("heartbeat_s", 30.0)))
        next_beat = time.monotonic() + heartbeat
        self.watch.setup(interval)
        while not self._stop.wait(interval):
            self._tick()
            try:
                self.watch.after_tick()
            except Exception as e:  # noqa: BLE001 - budgets and predictions are extras
                note = f"run watch: {_one_line(e)}"
                if note not in self.notes:
                    self.notes.append(note)
            if time.monotonic() >= next_beat:
                next_beat += heartbeat
                self._heartbeat()

    def _tick(self) -> None:
        power = {"gpu": 0.0, "cpu": 0.0, "ram": 0.0}
        # The clock is read under the lock: the final tick of stop() can overlap the
        # sampler's last one when the join times out on a loaded node, and the timeline must
        # stay strictly increasing (two ticks in one millisecond made a duplicate point).
        with self._lock:
            now = time.monotonic()
            for sensor in self.sensors:
                try:
                    reading = sensor.sample(now)
                    power[sensor.component] += reading.power_w
                except Exception as e:  # noqa: BLE001 - a sensor must never stop the run
                    note = f"{sensor.name}: {_one_line(e)}"
                    if note not in sensor.notes:
                        sensor.notes.append(note)
            t_s = round(now - self.t0, 3)
            if t_s > self._last_t_s:
                self._last_t_s = t_s
                self.timeline.add([t_s, power["gpu"], power["cpu"], power["ram"]])

    def energy_j(self) -> float:
        """IT energy so far, all sensors (cheap: no accounting)."""
        with self._lock:
            return sum(float(getattr(s, "energy_j", 0.0) or 0.0) for s in self.sensors)

    def _heartbeat(self) -> None:
        record = self.build_record(final=False)
        # A heartbeat built just before the end must not land after the final record: in
        # the spool it would replace it, in the writer's queue it would displace it.
        with self._record_lock:
            if self._final_spooled:
                return
            self._spool(record)
            if self.writer.ready.is_set():
                self.writer.submit(record)  # even after a failure: the writer retries

    # -- the record ----------------------------------------------------------------------

    def _gather_context(self) -> None:
        from ecotrain.context import current_user, git_state, job_context

        cwd = Path.cwd()
        self.context = {
            "user": current_user(self.settings["user"]),
            "host": socket.gethostname(),
            "cwd": str(cwd),
            **job_context(os.environ, self.opts.job),
        }

        # git can take seconds in a big work tree: read it beside the child, never before
        # or after it.
        def read_git() -> None:
            commit, dirty = git_state(cwd)
            self.context.update(git_commit=commit, git_dirty=dirty)

        self._git_thread = threading.Thread(target=read_git, name="ecotrain-git", daemon=True)
        self._git_thread.start()

    def accounted(self, duration: float) -> tuple[dict, dict, list]:
        """(accounting columns, hardware columns, sensor summaries) for the totals now."""
        from ecotrain.accounting import account_summaries

        with self._lock:
            summaries = [s.summary() for s in self.sensors]
        accounting, hardware = account_summaries(summaries, self.site, duration)
        return accounting, hardware, summaries

    def build_record(
        self,
        final: bool,
        exit_code: int | None = None,
        status: str = "running",
        end_reason: str | None = None,
        cpu_seconds: float | None = None,
    ) -> dict:
        """The run's record now: partial totals while running, final totals at the end."""
        now = time.monotonic()
        duration = now - self.t0
        if final and cpu_seconds is not None:
            with self._lock:
                for sensor in self.sensors:
                    finish = getattr(sensor, "finish", None)
                    if finish is not None:
                        try:
                            finish(cpu_seconds, duration)
                        except Exception as e:  # noqa: BLE001
                            sensor.notes.append(f"{sensor.name}: {_one_line(e)}")
        accounting, hardware, summaries = self.accounted(duration)
        # Checkpoints first: identifying them may add notes (a file that vanished).
        parts = (
            self.lineage.record_parts(final, self.timeline.export(), duration)
            if self.lineage is not None
            else {}
        )
        notes = list(self.notes)
        for s in summaries:
            notes.extend(s.notes)
        notes.extend(f"not used: {r}" for r in self.unavailable)
        if self.lineage is not None:
            notes.extend(self.lineage.notes)
        notes.extend(accounting.pop("accounting_notes", []))
        if self.writer.failed:
            notes.append(self.writer.failed)
        run = {
            "run_id": self.run_id,
            "project": self.settings.get("project", "default"),
            "pid": os.getpid(),
            "command": redact_argv(self.opts.argv),
            "tags": self.opts.tags,
            "source": self.source,
            "started_at": self.started_at,
            "heartbeat_at": utcnow(),
            "ended_at": utcnow() if final else None,
            "duration_s": round(duration, 3),
            "status": status,
            "exit_code": exit_code,
            "end_reason": end_reason,
            "ecotrain_version": __version__,
            "notes": notes,
            **self.context,
            **hardware,
            **accounting,
        }
        run.update(self.watch.record_columns(run, duration))
        record: dict[str, Any] = {"run": run, "samples": self.timeline.export()}
        record.update(parts)
        return record

    def _spool(self, record: dict) -> Path | None:
        from ecotrain.store.spool import spool

        try:
            return spool(record, target=self.target)
        except OSError as e:
            self.notes.append(f"spool failed: {e.strerror}")
            return None

    def finish(
        self,
        code: int | None,
        status: str,
        reason: str | None,
        cpu_seconds: float | None = None,
    ) -> dict:
        """Write the final record (spool first, then the database) and print the summary."""
        if self._git_thread is not None:
            self._git_thread.join(timeout=0.2)
        record = self.build_record(
            final=True, exit_code=code, status=status, end_reason=reason, cpu_seconds=cpu_seconds
        )
        with self._record_lock:
            self._final_spooled = True
            spooled = self._spool(record)
        written = False
        if self.final_wait_s > FINAL_WRITE_TIMEOUT_S:
            self.writer.hurry()
            self.writer.ready.wait(self.final_wait_s)
        else:
            self.writer.cancel_start()  # a short command: the detached sync writes it
        if self.writer.ready.is_set() and not self.writer.failed:
            self.writer.submit(record)
            written = self.writer.wait_written(record, self.final_wait_s)
        pending = any(
            str(c.get("checkpoint_id", "")).startswith("pending:")
            for c in record.get("checkpoints") or []
        )
        if written and spooled is not None:
            from ecotrain.store.spool import discard_if_same

            discard_if_same(spooled, record)
        if (spooled is not None and not written) or pending:
            # The detached sync also hashes checkpoints the run wrote in its last moments.
            _sync_detached(self.target, self.run_id, lineage=pending)
        for sensor in self.sensors:
            try:
                sensor.close()
            except Exception:  # noqa: BLE001
                pass
        self.watch.close()
        if not self.opts.quiet:
            print(summary_line(record["run"], written or spooled is not None), file=sys.stderr)
        return record

    def _start_lineage(self, pid: int | None) -> None:
        try:
            from ecotrain import lineage
        except ImportError:
            return
        tracker = getattr(lineage, "RunTracker", None)
        if tracker is None:
            return
        try:
            self.lineage = tracker(
                run_id=self.run_id,
                child_pid=pid,
                uses=self.opts.uses,
                produces=self.opts.produces,
                started_at=self.started_at,
            )
            for event in self.watch.checkpoints:  # logged before the tracker existed
                self.watch.log_checkpoint(event)
        except Exception as e:  # noqa: BLE001
            self.notes.append(f"lineage tracking off: {_one_line(e)}")

    def on_budget_exceeded(self, reason: str) -> None:
        """Called once when a budget with ``on_budget = "stop"`` is exceeded."""


class Monitor(Recorder):
    """One `ecotrain run`: a :class:`Recorder` plus the child it starts, signals and budgets."""

    def __init__(self, options: RunOptions, site: Any) -> None:
        super().__init__(options, site)
        self.child: subprocess.Popen | None = None
        self.budget_stop: str | None = None

    # -- the child ----------------------------------------------------------------------

    def _start_child(self) -> int | None:
        env = dict(os.environ)
        env["ECOTRAIN_RUN_ID"] = self.run_id
        try:
            from ecotrain.lineage import child_env

            env = child_env(env, self.run_id, self.opts.uses)
        except Exception as e:  # noqa: BLE001 - lineage is optional, the run is not
            self.notes.append(f"checkpoint detection off: {_one_line(e)}")
        try:
            self.child = subprocess.Popen(
                self.opts.argv, env=env, preexec_fn=_give_terminal_to_child
            )
        except FileNotFoundError:
            self.notes.append(f"command not found: {self.opts.argv[0]}")
            return 127
        except PermissionError:
            self.notes.append(f"permission denied: {self.opts.argv[0]}")
            return 126
        except OSError as e:
            self.notes.append(f"cannot start {self.opts.argv[0]}: {e.strerror}")
            return 126
        return None

    def _forward(self, signum: int, _frame: Any) -> None:
        if self.child is None:
            return
        try:
            os.killpg(self.child.pid, signum)
        except ProcessLookupError:
            pass
        self.notes.append(f"forwarded {signal.Signals(signum).name} to the child")

    def on_budget_exceeded(self, reason: str) -> None:
        """Stop the child's process group: SIGTERM now, SIGKILL after the grace period."""
        if self.child is None or self.budget_stop is not None:
            return
        self.budget_stop = reason
        pid = self.child.pid
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        grace = self.opts.budget.grace_s if self.opts.budget else 10.0

        def kill_if_alive() -> None:
            if self.child is not None and self.child.returncode is None:
                try:
                    os.killpg(pid, signal.SIGKILL)
                    self.notes.append(f"child still alive {grace:g} s after SIGTERM: SIGKILL")
                except ProcessLookupError:
                    pass

        timer = threading.Timer(grace, kill_if_alive)
        timer.daemon = True
        timer.start()

    # -- the whole run -----------------------------------------------------------------------

    def run(self) -> int:
        """Run the child to completion and record it; returns the exit code to use."""
        failed_start = self._start_child()
        previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED}
        if failed_start is None:
            self.start(self.child.pid)
        else:
            self.writer.start()
        self._start_lineage(self.child.pid if self.child else None)
        self._gather_context()

        cpu_seconds = None
        if failed_start is not None:
            code, status, reason = failed_start, "failed_to_start", self.notes[-1]
            print(f"ecotrain: error: {reason}", file=sys.stderr)
        else:
            # PEP 475: wait4 resumes by itself after a forwarded signal's handler returns.
            _, wait_status, rusage = os.wait4(self.child.pid, 0)
            _take_terminal_back()
            cpu_seconds = rusage.ru_utime + rusage.ru_stime
            if os.WIFSIGNALED(wait_status):
                sig = os.WTERMSIG(wait_status)
                code, status = 128 + sig, "killed"
                reason = f"killed by {signal.Signals(sig).name}"
            else:
                code = os.WEXITSTATUS(wait_status)
                status = "finished" if code == 0 else "failed"
                reason = None if code == 0 else f"exit code {code}"
            self.child.returncode = code
            if self.budget_stop is not None:
                status, reason = "killed", f"{self.budget_stop} ({reason or 'exit code 0'})"
        self.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        self.finish(code, status, reason, cpu_seconds)
        return code


def _absolute_target(value: str | None) -> str | None:
    """The database a spooled record is meant for; relative SQLite paths made absolute, as a
    detached sync may run elsewhere."""
    if value and "://" not in value:
        return str(Path(value).expanduser().resolve())
    return value


def _sync_detached(target: str | None, run_id: str, lineage: bool) -> None:
    """Let a detached process write the spooled record, so we can exit now."""
    try:
        subprocess.Popen(
            [sys.executable, "-m", "ecotrain.store.detached", run_id]
            + (["--lineage"] if lineage else [])
            + (["--db", target] if target else []),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        pass


def summary_line(run: dict, recorded: bool) -> str:
    """The one line printed on stderr at the end of a run."""
    from ecotrain.units import fmt_co2, fmt_duration, fmt_energy, fmt_usd

    where = "" if recorded else " (NOT recorded: see notes)"
    return (
        f"ecotrain: {fmt_duration(run['duration_s'])} · "
        f"{fmt_energy(run.get('facility_energy_kwh'))} (IT {fmt_energy(run.get('it_energy_kwh'))}"
        f" x PUE {run.get('pue') or '?'}) · {fmt_co2(run.get('co2_kg'))} CO2e · "
        f"{fmt_usd(run.get('cost_usd'))} · run {run['run_id'][:12]} [{run['status']}]{where}"
    )
