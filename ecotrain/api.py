"""The Python API: measure a block of code in the current process.

    import ecotrain

    with ecotrain.track(project="bert-distill", tags={"lr": 3e-4}) as run:
        for step in range(total):
            ...
            run.progress(step + 1, total)
        run.log_checkpoint("ckpt/final.safetensors", role="produced")
    print(run.energy_kwh, run.co2_kg, run.cost_usd)

    @ecotrain.track(project="bert-distill")
    def train(): ...

The same sensors, accounting and store as `ecotrain run` (a :class:`ecotrain.monitor.Recorder`
measuring this process's tree), with ``source = "api"``.

Nested inside `ecotrain run` (``ECOTRAIN_RUN_ID`` is set), the process is already measured:
``track`` then attaches to that outer run instead of counting twice. Progress and checkpoints
go to the outer run through its events file (:mod:`ecotrain.events`); ``energy_kwh``,
``co2_kg`` and ``cost_usd`` stay None and ``run.unavailable_reason`` says why (the figures are
the outer run's: ``ecotrain show <outer id>``). A ``track`` nested in another ``track`` of the
same process attaches to it the same way.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecotrain.monitor import Recorder, RunOptions, _one_line

# Wait this long for the database write when the block ends: the process goes on, and a
# user reading the store right after the block expects the run to be there.
API_FINAL_WAIT_S = 5.0

_active: list[Run] = []
_active_lock = threading.Lock()


class ApiRecorder(Recorder):
    """A recorder for the current process (no child)."""

    source = "api"
    final_wait_s = API_FINAL_WAIT_S


class Run:
    """One tracked block: its id, what it reported, and its totals once it ended."""

    def __init__(self, project: str | None, tags: dict[str, str]) -> None:
        self.run_id: str | None = None
        self.project = project
        self.tags = tags
        self.attached_to: str | None = None  # the outer run's id when nested
        self.status: str | None = None  # running, then finished/failed/killed
        self.record: dict[str, Any] | None = None  # the final run row (standalone only)
        self.unavailable_reason: str | None = None
        self._recorder: ApiRecorder | None = None
        self._parent: Run | None = None
        self._relay: Any = None  # ecotrain.integrations.FiguresRelay (attached, W&B active)

    # -- reporting from inside the block --------------------------------------------------

    def progress(
        self,
        step: float,
        total: float,
        *,
        tokens: float | None = None,
        samples: float | None = None,
    ) -> None:
        """Report that ``step`` of ``total`` steps are done (for the prediction); ``tokens``
        and ``samples``: units of work processed so far (cumulative), for the per-unit
        figures of :mod:`ecotrain.efficiency`."""
        work = {k: v for k, v in (("tokens", tokens), ("samples", samples)) if v is not None}
        self._event({"type": "progress", "step": step, "total": total, **work})

    def epoch(self, epoch: float, total: float) -> None:
        """Report that ``epoch`` of ``total`` epochs are done."""
        self._event({"type": "epoch", "epoch": epoch, "step": epoch, "total": total})

    def log_checkpoint(self, path: str | os.PathLike, role: str = "produced") -> None:
        """Record that this run produced (or consumed) the checkpoint at ``path``: a file,
        a checkpoint folder, or a Hugging Face model id (``org/name``) that is not a path.

        Reads and writes of model files inside the block are recorded without this (an
        audit hook sees them); log what it cannot see, and numpy arrays that are
        checkpoints (a bare ``.npy``/``.npz`` is taken for data unless named here)."""
        if role not in ("produced", "consumed"):
            raise ValueError(f"role must be 'produced' or 'consumed', not {role!r}")
        local = Path(path).expanduser()
        if not local.exists() and isinstance(path, str) and _is_hf_id(path):
            self._event({"type": "checkpoint", "hf_id": path, "role": role})
            return
        self._event({"type": "checkpoint", "path": str(local.resolve()), "role": role})

    def note(self, text: str) -> None:
        """Add a note to this run's record (standalone runs; ignored when attached)."""
        if self._recorder is not None and text not in self._recorder.notes:
            self._recorder.notes.append(text)

    def _event(self, event: dict[str, Any]) -> None:
        event = {**event, "t": time.time()}
        if self._parent is not None:
            self._parent._event(event)
        elif self.attached_to is not None:
            from ecotrain.events import append_event

            try:
                append_event(self.attached_to, event)
                if self._relay is not None and event["type"] in ("progress", "epoch"):
                    self._relay.poll()  # W&B in this process: the wrapper's figures so far
            except Exception:  # noqa: BLE001
                pass  # reporting progress must never break training
        elif self._recorder is not None:
            try:
                self._recorder.watch.on_event(event)
            except Exception:  # noqa: BLE001
                pass

    # -- totals ---------------------------------------------------------------------------

    def _total(self, column: str) -> float | None:
        return None if self.record is None else self.record.get(column)

    @property
    def energy_kwh(self) -> float | None:
        """Energy in kWh as everywhere in ecotrain: facility energy (IT energy x PUE), the
        figure CO2e and an electricity cost are computed from; None while running or when
        attached."""
        return self._total("facility_energy_kwh")

    @property
    def it_energy_kwh(self) -> float | None:
        """IT energy (GPU + CPU + RAM) in kWh, before PUE."""
        return self._total("it_energy_kwh")

    @property
    def facility_energy_kwh(self) -> float | None:
        """The same as :attr:`energy_kwh` (IT energy x PUE), by its longer name."""
        return self._total("facility_energy_kwh")

    @property
    def co2_kg(self) -> float | None:
        """CO2e in kg (facility energy x grid intensity)."""
        return self._total("co2_kg")

    @property
    def cost_usd(self) -> float | None:
        """Cost in US dollars, by the site's cost method."""
        return self._total("cost_usd")

    @property
    def duration_s(self) -> float | None:
        """Seconds the block ran."""
        return self._total("duration_s")

    def prediction(self) -> dict[str, Any] | None:
        """The forecast totals at completion now (after the warm-up), else None."""
        rec = self._recorder
        if rec is None:
            return None
        duration = time.monotonic() - rec.t0
        accounting, _, _ = rec.accounted(duration)
        rec.watch._update_prediction(accounting, duration)
        return rec.watch.prediction

    def __repr__(self) -> str:
        return (
            f"<ecotrain.Run {self.run_id or '?'} {self.status or 'new'} "
            f"energy_kwh={self.energy_kwh} co2_kg={self.co2_kg}>"
        )


class track:  # noqa: N801 - reads as a function: `with ecotrain.track(...)`
    """Measure a block (``with``) or every call of a function (decorator).

    Arguments mirror `ecotrain run`: ``project``, ``tags`` (values become strings),
    ``region``, ``pue``, ``job``, ``db`` (SQLite path or URL), ``quiet`` (no summary line).
    """

    def __init__(
        self,
        project: str | None = None,
        tags: dict[str, Any] | None = None,
        *,
        region: str | None = None,
        pue: float | None = None,
        job: str | None = None,
        db: str | None = None,
        quiet: bool = False,
    ) -> None:
        self.project = project
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.region = region
        self.pue = pue
        self.job = job
        self.db = db
        self.quiet = quiet
        self.run: Run | None = None  # the latest run (for the decorator form)
        self._cpu0 = 0.0

    def __enter__(self) -> Run:
        run = Run(self.project, self.tags)
        self.run = run
        with _active_lock:
            parent = _active[-1] if _active else None
            _active.append(run)
        outer = os.environ.get("ECOTRAIN_RUN_ID")
        if parent is not None:
            run._parent = parent
            run.attached_to = parent.attached_to or parent.run_id
            run.run_id = run.attached_to
            run.unavailable_reason = (
                f"nested in ecotrain.track run {run.attached_to}: its energy is counted there"
            )
        elif outer:
            self._attach(run, outer)
        else:
            self._start(run)
        run.status = "running"
        _attach_loggers(run)
        return run

    def _attach(self, run: Run, outer: str) -> None:
        from ecotrain.events import append_event

        run.attached_to = outer
        run.run_id = outer
        run.unavailable_reason = (
            f"attached to the enclosing `ecotrain run` {outer}: this process is measured "
            f"there, not twice (see `ecotrain show {outer[:12]}`)"
        )
        try:
            append_event(
                outer,
                {"type": "attach", "pid": os.getpid(), "project": self.project, "tags": self.tags},
            )
        except OSError:
            pass

    def _start(self, run: Run) -> None:
        from ecotrain.accounting import site_from_settings
        from ecotrain.config import load_settings

        settings = load_settings(
            cli={
                "project": self.project,
                "region": self.region,
                "pue": self.pue,
                "database.url": self.db,
            }
        )
        site = site_from_settings(settings.flat())
        options = RunOptions(
            argv=list(sys.argv) or ["python"],
            settings=settings,
            tags=self.tags,
            job=self.job,
            quiet=self.quiet,
        )
        rec = ApiRecorder(options, site)
        run._recorder = rec
        run.run_id = rec.run_id
        run.project = settings.get("project", "default")
        self._cpu0 = _cpu_seconds()
        rec.start(os.getpid())
        rec._start_lineage(None)
        _audit_reads(rec)
        try:
            rec._gather_context()
        except Exception as e:  # noqa: BLE001 - context is nice to have
            rec.notes.append(f"context: {_one_line(e)}")

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> None:
        run = self.run
        assert run is not None
        with _active_lock:
            if run in _active:
                _active.remove(run)
        if exc_type is None:
            status, reason = "finished", None
        elif issubclass(exc_type, KeyboardInterrupt | SystemExit) and not (
            isinstance(exc, SystemExit) and exc.code in (0, None)
        ):
            status, reason = "killed", f"interrupted: {exc_type.__name__}"
        elif issubclass(exc_type, SystemExit):
            status, reason = "finished", None
        else:
            status, reason = "failed", f"exception: {_one_line(exc)}"
        run.status = status
        rec = run._recorder
        if rec is None:
            if run._relay is not None:
                try:
                    run._relay.close()
                except Exception:  # noqa: BLE001 - a logger never breaks the tracked code
                    pass
            return  # attached: the outer run records it
        _stop_audit()
        rec.stop()
        record = rec.finish(None, status, reason, _cpu_seconds() - self._cpu0)
        run.record = record["run"]

    def __call__(self, func: Callable) -> Callable:
        """Decorator form: each call is its own run; ``wrapper.last_run`` is the latest."""

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self as run:
                wrapper.last_run = run  # type: ignore[attr-defined]
                return func(*args, **kwargs)

        wrapper.last_run = None  # type: ignore[attr-defined]
        return wrapper


def _attach_loggers(run: Run) -> None:
    """Active MLflow / W&B runs of this process get the run's figures (when imported)."""
    if "mlflow" not in sys.modules and "wandb" not in sys.modules:
        return  # the common case: nothing to look for, nothing imported
    try:
        from ecotrain.integrations import attach_loggers

        attach_loggers(run)
    except Exception as e:  # noqa: BLE001 - a logger never breaks the tracked code
        if run._recorder is not None:
            run._recorder.notes.append(f"loggers: {_one_line(e)}")


def _is_hf_id(item: str) -> bool:
    from ecotrain.lineage import HF_ID

    return bool(HF_ID.match(item))


def _audit_reads(rec: ApiRecorder) -> None:
    """See the model files this process reads and writes inside the block, as `ecotrain run`
    does for its children: the same audit hook, reporting straight to the run's tracker."""
    if rec.lineage is None:
        return
    try:
        from ecotrain._hook import _ecotrain_audit
        from ecotrain.lineage import MODEL_SUFFIXES, hashcache_path

        def sink(event: dict[str, Any]) -> None:
            try:
                rec.watch.on_event(event)
            except Exception:  # noqa: BLE001 - lineage must never disturb the run
                pass

        _ecotrain_audit.install(sink, MODEL_SUFFIXES, str(hashcache_path()))
    except Exception as e:  # noqa: BLE001
        rec.notes.append(f"checkpoint detection off: {_one_line(e)}")


def _stop_audit() -> None:
    try:
        from ecotrain._hook import _ecotrain_audit

        _ecotrain_audit.uninstall()
    except Exception:  # noqa: BLE001
        pass


def _cpu_seconds() -> float:
    """CPU time of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
