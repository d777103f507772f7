"""What a run learns while it runs: events from inside it, progress, prediction, budget, live line.

One :class:`RunWatch` per :class:`ecotrain.monitor.Recorder`, driven by its sampler thread
after each tick. It stays cheap: one ``stat`` of the events file per tick, and accounting
(the only non-trivial step) at most every ``CHECK_PERIOD_S`` and only when a budget or the
live line needs it. Kept to the stdlib: it is on the run path.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ecotrain.predict import DEFAULT_WARMUP_S, Progress, predict

CHECK_PERIOD_S = 0.5


class RunWatch:
    """Events, progress, prediction, budget and the live line of one run."""

    def __init__(self, recorder: Any) -> None:
        self.rec = recorder
        self.progress = Progress()
        self.prediction: dict[str, Any] | None = None
        self.checkpoints: list[dict[str, Any]] = []  # checkpoint events before the tracker
        self.reader: Any = None
        self.budget_watch: Any = None
        self.t0_unix = time.time()
        self.warmup_s = DEFAULT_WARMUP_S
        self._next_check = 0.0
        self._next_live = 0.0
        self.share_figures = False  # a logger inside the run asked for the figures so far
        self._next_share = 0.0
        self._share_seq = 0

    def setup(self, interval: float) -> None:
        """Called by the sampler thread once sensors are up."""
        rec = self.rec
        self.warmup_s = float(rec.settings.get("predict_warmup_s", DEFAULT_WARMUP_S))
        budget = getattr(rec.opts, "budget", None)
        if budget:
            from ecotrain.budget import BudgetWatch

            self.budget_watch = BudgetWatch(budget)
        if rec.source == "run":
            from ecotrain.events import EventReader, events_path

            try:
                self.reader = EventReader(events_path(rec.run_id))
            except OSError as e:
                rec.notes.append(f"events file unavailable: {e.strerror}")
        live = getattr(rec.opts, "live_every_s", None)
        if live and not _stderr_is_terminal():
            rec.opts.live_every_s = None
        self._next_live = time.monotonic() + (live or 0)

    # -- events ------------------------------------------------------------------------------

    def read_events(self) -> None:
        """Apply the events appended to the run's events file since the last tick."""
        if self.reader is None:
            return
        for event in self.reader.read_new():
            self.on_event(event)

    def on_event(self, event: dict[str, Any]) -> None:
        """Apply one event (see :mod:`ecotrain.events` for the format)."""
        kind = event.get("type")
        if kind in ("progress", "epoch"):
            step = event.get("step", event.get("epoch"))
            total = event.get("total")
            if not _is_number(step) or not _is_number(total):
                return
            t_unix = event.get("t") if _is_number(event.get("t")) else time.time()
            elapsed = max(0.0, t_unix - self.t0_unix)
            self.progress.report(elapsed, self.rec.energy_j(), step, total, kind)
            self.rec.reporter.step(step, self.rec.logger_metrics)
            self.progress.note_work(tokens=event.get("tokens"), samples=event.get("samples"))
            if self.share_figures:
                self._share(step)
        elif kind == "figures_wanted":
            self.share_figures = True
        elif kind == "mlflow":
            # code inside the run has an MLflow run active: log this run's figures to it
            run_id, uri = event.get("run_id"), event.get("tracking_uri")
            if isinstance(run_id, str) and run_id:
                from ecotrain.integrations.mlflow import MlflowSink

                self.rec.reporter.add(lambda: MlflowSink(run_id, uri), f"mlflow:{run_id}")
        elif kind == "checkpoint":
            if event.get("role", "produced") not in ("produced", "consumed"):
                return
            if self.rec.lineage is not None:
                self.log_checkpoint(event)
            else:
                # events before the tracker exists (it starts right after the child)
                self.checkpoints.append(event)

    def log_checkpoint(self, event: dict[str, Any]) -> None:
        """Hand a checkpoint event to the run's lineage tracker: a path (with, for a read,
        the file's stat key and maybe its hash then), or a Hugging Face id (``hf_id``)."""
        role = event.get("role", "produced")
        path, hf_id = event.get("path"), event.get("hf_id")
        if isinstance(hf_id, str):
            self.rec.lineage.log_hf_id(hf_id, role)
        if not isinstance(path, str):
            return
        stat, sha, kind = event.get("stat"), event.get("sha256"), event.get("kind")
        self.rec.lineage.log_checkpoint(
            path,
            role=role,
            detected_by=str(event.get("detected_by", "api")),
            stat=stat if isinstance(stat, str) else None,
            sha256=sha if isinstance(sha, str) else None,
            kind=kind if isinstance(kind, str) else None,
        )

    def _share(self, step: float) -> None:
        """Write the figures so far for the logger inside the run (at most every
        ``log_every_s``)."""
        now = time.monotonic()
        if now < self._next_share:
            return
        self._next_share = now + self.rec.reporter.every_s
        from ecotrain.events import write_figures

        self._share_seq += 1
        figures = {"seq": self._share_seq, "step": step, "metrics": self.rec.logger_metrics()}
        try:
            write_figures(self.rec.run_id, figures)
        except OSError:
            pass  # the logger inside misses one update; the run goes on

    # -- after each tick -------------------------------------------------------------------------

    def after_tick(self) -> None:
        """Read events; check the budget and print the live line when due."""
        self.read_events()
        now = time.monotonic()
        live_every = getattr(self.rec.opts, "live_every_s", None)
        live_due = bool(live_every) and now >= self._next_live
        if not (self.budget_watch is not None and now >= self._next_check) and not live_due:
            return
        self._next_check = now + CHECK_PERIOD_S
        duration = now - self.rec.t0
        accounting, _, _ = self.rec.accounted(duration)
        if self.budget_watch is not None:
            for message in self.budget_watch.check(accounting):
                stop = self.rec.opts.budget.on_budget == "stop"
                exceeded = message.startswith("budget exceeded")
                if exceeded and not stop:
                    message += " (continuing; --on-budget stop would stop the run)"
                elif exceeded:
                    message += " - stopping the run (SIGTERM, SIGKILL after "
                    message += f"{self.rec.opts.budget.grace_s:g} s)"
                print(f"ecotrain: {message}", file=sys.stderr, flush=True)
                if exceeded and stop:
                    self.rec.on_budget_exceeded(self.budget_watch.exceeded)
        if live_due:
            self._next_live = now + live_every
            self._update_prediction(accounting, duration)
            print(live_line(accounting, duration, self), file=sys.stderr, flush=True)

    def _update_prediction(self, accounting: dict[str, Any], duration: float) -> None:
        self.prediction = predict(
            duration,
            self.rec.energy_j(),
            self.progress,
            getattr(self.rec.opts, "expected_duration_s", None),
            accounting,
            self.warmup_s,
        )

    # -- the record ------------------------------------------------------------------------------

    def record_columns(self, run: dict[str, Any], duration: float) -> dict[str, Any]:
        """The ``progress`` and ``prediction`` columns; the prediction is refreshed while the
        run is running and kept as last made at the end (what was predicted)."""
        if run.get("status") == "running":
            self._update_prediction(run, duration)
        return {"progress": self.progress.as_dict(), "prediction": self.prediction}

    def close(self) -> None:
        """The run is over: remove its events file."""
        if self.reader is not None:
            self.reader.remove()
        if self.share_figures:
            from ecotrain.events import figures_path

            try:
                figures_path(self.rec.run_id).unlink()
            except OSError:
                pass


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def live_line(run: dict[str, Any], duration: float, watch: RunWatch | None = None) -> str:
    """One compact progress line: elapsed, energy, CO2e, cost, mean power, progress, forecast."""
    from ecotrain.units import fmt_co2, fmt_duration, fmt_energy, fmt_usd

    kwh = run.get("facility_energy_kwh") or 0.0
    watts = (run.get("it_energy_kwh") or 0.0) * 3.6e6 / duration if duration > 0 else 0.0
    cost = run.get("cost_usd")
    parts = [
        f"ecotrain: {fmt_duration(duration)}",
        fmt_energy(kwh),
        fmt_co2(run.get("co2_kg")),
        fmt_usd(cost),
        f"{watts:.0f} W",
    ]
    progress = watch.progress.as_dict() if watch else run.get("progress")
    prediction = watch.prediction if watch else run.get("prediction")
    if progress:
        parts.append(
            f"{progress['fraction']:.0%} ({progress['kind']} {progress['step']:g}/"
            f"{progress['total']:g})"
        )
    if prediction:
        parts.append(
            f"ETA {fmt_duration(prediction['remaining_s'])} -> "
            f"{fmt_energy(prediction.get('facility_energy_kwh'))}, "
            f"{fmt_co2(prediction.get('co2_kg'))}"
        )
    return " · ".join(parts)
