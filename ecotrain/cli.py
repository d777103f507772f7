"""The `ecotrain` command line: thin commands over the library.

Each command parses its options, calls ecotrain's Python API and prints. Output formats
(Rich table on a terminal, plain text otherwise, ``--json`` for scripts) live in
:mod:`ecotrain.output`. Heavy modules are imported inside commands, so `ecotrain run`
starts its child before SQLAlchemy, pandas or NVML are loaded.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated

import typer

from ecotrain.errors import UserError
from ecotrain.run_cli import parse_tags

app = typer.Typer(
    name="ecotrain",
    help="Measure what training costs (energy, CO2e, dollars) and what reuse saves.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)
db_app = typer.Typer(help="Create, migrate or inspect the database.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
# every date option takes the same forms (parse_when)
SINCE_HELP = "YYYY-MM-DD[THH:MM], or a duration back from now: 30m, 12h, 7d, 2w."
DbOpt = Annotated[
    str | None, typer.Option("--db", help="SQLite path or database URL (default: $ECOTRAIN_DB).")
]


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit (2 = the user asked for something wrong)."""
    print(f"ecotrain: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _settings(**cli):
    from ecotrain.config import load_settings

    return load_settings(cli=cli)


def _open_store(db: str | None, readonly: bool = False):
    from ecotrain.store.db import Store

    settings = _settings(**{"database.url": db})
    store = Store(settings["database.url"], readonly=readonly)
    if not readonly:
        store.sync_spool()
        store.mark_lost()
    return store


def parse_when(value: str | None) -> datetime | None:
    """A date option: ISO date/time, or relative like 7d, 12h."""
    if value is None:
        return None
    from ecotrain.store.records import utcnow

    text = value.strip().lower()
    units = {"d": 86400, "h": 3600, "w": 7 * 86400, "m": 60}
    if text[:-1].replace(".", "", 1).isdigit() and text[-1] in units:
        from datetime import timedelta

        try:
            return utcnow() - timedelta(seconds=float(text[:-1]) * units[text[-1]])
        except OverflowError:  # further back than datetime goes (year 1)
            raise UserError(f"bad date {value!r}: {text} ago is before year 1") from None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"bad date {value!r}: use YYYY-MM-DD or a duration like 7d") from None


def _print_version(value: bool) -> None:
    if value:
        from ecotrain import __version__

        print(f"ecotrain {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Measure what training costs (energy, CO2e, dollars) and what reuse saves."""


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": [],
    }
)
def run(ctx: typer.Context) -> None:
    """Run a command and record its energy, CO2e and cost.

    `ecotrain run --help` lists its options."""
    # Normally main() dispatches `run` before Typer loads; this keeps `ecotrain --help` and
    # app-level invocations (tests, python -m) on the same parser.
    from ecotrain.run_cli import main as run_main

    raise typer.Exit(run_main(list(ctx.args)))


@app.command("runs")
def runs_cmd(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    since: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
    status: Annotated[
        str | None, typer.Option(help="running|finished|failed|killed|lost|failed_to_start")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    job: Annotated[str | None, typer.Option(help="Only this job (with its ranks).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 20,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List recent runs."""
    from ecotrain.output import print_runs
    from ecotrain.store.queries import RunFilter, list_runs

    store = _open_store(db)
    flt = RunFilter(
        project=project,
        since=parse_when(since),
        status=status,
        user=user,
        job=job,
        tags=parse_tags(tag),
    )
    if job and not as_json:
        from ecotrain.output import print_job
        from ecotrain.store.aggregates import totals

        rows = list_runs(store.engine, flt, limit=limit, order="rank", descending=False)
        print_job(job, totals(store.engine, flt), rows)
        return
    rows = list_runs(store.engine, flt, limit=limit)
    if as_json:
        print_runs(rows, as_json=True)
        return
    from ecotrain.store.aggregates import totals
    from ecotrain.store.queries import count_runs

    in_store = count_runs(store.engine) if not rows else None
    print_runs(rows, total=totals(store.engine, flt) if rows else None, in_store=in_store)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one run in full."""
    from ecotrain.output import print_run
    from ecotrain.store.aggregates import run_detail
    from ecotrain.store.queries import RunNotFound

    store = _open_store(db)
    try:
        detail = run_detail(store.engine, run_id)
    except RunNotFound as e:
        fail(str(e))
    print_run(detail["run"], detail["samples"], as_json, checkpoints=detail["checkpoints"])


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Show what this machine can measure, and how.

    Also the region, PUE and price in force."""
    from ecotrain.doctor import diagnose
    from ecotrain.output import print_doctor

    print_doctor(diagnose(_settings()), as_json=as_json)


@app.command()
def sync(
    status: Annotated[bool, typer.Option("--status", help="Only show what is pending.")] = False,
    retarget: Annotated[
        bool,
        typer.Option(
            "--retarget",
            help="Send every pending record to --db (or the configured database), "
            "whatever database it was spooled for.",
        ),
    ] = False,
    retry_quarantined: Annotated[
        bool,
        typer.Option(
            "--retry-quarantined",
            help="Put records a database refused for good back in the spool and sync them "
            "(after fixing the cause, e.g. `ecotrain db upgrade`).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Push spooled run records to their database.

    Also identifies the checkpoints still pending.

    Exits 1 while any record is kept back: pending, or set aside (quarantined) because a
    database refused it for a reason a retry cannot fix."""
    from ecotrain.store import quarantine, spool

    if status:
        from ecotrain.output import print_spool

        set_aside = quarantine.listing()
        print_spool(spool.spool_dir(), spool.pending(), set_aside, as_json=as_json)
        raise typer.Exit(1 if set_aside else 0)
    from ecotrain.store.db import sync_all

    if retry_quarantined:
        print(f"{quarantine.release()} quarantined record(s) back in the spool", file=sys.stderr)
    default = _settings(**{"database.url": db})["database.url"]
    results = sync_all(default_target=default, retarget=retarget)
    failed = any(errors for _, errors in results.values())
    if as_json:
        from ecotrain.output import print_json

        print_json({url: {"written": n, "kept": errs} for url, (n, errs) in results.items()})
        if failed:
            raise typer.Exit(1)
        return
    for url, (pushed, errors) in results.items():
        if not quiet:
            print(f"{url}: {pushed} record(s) written")
            for err in errors:
                where = "quarantined" if "set aside" in err else "kept in spool"
                print(f"  {where}: {err}", file=sys.stderr)
    set_aside = quarantine.listing()
    if set_aside:
        print(
            f"ecotrain: {len(set_aside)} record(s) quarantined (refused by the database): "
            "see `ecotrain sync --status`",
            file=sys.stderr,
        )
    if failed or set_aside:
        raise typer.Exit(1)


@config_app.command("show")
def config_show(as_json: JsonOpt = False) -> None:
    """Print the effective settings and where each came from."""
    from ecotrain.effective import effective_settings
    from ecotrain.output import print_settings

    print_settings(effective_settings(_settings()), as_json=as_json)


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Create or migrate the schema to this version."""
    from ecotrain.store.db import Store
    from ecotrain.store.migrations import upgrade

    store = Store(_settings(**{"database.url": db})["database.url"], migrate=False)
    before, after = upgrade(store.engine)
    if as_json:
        from ecotrain.output import print_json

        print_json({"url": store.display_url, "from": before, "to": after})
        return
    print(f"{store.display_url}: schema {before if before is not None else 'none'} -> {after}")


@db_app.command("info")
def db_info(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Show the database in use, its schema and counts.

    The URL with its password masked."""
    from ecotrain.output import print_mapping
    from ecotrain.store.db import Store
    from ecotrain.store.queries import db_counts

    store = Store(_settings(**{"database.url": db})["database.url"], migrate=False)
    print_mapping({"url": store.display_url, **db_counts(store.engine)}, as_json=as_json)


# --- lineage & savings ---

checkpoint_app = typer.Typer(help="State what a checkpoint cost to produce.", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")
ModeOpt = Annotated[
    str, typer.Option("--mode", help="Counterfactual: reproduce | as-published | none.")
]


@app.command()
def lineage(
    item: Annotated[str, typer.Argument(help="Run id (prefix), checkpoint id, path or HF id.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a run's or a checkpoint's lineage.

    The checkpoints a run read and wrote, or a checkpoint's ancestors and reusers."""
    from ecotrain.lineage_view import as_dict, resolve_item, tree

    store = _open_store(db)
    try:
        kind, key = resolve_item(store.engine, item)
    except LookupError as e:
        fail(str(e))
    from ecotrain.output import console, print_json

    if as_json:
        print_json(as_dict(store.engine, kind, key))
        return
    console.print(tree(store.engine, kind, key))


@app.command("checkpoints")
def checkpoints_cmd(
    project: Annotated[
        str | None, typer.Option(help="Only checkpoints this project's runs read or wrote.")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    mode: ModeOpt = "reproduce",
) -> None:
    """List checkpoints, their footprints and reuse.

    Names, footprint and its source, times reused."""
    from ecotrain.output import print_checkpoints
    from ecotrain.savings import MODES, footprints, list_checkpoints

    if mode not in MODES:
        fail(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    store = _open_store(db)
    rows = list_checkpoints(store.engine, project=project)
    fps = footprints(store.engine, [row["checkpoint_id"] for row in rows])
    for row in rows:
        row["footprint"] = fps[row["checkpoint_id"]]
    if not rows and project and not as_json:
        print(f"no checkpoints read or written by runs of project {project!r}")
        return
    print_checkpoints(rows, as_json=as_json)


@app.command()
def savings(
    project: Annotated[str | None, typer.Option(help="Only runs of this project.")] = None,
    user: Annotated[str | None, typer.Option(help="Only runs of this user.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    since: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    mode: ModeOpt = "reproduce",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what reusing checkpoints avoided.

    Reported beside emissions, never netted."""
    from ecotrain.output import print_savings
    from ecotrain.savings import MODES, avoided_for_runs
    from ecotrain.store.queries import RunFilter

    if mode not in MODES:
        fail(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    store = _open_store(db)
    flt = RunFilter(
        project=project, user=user, since=parse_when(since), tags=parse_tags(tag), status=status
    )
    print_savings(avoided_for_runs(store.engine, flt, mode=mode), mode, as_json=as_json)


# `estimate` and `checkpoint register` live in ecotrain/cli_footprint.py (imported below).


# --- reports ---


@app.command()
def report(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    run: Annotated[
        list[str] | None, typer.Option("--run", help="Run id (prefix), repeatable.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    since: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
    until: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="md | latex | html | json | model-card")
    ] = "md",
    mode: ModeOpt = "reproduce",
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="File (default: stdout).")
    ] = None,
    bib: Annotated[
        str | None,
        typer.Option("--bib", help="Also write the sources' BibTeX here (LaTeX cites them)."),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Write a paper's compute, energy and carbon statement.

    From recorded runs."""
    from ecotrain.reports import FORMATS, render
    from ecotrain.reports.model import NoRuns, build_report
    from ecotrain.savings import MODES
    from ecotrain.store.queries import RunFilter, suggest

    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if mode not in MODES:
        fail(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    from ecotrain.outfile import check_target, is_stdout, write_output

    if not is_stdout(output):
        check_target(output)  # before the work: a path we cannot write fails at once
    if bib is not None:
        check_target(bib)
    store = _open_store(db)
    flt = RunFilter(
        project=project,
        user=user,
        status=status,
        run_ids=run or None,
        tags=parse_tags(tag),
        since=parse_when(since),
        until=parse_when(until),
    )
    try:
        rep = build_report(store.engine, flt, mode=mode)
    except NoRuns:
        fail("no runs match" + suggest(store.engine, project=project, run_ids=run or []))
    text = render(rep, fmt, bib=bib is not None)
    if bib is not None:
        from ecotrain.reports.model import bibtex

        write_output(bib, bibtex(rep))
        print(f"wrote {bib} ({len(rep.sources)} sources)", file=sys.stderr)
    write_output(output, text)
    if not is_stdout(output):
        print(f"wrote {output} ({fmt}, {rep.n_runs} runs)", file=sys.stderr)


# --- api: import, export, status ---
import_app = typer.Typer(help="Import measurements made by other tools.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("codecarbon")
def import_codecarbon_cmd(
    csv_file: Annotated[str, typer.Argument(help="codecarbon's emissions.csv")],
    project: Annotated[str | None, typer.Option(help="Project for the runs.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import codecarbon runs from its emissions.csv.

    Idempotent on their run_id; bad rows reported by line."""
    from pathlib import Path

    from ecotrain.importers import NotCodecarbonCSV, import_codecarbon

    try:
        result = import_codecarbon(_open_store(db), Path(csv_file), project)
    except NotCodecarbonCSV as e:
        fail(str(e))
    for line, why in result.errors:
        print(f"ecotrain: {csv_file}:{line}: skipped: {why}", file=sys.stderr)
    summary = {
        "imported": len(result.imported),
        "already_imported": len(result.already),
        "errors": [{"line": line, "error": why} for line, why in result.errors],
        "run_ids": result.imported,
    }
    if as_json:
        from ecotrain.output import print_json

        print_json(summary)
    else:
        print(
            f"{len(result.imported)} run(s) imported, {len(result.already)} already there, "
            f"{len(result.errors)} row(s) skipped"
        )
    if not result.imported and not result.already and result.errors:
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv | parquet | json | jsonl (default: from -o, or csv)"),
    ] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    since: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    with_samples: Annotated[bool, typer.Option(help="Also the power timelines.")] = False,
    with_checkpoints: Annotated[bool, typer.Option(help="Also checkpoint links.")] = False,
    db: DbOpt = None,
) -> None:
    """Export runs as CSV, Parquet, JSON or JSON lines.

    Optionally with samples and checkpoints."""
    from ecotrain.export import export, resolve_format
    from ecotrain.store.queries import RunFilter

    flt = RunFilter(
        project=project, since=parse_when(since), user=user, status=status, tags=parse_tags(tag)
    )
    kind = resolve_format(fmt, output)
    store = _open_store(db, readonly=False)
    written = export(store.engine, flt, kind, output, with_samples, with_checkpoints)
    for name, (where, n) in written.items():
        print(f"{name}: {n} row(s) written to {where}", file=sys.stderr)


@app.command("status")
def status_cmd(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show runs in progress, with a forecast.

    From their heartbeats: energy so far, power, progress, forecast."""
    from ecotrain.output import print_status
    from ecotrain.store.queries import RunFilter, list_runs

    store = _open_store(db)
    flt = RunFilter(project=project, user=user, tags=parse_tags(tag), status="running")
    rows = list_runs(store.engine, flt, limit=1000)
    print_status(rows, as_json=as_json)


# --- dashboard ---


@app.command()
def dashboard(
    db: DbOpt = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    host: Annotated[
        str, typer.Option(help="Address to bind (default: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Open the lab dashboard (Streamlit), read-only."""
    from ecotrain.extras import require

    require("dashboard", "ecotrain dashboard")
    import os
    from importlib.resources import as_file, files

    from ecotrain.bind import check_bind
    from ecotrain.dashboard import DB_ENV
    from ecotrain.store.engine import mask_url, resolve_url

    check_bind(host, port)  # a bad address is one line here, not a traceback from Streamlit
    settings = _settings(**{"database.url": db})
    url = resolve_url(settings["database.url"])
    if settings.origins["database.url"] == "default" and not _has_runs(url):
        # First start, nothing recorded yet: show the bundled example rather than nothing.
        example = files("ecotrain.sample_runs") / "example.db"
        if example.is_file():
            url = resolve_url(str(example))
            print(
                "ecotrain: your store has no runs yet; showing the bundled example "
                "(sample_runs/example.db). Record one with `ecotrain run -- python train.py`.",
                file=sys.stderr,
            )
    _check_readable(url)  # a corrupt or unreachable store: one line here, not a broken page
    with as_file(files("ecotrain.dashboard") / "app.py") as app_path:
        if not app_path.is_file():
            fail(f"the dashboard app is missing from this install ({app_path})", code=1)
        argv = [
            sys.executable, "-m", "streamlit", "run", str(app_path),
            "--server.port", str(port),
            "--server.address", host,
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal",  # no "Deploy" button on a lab tool
        ]  # fmt: skip
        print(f"ecotrain dashboard on http://{host}:{port}/ · {mask_url(url)}", file=sys.stderr)
        from ecotrain.dashboard.serve import serve

        code = serve(argv, {**os.environ, DB_ENV: url})
    raise typer.Exit(code)


def _check_readable(url: str) -> None:
    """Open the store read-only once; its errors go to main()'s one-line handler."""
    from ecotrain.store.aggregates import NoDatabase, has_runs_table, readonly_engine

    try:
        engine = readonly_engine(url)
    except NoDatabase:
        return  # the dashboard says there is nothing yet
    try:
        has_runs_table(engine)
    finally:
        engine.dispose()


def _has_runs(url: str) -> bool:
    from ecotrain.store.aggregates import has_runs_table, readonly_engine

    try:
        engine = readonly_engine(url)
        if not has_runs_table(engine):
            return False
        from ecotrain.store.queries import count_runs

        return count_runs(engine) > 0
    except Exception:  # noqa: BLE001 - a missing or unreadable store counts as empty
        return False


def main() -> None:
    """Console entry point: expected failures (user mistakes, an unreachable or corrupt
    database, an unwritable file) become one line and an exit code (see ecotrain.errors)."""
    from ecotrain.cli_style import click_command
    from ecotrain.errors import cli_failure, guard_stdout

    guard_stdout()
    try:
        click_command(app)(standalone_mode=True, prog_name="ecotrain")
    except Exception as e:
        failure = cli_failure(e)
        if failure is None:
            raise
        message, code = failure
        print(f"ecotrain: error: {message}", file=sys.stderr)
        sys.exit(code)


# Commands defined in their own modules register themselves on `app` when imported.
from ecotrain import (  # noqa: E402
    cli_footprint,  # noqa: F401  (estimate, checkpoint register)
    cli_grid,  # noqa: F401  (grid import/show, advise)
    cli_integrations,  # noqa: F401  (exporter)
    cli_summary,  # noqa: F401  (summary, compare)
)
