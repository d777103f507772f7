"""Send a run's figures where the lab already looks: MLflow, Weights & Biases (and Prometheus,
served by `ecotrain exporter`).

Each integration is optional and imported lazily. In the measured process (``ecotrain.track``,
the notebook magic, the framework callbacks) a logger is used only when the user's code has
already imported it and has a run active: nothing is imported to find out. `ecotrain run`
logs to MLflow when asked (``--mlflow``), when started by ``mlflow run`` (``MLFLOW_RUN_ID``),
or when code inside the child reports its active MLflow run (see :mod:`ecotrain.api`).

Names follow the loggers' habits: metrics ``ecotrain/energy_kwh`` etc. (MLflow's own system
metrics are ``system/...``; W&B groups panels by the prefix), the tag ``ecotrain.run_id``.
Logging happens on one background thread per run with a bounded queue: a slow tracking
server delays nothing and a failing one only adds a note to the run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

PREFIX = "ecotrain/"
RUN_ID_TAG = "ecotrain.run_id"
# metric name (after PREFIX) -> runs-table column it comes from
COLUMNS = {
    "energy_kwh": "facility_energy_kwh",
    "it_energy_kwh": "it_energy_kwh",
    "co2_kg": "co2_kg",
    "cost_usd": "cost_usd",
    "gpu_hours": "gpu_hours",
}


def metrics_of(row: dict[str, Any], duration_s: float | None = None) -> dict[str, float]:
    """The figures to log, named ``ecotrain/<name>``, from a run row or accounting dict.

    ``power_w`` is the mean IT power over ``duration_s`` (or the row's ``duration_s``).
    Unknown figures are left out rather than logged as 0.
    """
    out: dict[str, float] = {}
    for name, column in COLUMNS.items():
        value = row.get(column)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[PREFIX + name] = float(value)
    duration = duration_s if duration_s is not None else row.get("duration_s")
    it_kwh = row.get("it_energy_kwh")
    if duration and it_kwh is not None:
        out[PREFIX + "power_w"] = float(it_kwh) * 3.6e6 / float(duration)
    return out


class Sink(Protocol):
    """One destination: a logger's run."""

    name: str

    def log(self, metrics: dict[str, float], step: int | None) -> None:
        """Per-step figures (``step`` None when progress is unknown)."""

    def final(self, metrics: dict[str, float], run_id: str, step: int | None, status: str) -> None:
        """The run's final figures, its ecotrain run id and status."""


def active_sinks() -> list[Sink]:
    """Sinks for the loggers the current process has imported and started a run in.

    Checks ``sys.modules`` only: a process that never imported mlflow or wandb pays nothing.
    """
    import sys

    sinks: list[Sink] = []
    if "mlflow" in sys.modules:
        from ecotrain.integrations.mlflow import active_sink

        sink = active_sink()
        if sink is not None:
            sinks.append(sink)
    if "wandb" in sys.modules:
        from ecotrain.integrations.wandb import active_sink as wandb_sink

        sink = wandb_sink()
        if sink is not None:
            sinks.append(sink)
    return sinks


def sink_key(sink: Sink) -> str:
    """``<logger>:<its run id>``: one destination, whoever found it."""
    return f"{sink.name}:{getattr(sink, 'run_id', id(sink))}"


def attach_loggers(run: Any) -> None:
    """Look again for active MLflow / W&B runs for an ``ecotrain.track`` run (they may have
    started after it: HF's MLflow callback starts its run when training begins).

    Standalone, new sinks join the run's reporter. Attached to an `ecotrain run`, the active
    MLflow run is reported to the wrapper through the events file; the wrapper logs to it.
    """
    import sys

    rec = getattr(run, "_recorder", None)
    if rec is not None:
        for sink in active_sinks():
            rec.reporter.add(lambda sink=sink: sink, sink_key(sink))
        return
    outer = getattr(run, "attached_to", None)
    if not outer:
        return
    from ecotrain.events import append_event

    if "mlflow" in sys.modules:
        from ecotrain.integrations.mlflow import active_run_ref

        ref = active_run_ref()
        if ref is not None and ref["run_id"] != getattr(run, "_mlflow_reported", None):
            append_event(outer, {"type": "mlflow", **ref})
            run._mlflow_reported = ref["run_id"]
    if "wandb" in sys.modules and getattr(run, "_relay", None) is None:
        # W&B lives in this process: the wrapper shares its figures so far through a file
        from ecotrain.integrations.wandb import active_sink as wandb_sink

        sink = wandb_sink()
        if sink is not None:
            run._relay = FiguresRelay(outer, sink)
            append_event(outer, {"type": "figures_wanted"})


class FiguresRelay:
    """Code inside `ecotrain run` with a W&B run: logs the figures the wrapper shares.

    Checked at each progress report (one small file read, only when it changed); the figures
    lag the wrapper by at most ``log_every_s`` plus a sampling tick. At the end of the
    tracked block the latest figures go to the summary (the run's final figures are the
    wrapper's, recorded after this process ends: ``ecotrain show``).
    """

    def __init__(self, outer_run_id: str, sink: Sink) -> None:
        self.outer = outer_run_id
        self.sink = sink
        self.seq = 0
        self.last: dict[str, Any] | None = None

    def poll(self) -> None:
        """Log the shared figures if the wrapper wrote new ones."""
        from ecotrain.events import read_figures

        figures = read_figures(self.outer)
        if not figures or figures.get("seq", 0) <= self.seq:
            return
        self.seq = figures["seq"]
        self.last = figures
        step = figures.get("step")
        self.sink.log(figures.get("metrics") or {}, None if step is None else int(step))

    def close(self) -> None:
        """The latest figures into the summary, with the run id."""
        self.poll()
        if self.last is not None:
            self.sink.final(self.last.get("metrics") or {}, self.outer, None, "running")


class Reporter:
    """Sends one run's figures to its sinks from a background thread.

    ``step()`` is called on every progress report and sends at most one batch every
    ``every_s`` seconds; ``final()`` always sends, then waits (bounded) for the queue.
    """

    def __init__(self, sinks: list[Sink], every_s: float = 10.0) -> None:
        self.sinks = list(sinks)
        self.every_s = every_s
        self.notes: list[str] = []
        self.last_step: int | None = None
        self._next = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0  # sinks being made on the thread
        self.keys: set[str] = {sink_key(sink) for sink in self.sinks}
        self._ended = False

    def __bool__(self) -> bool:
        """True once any destination is known (made or being made)."""
        return bool(self.keys)

    def add(self, factory: Callable[[], Sink], key: str) -> None:
        """Log to one more sink from now on, made by ``factory`` on the logging thread (its
        import of the logger may take seconds and must not hold up the caller). ``key``
        (e.g. ``mlflow:<run id>``) makes a second add of the same destination a no-op."""
        if key in self.keys:
            return
        self.keys.add(key)
        self._pending += 1
        self._put(("add", factory, None))

    def step(self, step: float | None, figures: Callable[[], dict[str, float]]) -> None:
        """A progress report: send the figures now if the last batch is ``every_s`` old."""
        if not (self.sinks or self._pending):
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        step_i = None if step is None else int(step)
        self.last_step = step_i
        self._put(("log", figures(), step_i))

    def final(
        self,
        metrics: dict[str, float],
        run_id: str,
        status: str = "finished",
        wait_s: float = 10.0,
    ) -> None:
        """Send the final figures, run id and status; wait up to ``wait_s`` for the thread."""
        if not (self.sinks or self._pending) or self._ended:
            return
        self._ended = True
        self._put(("final", metrics, (run_id, self.last_step, status)))
        self._put(None)
        if self._thread is not None:
            self._thread.join(wait_s)
            if self._thread.is_alive():
                self.notes.append(f"loggers still busy after {wait_s:g} s: final figures may lack")

    def _put(self, item: Any) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="ecotrain-loggers", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            pass  # a stalled server: drop a per-step batch rather than grow

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, metrics, arg = item
            if kind == "add":
                try:
                    sink = metrics()
                    with self._lock:
                        self.sinks.append(sink)
                except Exception as e:  # noqa: BLE001
                    self._note("logger", e)
                continue
            with self._lock:
                sinks = list(self.sinks)
            for sink in sinks:
                try:
                    if kind == "log":
                        sink.log(metrics, arg)
                    else:
                        sink.final(metrics, *arg)
                except Exception as e:  # noqa: BLE001 - a logger never breaks the run
                    self._note(sink.name, e)

    def _note(self, who: str, e: BaseException) -> None:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        note = f"{who}: {type(e).__name__}: {first}"
        if note not in self.notes:
            self.notes.append(note)
