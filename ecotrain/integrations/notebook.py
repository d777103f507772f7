"""Jupyter / IPython: ``%load_ext ecotrain``, then

    %%ecotrain --project bert --tag lr=3e-4       # measure this cell
    %ecotrain start --project bert                # measure from here ...
    %ecotrain stop                                # ... to here (any number of cells)

Each is an :func:`ecotrain.track` run (the same record as the API, ``source = "api"``), and the
run's one-line summary is printed under the cell. Needs IPython (the [notebook] extra; any
Jupyter install has it).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

USAGE = (
    "%%ecotrain [--project P] [--tag K=V]... [--region R] [--pue X] [--db URL]"
    " | %ecotrain start [options] | %ecotrain stop"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UsageError(f"ecotrain: {message} (usage: {USAGE})")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%ecotrain", add_help=False)
    p.add_argument("action", nargs="?", choices=["start", "stop", "status"])
    p.add_argument("--project")
    p.add_argument("--tag", action="append", default=[])
    p.add_argument("--region")
    p.add_argument("--pue", type=float)
    p.add_argument("--db")
    return p


@magics_class
class EcotrainMagics(Magics):
    """The ``%ecotrain`` line magic and ``%%ecotrain`` cell magic."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.tracker: Any = None  # the %ecotrain start ... stop span, while open
        self.run: Any = None
        self.last_run: Any = None  # the latest finished run (for scripts in the notebook)

    @line_cell_magic
    def ecotrain(self, line: str, cell: str | None = None) -> Any:
        """Measure a cell (``%%ecotrain``) or a span of cells (``%ecotrain start/stop``)."""
        ns = _parser().parse_args(shlex.split(line))
        if cell is not None:
            if ns.action is not None:
                raise UsageError(f"ecotrain: %%ecotrain takes options, not {ns.action!r}")
            return self._cell(ns, cell)
        if ns.action == "start":
            if self.tracker is not None:
                raise UsageError(f"ecotrain: run {self.run.run_id[:12]} is already started")
            self.tracker = _tracker(ns)
            self.run = self.tracker.__enter__()
            print(f"ecotrain: measuring from here: run {self.run.run_id[:12]} (%ecotrain stop)")
            return None
        if ns.action == "stop":
            if self.tracker is None:
                raise UsageError("ecotrain: nothing to stop (%ecotrain start first)")
            tracker, self.tracker = self.tracker, None
            tracker.__exit__(None, None, None)
            return self._done(tracker.run)
        if ns.action == "status":
            print(
                "ecotrain: " + (f"run {self.run.run_id[:12]} measuring" if self.tracker else "idle")
            )
            return None
        raise UsageError(f"ecotrain: usage: {USAGE}")

    def _cell(self, ns: argparse.Namespace, cell: str) -> Any:
        tracker = _tracker(ns)
        tracker.__enter__()
        result = None
        error: BaseException | None = None
        try:
            result = self.shell.run_cell(cell, store_history=False)
            error = result.error_before_exec or result.error_in_exec
        except BaseException as e:  # KeyboardInterrupt while the cell ran
            error = e
            raise
        finally:
            if error is None:
                tracker.__exit__(None, None, None)
            else:
                tracker.__exit__(type(error), error, error.__traceback__)
            self._done(tracker.run)
        return None

    def _done(self, run: Any) -> None:
        from ecotrain.monitor import summary_line

        self.last_run = run
        if run.record is not None:
            print(summary_line(run.record, recorded=True))


def _tracker(ns: argparse.Namespace) -> Any:
    from ecotrain.api import track
    from ecotrain.errors import UserError
    from ecotrain.run_cli import parse_tags

    try:
        tags = parse_tags(ns.tag)
    except UserError as e:
        raise UsageError(f"ecotrain: {e}") from None
    return track(project=ns.project, tags=tags, region=ns.region, pue=ns.pue, db=ns.db, quiet=True)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ecotrain``."""
    ipython.register_magics(EcotrainMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext ecotrain``: an open span is closed and recorded first."""
    magics = ipython.magics_manager.registry.get("EcotrainMagics")
    if magics is not None and magics.tracker is not None:
        magics.ecotrain("stop")
