"""`ecotrain run`'s own option parser: argparse, so the child starts before Typer loads.

Typer (with the pydantic it now imports) costs ~170 ms at start-up on a 2-core machine; the
run path's budget is 300 ms in all. So ``ecotrain.cli.main`` sends ``ecotrain run …`` here
without importing Typer, and the Typer app's ``run`` command (listed in ``ecotrain --help``)
forwards to :func:`main` too: the options are defined once, below.

Everything from the first word that is not an option of ours (or after ``--``) is the child's
command, untouched: ``ecotrain run python train.py --help`` shows train.py's help.
"""

from __future__ import annotations

import argparse
import os
import sys

from ecotrain.errors import UserError

USAGE = "ecotrain run [OPTIONS] [--] COMMAND [ARGS]..."


class _HelpFormatter(argparse.HelpFormatter):
    """`ecotrain run --help` in the look of every other command's help (click's)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def add_usage(self, usage, actions, groups, prefix=None):  # noqa: ANN001, ANN201
        return super().add_usage(usage, actions, groups, prefix="Usage: ")

    def start_section(self, heading):  # noqa: ANN001, ANN201
        return super().start_section(heading.capitalize() if heading else heading)

    def _fill_text(self, text, width, indent):  # noqa: ANN001, ANN202
        return super()._fill_text(text, width, indent + "  ")

    def _get_help_string(self, action):  # noqa: ANN001, ANN202
        text = action.help or ""
        if text and text != argparse.SUPPRESS:
            text = text[0].upper() + text[1:]
            if not text.endswith((".", "?")):
                text += "."
        return text


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as every user mistake
        raise UserError(
            f"{message} (options of ecotrain go before the command; see ecotrain run --help)"
        )


def build_parser() -> argparse.ArgumentParser:
    """The options of `ecotrain run`."""
    p = _Parser(
        prog="ecotrain run",
        usage=USAGE,
        description="Run COMMAND and record its energy, CO2e and cost.",
        allow_abbrev=False,
        add_help=False,
        formatter_class=_HelpFormatter,
    )
    p.add_argument("-h", "--help", action="help", help="show this message and exit")
    p.add_argument("--project", metavar="NAME", help="project the run belongs to")
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="tag the run (repeatable)"
    )
    p.add_argument("--region", metavar="REGION", help="grid region: FRA, USA/CA, CAN/QC, ...")
    p.add_argument(
        "--pue", type=float, metavar="PUE", help="site PUE (default 1.56, stated in the record)"
    )
    p.add_argument(
        "--intensity", type=float, metavar="G_PER_KWH", help="override grid intensity, g CO2e/kWh"
    )
    p.add_argument(
        "--job", metavar="ID", help="group runs into a job (default: SLURM/torchrun ids)"
    )
    p.add_argument(
        "--uses",
        action="append",
        default=[],
        metavar="PATH_OR_HF_ID",
        help="checkpoint the run starts from (repeatable)",
    )
    p.add_argument(
        "--produces",
        action="append",
        default=[],
        metavar="PATH",
        help="checkpoint the run writes (repeatable)",
    )
    p.add_argument(
        "--db", metavar="URL|PATH", help="SQLite path or database URL (default: $ECOTRAIN_DB)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    p.add_argument("--budget-co2", metavar="AMOUNT", help="CO2e budget: 50kg, 500g")
    p.add_argument("--budget-usd", metavar="USD", help="dollar budget: 200")
    p.add_argument("--budget-kwh", metavar="AMOUNT", help="facility energy budget: 3kWh")
    p.add_argument(
        "--on-budget",
        choices=["warn", "stop"],
        help="warn (default) or stop: SIGTERM the command at 100%%",
    )
    p.add_argument(
        "--budget-grace", metavar="DURATION", help="SIGTERM to SIGKILL delay when stopping (10s)"
    )
    p.add_argument(
        "--expected-duration", metavar="DURATION", help="expected run time (2h), for the prediction"
    )
    p.add_argument("--live", action="store_true", help="progress line on stderr (terminal)")
    p.add_argument(
        "--live-every", type=float, default=10.0, metavar="SECONDS", help="seconds between lines"
    )
    p.add_argument(
        "--mlflow",
        action="store_true",
        help="log energy, CO2e, cost to MLflow (a new run, or $MLFLOW_RUN_ID's; [mlflow] extra)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def parse_tags(tags: list[str] | None) -> dict[str, str]:
    """`--tag k=v` options to a dict; a malformed tag is a user error."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key, sep, value = tag.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad --tag {tag!r}: use key=value")
        out[key.strip()] = value.strip()
    return out


def main(
    args: list[str], closed_fds: list[int] | None = None, early_signals: list[int] | None = None
) -> int:
    """Parse `ecotrain run` options, run the command, return its exit code. ``closed_fds``:
    which of stdin/stdout/stderr were closed when ecotrain started (the child gets them so)."""
    ns = build_parser().parse_args(args)
    command = list(ns.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UserError(f"no command given: {USAGE}")

    from ecotrain.accounting import site_from_settings
    from ecotrain.budget import budget_from, parse_duration_s
    from ecotrain.config import load_settings_for_run
    from ecotrain.monitor import Monitor, RunOptions

    # A broken config file or variable warns and falls back: it never stops the training.
    settings, (site, budget) = load_settings_for_run(
        {
            "project": ns.project,
            "region": ns.region,
            "pue": ns.pue,
            "intensity": ns.intensity,
            "database.url": ns.db,
        },
        lambda s: (
            site_from_settings(s.flat()),
            budget_from(
                s,
                {"co2": ns.budget_co2, "usd": ns.budget_usd, "kwh": ns.budget_kwh},
                ns.on_budget,
                ns.budget_grace,
            ),
        ),
        lambda message: print(f"ecotrain: warning: {message}", file=sys.stderr),
    )
    options = RunOptions(
        argv=command,
        settings=settings,
        tags=parse_tags(ns.tag),
        job=ns.job,
        uses=ns.uses,
        produces=ns.produces,
        quiet=ns.quiet,
        budget=budget or None,
        expected_duration_s=(
            parse_duration_s(ns.expected_duration, "expected duration")
            if ns.expected_duration
            else None
        ),
        live_every_s=max(0.5, ns.live_every) if ns.live else None,
        mlflow=ns.mlflow,
        closed_fds=list(closed_fds or []),
        early_signals=early_signals if early_signals is not None else [],
    )
    if ns.mlflow:
        from ecotrain.extras import require

        require("mlflow", "ecotrain run --mlflow")
    return Monitor(options, site).run()


def _say(line: str) -> None:
    # never stdout (the child's), never an exception (stderr closed or a broken pipe)
    try:
        if sys.stderr is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def entry(args: list[str]) -> None:
    """Run and exit with the child's code; user mistakes are one line and exit code 2.

    The child's code is returned whatever happened to our own stdout/stderr (closed, a
    broken pipe): those only ever carry ecotrain's remarks."""
    import signal

    # From the first moment: a SIGTERM while ecotrain starts up must not kill it silently.
    # Monitor.run sees it, does not start the command and records the run as killed.
    early: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    from ecotrain.monitor import _closed_std_fds

    closed = _closed_std_fds()  # before opening any file of ours
    if sys.stderr is None:
        # Python found fd 2 closed at start: print(file=None) would write to stdout, the
        # child's. Our remarks (budget warnings, ...) go nowhere instead.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        code = main(args, closed, early)
    except UserError as e:
        _say(f"ecotrain: error: {e}")
        code = e.exit_code
    except ValueError as e:
        if not type(e).__module__.startswith("ecotrain"):
            raise
        _say(f"ecotrain: error: {e}")
        code = 2
    # Skip interpreter teardown (tens of ms with SQLAlchemy loaded): the record is already
    # spooled or written, and a database write still in flight is safe to abandon — the
    # spool file is only removed once the write has committed.
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
