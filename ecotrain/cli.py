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

app = typer.Typer(
    name="ecotrain",
    help="Measure what training costs (energy, CO2e, dollars) and what reuse saves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and status.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
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


def parse_tags(tags: list[str] | None) -> dict[str, str]:
    """`--tag k=v` options to a dict; a malformed tag is a user error."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise UserError(f"bad --tag {tag!r}: use key=value")
        out[key.strip()] = value.strip()
    return out


def parse_when(value: str | None) -> datetime | None:
    """A date option: ISO date/time, or relative like 7d, 12h."""
    if value is None:
        return None
    from ecotrain.store.records import utcnow

    text = value.strip().lower()
    units = {"d": 86400, "h": 3600, "w": 7 * 86400, "m": 60}
    if text[:-1].replace(".", "", 1).isdigit() and text[-1] in units:
        from datetime import timedelta

        return utcnow() - timedelta(seconds=float(text[:-1]) * units[text[-1]])
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"bad date {value!r}: use YYYY-MM-DD or a duration like 7d") from None


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
    }
)
def run(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="Project the run belongs to.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    region: Annotated[str | None, typer.Option(help="Grid region: FRA, USA/CA, CAN/QC…")] = None,
    pue: Annotated[float | None, typer.Option(help="Site PUE (default 1.56).")] = None,
    intensity: Annotated[
        float | None, typer.Option(help="Override grid intensity, g CO2e/kWh.")
    ] = None,
    job: Annotated[str | None, typer.Option(help="Group runs into a job.")] = None,
    uses: Annotated[list[str] | None, typer.Option(help="Checkpoint used (path or HF id).")] = None,
    produces: Annotated[list[str] | None, typer.Option(help="Checkpoint produced.")] = None,
    db: DbOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
    # budgets, prediction, live line (see ecotrain.budget, ecotrain.runwatch)
    budget_co2: Annotated[str | None, typer.Option(help="CO2e budget: 50kg, 500g.")] = None,
    budget_usd: Annotated[str | None, typer.Option(help="Dollar budget: 200.")] = None,
    budget_kwh: Annotated[str | None, typer.Option(help="Facility energy budget: 3kWh.")] = None,
    on_budget: Annotated[
        str | None, typer.Option(help="warn (default) | stop: SIGTERM the command.")
    ] = None,
    budget_grace: Annotated[
        str | None, typer.Option(help="SIGTERM to SIGKILL delay when stopping (10s).")
    ] = None,
    expected_duration: Annotated[
        str | None, typer.Option(help="Expected run time (2h) for the prediction.")
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Progress line on stderr (terminal only).")
    ] = False,
    live_every: Annotated[float, typer.Option(help="Seconds between live lines.")] = 10.0,
) -> None:
    """Run COMMAND and record its energy, CO2e and cost: ecotrain run [OPTIONS] -- COMMAND…"""
    argv = list(ctx.args)
    if not argv:
        fail("no command given: ecotrain run [OPTIONS] -- python train.py …")
    if argv[0].startswith("-") and "--" not in sys.argv[: sys.argv.index(argv[0])]:
        fail(f"no such option: {argv[0]} (options of ecotrain go before the command)")
    from ecotrain.accounting import site_from_settings
    from ecotrain.monitor import Monitor, RunOptions

    settings = _settings(
        project=project, region=region, pue=pue, intensity=intensity, **{"database.url": db}
    )
    site = site_from_settings(settings.flat())
    from ecotrain.budget import budget_from, parse_duration_s

    budget = budget_from(
        settings,
        {"co2": budget_co2, "usd": budget_usd, "kwh": budget_kwh},
        on_budget,
        budget_grace,
    )
    options = RunOptions(
        argv=argv,
        settings=settings,
        tags=parse_tags(tag),
        job=job,
        uses=uses or [],
        produces=produces or [],
        quiet=quiet,
        budget=budget or None,
        expected_duration_s=(
            parse_duration_s(expected_duration, "expected duration") if expected_duration else None
        ),
        live_every_s=max(0.5, live_every) if live else None,
    )
    raise typer.Exit(Monitor(options, site).run())


@app.command("runs")
def runs_cmd(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD or 7d, 12h.")] = None,
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
    print_runs(list_runs(store.engine, flt, limit=limit), as_json=as_json)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one run in full."""
    from ecotrain.output import print_run
    from ecotrain.store.queries import RunNotFound, get_run, run_samples

    store = _open_store(db)
    try:
        run_row = get_run(store.engine, run_id)
    except RunNotFound as e:
        fail(str(e))
    print_run(run_row, run_samples(store.engine, run_row["run_id"]), as_json=as_json)


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """What this machine can measure, and how; the region, PUE and price in force."""
    from ecotrain.doctor import diagnose
    from ecotrain.output import print_doctor

    print_doctor(diagnose(_settings()), as_json=as_json)


@app.command()
def sync(
    status: Annotated[bool, typer.Option("--status", help="Only show what is pending.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Push spooled run records to their database."""
    from ecotrain.store import spool

    if status:
        files = spool.pending()
        print(f"{len(files)} record(s) pending in {spool.spool_dir()}")
        for path in files:
            record = spool.load(path) or {}
            run = record.get("run", {})
            print(f"  {path.stem[:12]}  {run.get('status', '?'):<10} {run.get('project', '')}")
        return
    from ecotrain.store.db import sync_all

    results = sync_all()
    failed = False
    for url, (pushed, errors) in results.items():
        failed = failed or bool(errors)
        if not quiet:
            print(f"{url}: {pushed} record(s) written")
            for err in errors:
                print(f"  kept in spool: {err}", file=sys.stderr)
    if not results and not quiet:
        print("nothing to sync")
    if failed:
        raise typer.Exit(1)


@config_app.command("show")
def config_show(as_json: JsonOpt = False) -> None:
    """Print the effective settings and where each came from."""
    from ecotrain.output import print_settings

    print_settings(_settings(), as_json=as_json)


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Create or migrate the schema to this version."""
    from ecotrain.store.db import Store
    from ecotrain.store.migrations import upgrade

    store = Store(_settings(**{"database.url": db})["database.url"], migrate=False)
    before, after = upgrade(store.engine)
    print(f"{store.display_url}: schema {before if before is not None else 'none'} -> {after}")


@db_app.command("info")
def db_info(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The database in use (password masked), its schema version and counts."""
    from ecotrain.output import print_mapping
    from ecotrain.store.db import Store
    from ecotrain.store.queries import db_counts

    store = Store(_settings(**{"database.url": db})["database.url"], migrate=False)
    print_mapping({"url": store.display_url, **db_counts(store.engine)}, as_json=as_json)


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
    """Import codecarbon runs (idempotent on their run_id; bad rows reported by line)."""
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
    output: Annotated[str, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv | parquet | json")] = "csv",
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD or 7d, 12h.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    with_samples: Annotated[bool, typer.Option(help="Also the power timelines.")] = False,
    with_checkpoints: Annotated[bool, typer.Option(help="Also checkpoint links.")] = False,
    db: DbOpt = None,
) -> None:
    """Export runs (optionally samples and checkpoints) as CSV, Parquet or JSON."""
    from pathlib import Path

    from ecotrain.export import collect, write
    from ecotrain.store.queries import RunFilter

    flt = RunFilter(
        project=project, since=parse_when(since), user=user, status=status, tags=parse_tags(tag)
    )
    store = _open_store(db, readonly=False)
    tables = collect(store.engine, flt, with_samples, with_checkpoints)
    for path in write(tables, fmt.lower(), Path(output)):
        print(f"wrote {path}", file=sys.stderr)
    print(f"{len(tables['runs'])} run(s) exported", file=sys.stderr)


@app.command("status")
def status_cmd(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Runs in progress (from their heartbeats): energy so far, power, progress, forecast."""
    from ecotrain.output import print_status
    from ecotrain.store.queries import RunFilter, list_runs

    store = _open_store(db)
    rows = list_runs(store.engine, RunFilter(project=project, status="running"), limit=1000)
    print_status(rows, as_json=as_json)


def main() -> None:
    """Console entry point: user mistakes become one line and exit code 2."""
    from ecotrain.errors import UserError

    try:
        app(standalone_mode=True)
    except UserError as e:
        print(f"ecotrain: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except ValueError as e:
        # Library validation errors (unknown region, GPU, bad value) carry a user message.
        if type(e).__module__.startswith("ecotrain"):
            print(f"ecotrain: error: {e}", file=sys.stderr)
            sys.exit(2)
        raise
