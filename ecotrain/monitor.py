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
from ecotrain.childwait import wait_child
from ecotrain.config import Settings
from ecotrain.integrations import Reporter
from ecotrain.redact import redact_argv, redact_record, redact_text
from ecotrain.runwatch import RunWatch
from ecotrain.store.records import utcnow

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
MAX_POINTS = 2000
# After the child exits, wait at most this long for the database write; the spool keeps it.
FINAL_WRITE_TIMEOUT_S = 0.05
# How long the end of a short run waits for a SQLite lock to write its record itself.
LITE_WRITE_TIMEOUT_S = 0.05
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
    mlflow: bool = False  # --mlflow: log to an MLflow run (ecotrain.integrations.mlflow)
    closed_fds: list[int] = field(default_factory=list)  # std fds closed when we started
    early_signals: list[int] = field(default_factory=list)  # got while ecotrain started up


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
        self.notes: list[str] = list(getattr(self.settings, "warnings", []))  # config skipped
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
        # MLflow / W&B destinations (none unless asked or found; stdlib only until then)
        self.reporter = Reporter([], every_s=float(self.settings.get("log_every_s", 10.0)))
        self._sampler_thread: threading.Thread | None = None
        self._command: list[str] | None = None
        self._command_lock = threading.Lock()

    def redacted_command(self) -> list[str]:
        """The command as recorded: redacted once (a long argv costs milliseconds), so
        heartbeats, the final record, the spool and the database all reuse it."""
        with self._command_lock:
            if self._command is None:
                self._command = redact_argv(self.opts.argv)
            return self._command

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

    def logger_metrics(self) -> dict[str, float]:
        """The figures so far, as sent to MLflow / W&B at a progress report."""
        from ecotrain.integrations import metrics_of

        duration = time.monotonic() - self.t0
        accounting, hardware, _ = self.accounted(duration)
        return metrics_of({**hardware, **accounting}, duration)

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
            "command": self.redacted_command(),
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
        # Redacted here, once: the spool and the database writer pass a redacted record on.
        return redact_record(record, command_redacted=True)

    def _spool(self, record: dict) -> Path | None:
        from ecotrain.store.spool import spool

        try:
            return spool(record, target=self.target)
        except OSError as e:
            note = f"spool failed: {e.strerror or e}"
            if note not in self.notes:
                self.notes.append(note)
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
        if self.reporter:
            from ecotrain.integrations import metrics_of

            self.reporter.final(metrics_of(record["run"]), self.run_id, status, wait_s=5.0)
            # The record was redacted (and marked so) when built: these notes came after,
            # and a logger's error may quote its tracking URL with a password.
            record["run"]["notes"].extend(redact_text(n) for n in self.reporter.notes)
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
        if not written and not pending:
            # A short command into an existing SQLite store: a few ms with sqlite3, instead
            # of a detached sync that imports SQLAlchemy (0.3 s CPU, 40 MiB).
            written = _write_lite(self.target, record)
        if written and spooled is not None:
            # The file holds this very record: no later state of the run can have replaced it
            # (heartbeats stop once the final record is spooled), so no need to re-read and
            # compare it (tens of ms for a 2 MB argv).
            spooled.unlink(missing_ok=True)
        if (spooled is not None and not written) or pending:
            # The detached sync also hashes checkpoints the run wrote in its last moments.
            _sync_detached(self.target, self.run_id, lineage=pending)
        for sensor in self.sensors:
            try:
                sensor.close()
            except Exception:  # noqa: BLE001
                pass
        self.watch.close()
        if spooled is None and not written:
            _last_resort(record)
        elif not written and _spool_used_reserve():
            say(
                "ecotrain: disk full: the record went into the space the spool keeps in "
                "reserve; free some space and run `ecotrain sync`"
            )
        if not self.opts.quiet:
            say(summary_line(record["run"], written or spooled is not None))
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
        # A signal that came before the child existed (forwarded once it does), and whether
        # the child has been reaped (its pid, hence its group id, may be reused after).
        self._early_signal: int | None = None
        self._reaped = False
        self._pid = os.getpid()

    # -- the child ----------------------------------------------------------------------

    def _start_child(self) -> int | None:
        env = dict(os.environ)
        env["ECOTRAIN_RUN_ID"] = self.run_id
        try:
            from ecotrain.lineage import child_env

            env = child_env(env, self.run_id, self.opts.uses)
        except Exception as e:  # noqa: BLE001 - lineage is optional, the run is not
            self.notes.append(f"checkpoint detection off: {_one_line(e)}")
        if self.opts.mlflow or env.get("MLFLOW_RUN_ID"):
            self._start_mlflow(env)
        closed = sorted({*self.opts.closed_fds, *_closed_std_fds()})
        try:
            self.child = subprocess.Popen(
                self.opts.argv,
                env=env,
                preexec_fn=_child_setup(closed),
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

    def _start_mlflow(self, env: dict[str, str]) -> None:
        """Log to MLflow: the run of ``mlflow run`` (MLFLOW_RUN_ID, made lazily on the logging
        thread), or with ``--mlflow`` and none, a new run made now and handed to the child
        (its own ``mlflow.start_run()`` then resumes it: one MLflow run, not two)."""
        from ecotrain.extras import missing
        from ecotrain.integrations import mlflow as ml

        run_id, uri = env.get("MLFLOW_RUN_ID"), env.get("MLFLOW_TRACKING_URI")
        if missing("mlflow"):
            self.notes.append(
                "mlflow: not installed, no metrics logged (pip install 'ecotrain[mlflow]')"
            )
            return
        if run_id:
            self.reporter.add(lambda: ml.MlflowSink(run_id, uri), f"mlflow:{run_id}")
            return
        try:
            sink = ml.start_for_wrapper(self.settings.get("project", "default"), env)
        except Exception as e:  # noqa: BLE001 - the run goes on without MLflow
            self.notes.append(f"mlflow: {_one_line(e)}")
            return
        self.reporter.add(lambda: sink, f"mlflow:{sink.run_id}")

    def _forward(self, signum: int, _frame: Any) -> None:
        if os.getpid() != self._pid:
            return  # in the forked child before exec: the parent forwards it
        if self.child is None:
            # Not started yet (or starting): remember it; run() forwards it once the child
            # exists, or does not start the command at all.
            if self._early_signal is None:
                self._early_signal = signum
            return
        if self._reaped:
            return  # the command is over; the record is being written
        try:
            os.killpg(self.child.pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
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
                    from ecotrain.units import fmt_number

                    self.notes.append(
                        f"child still alive {fmt_number(grace)} s after SIGTERM: SIGKILL"
                    )
                except ProcessLookupError:
                    pass

        timer = threading.Timer(grace, kill_if_alive)
        timer.daemon = True
        timer.start()

    # -- the whole run -----------------------------------------------------------------------

    def run(self) -> int:
        """Run the child to completion and record it; returns the exit code to use."""
        self._pid = os.getpid()
        # Handlers first: a SIGTERM that arrives while the child is being spawned must
        # neither kill the wrapper (orphaning the child, losing the record) nor be lost.
        # They stay installed until the record is written (a late signal is ignored then).
        previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED}
        if self.opts.early_signals and self._early_signal is None:
            self._early_signal = self.opts.early_signals[0]  # before this, while starting up
        if self._early_signal is not None:
            failed_start = 128 + self._early_signal
            self.notes.append(
                f"{signal.Signals(self._early_signal).name} before the command started: not started"
            )
        else:
            failed_start = self._start_child()
        if failed_start is None:
            if self._early_signal is not None:
                # arrived during the spawn: the child gets it now
                self._forward(self._early_signal, None)
            self.start(self.child.pid)
        else:
            self.writer.start()
        self._start_lineage(self.child.pid if self.child else None)
        self._gather_context()

        cpu_seconds = None
        if failed_start is not None and self._early_signal is not None and self.child is None:
            code, status = failed_start, "killed"
            reason = f"killed by {signal.Signals(self._early_signal).name} before it started"
        elif failed_start is not None:
            code, status, reason = failed_start, "failed_to_start", self.notes[-1]
            say(f"ecotrain: error: {reason}")
        else:
            self.redacted_command()  # while the child runs, not after it
            wait_status, rusage = wait_child(self.child.pid)
            self._reaped = True
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
        self.finish(code, status, reason, cpu_seconds)
        for sig, handler in previous.items():  # for callers that go on (tests, the API)
            signal.signal(sig, handler)
        return code


def _absolute_target(value: str | None) -> str | None:
    """The database a spooled record is meant for; relative SQLite paths made absolute, as a
    detached sync may run elsewhere."""
    if value and "://" not in value:
        return str(Path(value).expanduser().resolve())
    return value


def _write_lite(target: str | None, record: dict) -> bool:
    """Write a record with the standard library's sqlite3 if the store allows it."""
    try:
        from ecotrain.store import lite

        path = lite.sqlite_file(target)
        return path is not None and lite.write(path, record, LITE_WRITE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - the spool and the detached sync remain
        return False


def _sync_detached(target: str | None, run_id: str, lineage: bool) -> None:
    """Let a detached process write the spooled record, so we can exit now.

    The database URL goes by environment, never on the command line: any local user can
    read another's argv with `ps`, while /proc/PID/environ is the owner's alone."""
    from ecotrain.store.detached import TARGET_ENV

    env = dict(os.environ)
    env.pop(TARGET_ENV, None)
    if target:
        env[TARGET_ENV] = target
    try:
        subprocess.Popen(
            [sys.executable, "-m", "ecotrain.store.detached", run_id]
            + (["--lineage"] if lineage else []),
            env=env,
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


def say(line: str) -> None:
    """Print one line of ours on stderr, whatever became of it: closed (``2>&-``), a broken
    pipe, or None. Never on stdout (that is the child's), never an exception: the child's
    exit code is what the wrapper returns."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def _closed_std_fds() -> list[int]:
    """Fill closed stdin/stdout/stderr with /dev/null, so that no file the wrapper opens
    (the spool, the database) lands on fd 2 and receives what is meant for stderr; returns
    the ones that were closed, to close them again in the child, which sees them as given."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    return closed


def _child_setup(closed: list[int]) -> Any:
    def setup() -> None:
        _give_terminal_to_child()
        for fd in closed:
            try:
                os.close(fd)
            except OSError:
                pass

    return setup


def _spool_used_reserve() -> bool:
    from ecotrain.store import spool

    return spool.used_reserve


def _last_resort(record: dict) -> None:
    """Neither the spool nor the database took the final record (disk full, read-only):
    print it as one JSON line on stderr, the only place left, and say how to keep it."""
    from ecotrain.store.records import dumps

    try:
        line = dumps(record)
    except Exception:  # noqa: BLE001
        return
    say(
        "ecotrain: NOT recorded: the database and the spool refused the record (disk full? "
        "read-only?). To keep it, save the JSON line below as "
        f"<data dir>/spool/{record['run']['run_id']}.json and run `ecotrain sync`."
    )
    say(line)
