"""The hostile-input battery of issue 16, store and CLI half: every case by the real entry
point (`ecotrain ...` as a subprocess), asserting exit codes, the one-line error, and what the
database and the file system hold afterwards.

The run-path half (redaction, signals at start, closed stderr, FIFOs, disk full, SIGKILL) is
in tests/test_hostile_run.py. The cases that already held when the issue was filed (exit
codes, signals, pipes, stores that are read-only, missing, locked or full, PostgreSQL refused,
hostile names in reports, a 2 GB sparse checkpoint, 32 concurrent runs) are at the end, so
none of them can regress.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, wait_synced
from store_helpers import make_record

from ecotrain.store import spool
from ecotrain.store.db import Store

PY = sys.executable
CODECARBON = ROOT / "tests" / "data" / "codecarbon_emissions.csv"


def one_line_error(result, code: int, *needles: str) -> None:
    """The command failed with ``code`` and exactly one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ecotrain: error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def add_runs(db: Path | str, *run_ids: str, **fields) -> None:
    """Finished runs written through the store API (as the run path writes them)."""
    store = Store(str(db))
    for run_id in run_ids:
        record = make_record(run_id, beat=2, status="finished")
        record["run"].update(fields)
        store.write_record(record)
    store.engine.dispose()


def spool_dir(isolated: Path) -> Path:
    return isolated / "home" / "data" / "spool"


# --- item 5: one line instead of a traceback ------------------------------------------------

READ_COMMANDS = [
    ["runs"],
    ["runs", "--json"],
    ["show", "abc"],
    ["status"],
    ["checkpoints"],
    ["savings"],
    ["report"],
    ["lineage", "abc"],
    ["export", "-o", "out.csv"],
    ["db", "info"],
    ["db", "upgrade"],
    ["dashboard", "--port", "8599"],
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=lambda a: " ".join(a))
def test_corrupt_sqlite_file_is_one_line_on_every_read_command(isolated: Path, args) -> None:
    bad = isolated / "corrupt.db"
    bad.write_bytes(b"this is not an SQLite file, just text " * 200)
    result = run_cli(*args, "--db", str(bad))
    one_line_error(result, 1, "not a readable SQLite store", "file is not a database")
    assert not Path("out.csv").exists()
    assert bad.read_bytes().startswith(b"this is not an SQLite file")  # left as it was


def test_non_utf8_config_is_one_line_and_never_stops_a_run(isolated: Path, db_path) -> None:
    config = isolated / "home" / "config.toml"
    config.write_bytes(b'project = "caf\xe9"\n')
    one_line_error(run_cli("runs"), 2, "not UTF-8", str(config))
    result = run_cli("run", "--", PY, "-c", "import sys; print('trained'); sys.exit(3)")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "trained\n"
    assert "ecotrain: warning:" in result.stderr and "not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr
    (row,) = wait_synced(db_path)
    assert (row["status"], row["exit_code"], row["project"]) == ("failed", 3, "default")
    assert any("not UTF-8" in n for n in json.loads(row["notes"]))


def test_invalid_config_value_falls_back_to_defaults_under_run(isolated: Path, db_path) -> None:
    (isolated / "home" / "config.toml").write_text('region = "ATLANTIS"\npue = 1.2\n')
    result = run_cli("run", "--", PY, "-c", "pass")
    assert result.returncode == 0, result.stderr
    assert "unknown region 'ATLANTIS'" in result.stderr
    assert "this run uses the defaults, the environment and the command line" in result.stderr
    (row,) = wait_synced(db_path)
    assert row["status"] == "finished" and row["pue"] == 1.56  # the stated default, not 1.2
    # The same mistake typed on the command line is the user's to fix: exit 2, nothing run.
    typed = run_cli("run", "--region", "ATLANTIS", "--", PY, "-c", "open('ran','w')")
    assert typed.returncode == 2 and not Path("ran").exists()
    # And a read command reports it as the one line it is.
    one_line_error(run_cli("estimate", "--gpu", "A100", "--hours", "1"), 2, "ATLANTIS")


def _readonly_target() -> Path:
    """A path no process may create, even root (sysfs refuses new files)."""
    return Path("/sys/ecotrain-hostile-test-out")  # no suffix: every writer accepts it


def _unwritable(tmp: Path) -> Path:
    if os.geteuid() == 0:
        return _readonly_target()
    folder = tmp / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder / "out"


@pytest.mark.parametrize("command", ["report", "export"])
def test_output_to_a_path_that_cannot_be_written(isolated: Path, db_path, command: str) -> None:
    add_runs(db_path, "a" * 32)
    ext = "md" if command == "report" else "csv"  # export wants a suffix it knows
    missing = isolated / "no" / "such" / "dir" / f"out.{ext}"
    one_line_error(run_cli(command, "-o", str(missing)), 2, "does not exist")
    assert not (isolated / "no").exists()  # never created behind the user's back
    at_root = Path(f"/ecotrain-hostile-no-such-dir/out.{ext}")
    one_line_error(run_cli(command, "-o", str(at_root)), 2, "does not exist")
    assert not at_root.parent.exists()
    one_line_error(run_cli(command, "-o", str(isolated)), 2, "is a directory")
    ro = _unwritable(isolated)
    one_line_error(run_cli(command, "-o", str(ro)), 2, str(ro))
    assert not ro.exists()
    one_line_error(run_cli(command, "-o", "/dev/full"), 1, "No space left on device")
    # Disk full on standard output too.
    with open("/dev/full", "w") as full:
        import subprocess

        from conftest import ECOTRAIN

        proc = subprocess.run(
            [ECOTRAIN, command], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60
        )
    one_line_error(proc, 1, "No space left on device")
    # Nothing half-written is left beside the output, and a good path still works.
    good = isolated / f"ok.{ext}"
    assert run_cli(command, "-o", str(good)).returncode == 0
    assert good.stat().st_size > 0
    assert not [p for p in isolated.iterdir() if p.name.startswith(f".ok.{ext}")]


def test_closed_stdout_on_a_read_command(db_path) -> None:
    import subprocess

    from conftest import ECOTRAIN

    add_runs(db_path, "a" * 32)
    proc = subprocess.run(
        [ECOTRAIN, "runs"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.returncode == 0
    closed = subprocess.run(
        f"{ECOTRAIN} runs >&-", shell=True, capture_output=True, text=True, timeout=60
    )
    one_line_error(closed, 1, "standard output is closed")
    # A command that writes only to a file still works with stdout closed.
    out = Path("x.csv")
    ok = subprocess.run(
        f"{ECOTRAIN} export -o {out} >&-", shell=True, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert out.read_text().count("\n") == 2


def test_broken_pipe_is_quiet(db_path) -> None:
    import subprocess

    from conftest import ECOTRAIN

    add_runs(db_path, *[f"{i:032x}" for i in range(300)])
    proc = subprocess.run(
        f"{ECOTRAIN} export | head -c 10; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "run_id,pro"
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_lineage_of_nothing(db_path) -> None:
    add_runs(db_path, "a" * 32)
    one_line_error(run_cli("lineage", ""), 2, "give a run id")
    one_line_error(run_cli("lineage", "   "), 2, "give a run id")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--port", "-1"], "bad --port -1"),
        (["--port", "0"], "bad --port 0"),
        (["--port", "65536"], "bad --port 65536"),
        (["--host", "999.1.1.1"], "not an IP address"),
        (["--host", "1.2.3"], "not an IP address"),
        (["--host", "::1::2"], "not an IP address"),
        (["--host", "no-such-host.invalid"], "cannot resolve"),
        (["--host", ""], "empty --host"),
    ],
)
def test_dashboard_bad_address_is_one_line(isolated: Path, args, needle: str) -> None:
    one_line_error(run_cli("dashboard", *args, timeout=30), 2, needle)


# --- item 11: LIKE wildcards are text -------------------------------------------------------


def test_show_percent_and_underscore_are_not_wildcards(db_path) -> None:
    add_runs(db_path, "a" * 32)
    for pattern in ("%", "_", "a%", "a_", "_" * 32):
        one_line_error(run_cli("show", pattern), 2, f"no run {pattern!r}")
    assert run_cli("show", "aaaa").returncode == 0
    report = run_cli("report", "--run", "%")
    one_line_error(report, 2, "no runs match")
    one_line_error(run_cli("lineage", "%"), 2, "no run or checkpoint matches")


# --- item 8 (importer): numbers that are not numbers ----------------------------------------


def _codecarbon_csv(path: Path, changes: list[dict[str, str]]) -> list[dict]:
    """A codecarbon CSV: the real file's first row, once per entry of ``changes``."""
    with CODECARBON.open(newline="") as f:
        reader = csv.DictReader(f)
        header, template = reader.fieldnames, next(reader)
    rows = []
    for i, change in enumerate(changes):
        rows.append({**template, "run_id": f"00000000-0000-0000-0000-{i:012d}", **change})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_import_skips_non_finite_and_out_of_range_rows_by_line(isolated: Path, db_path) -> None:
    changes = [
        {},  # line 2: good
        {"duration": "inf"},  # 3
        {"duration": "1e300"},  # 4
        {"timestamp": "0001-01-01T00:00:00"},  # 5: year 1
        {"emissions": "inf"},  # 6
        {"emissions": "nan"},  # 7
        {"energy_consumed": "1e300"},  # 8
        {"cpu_count": "inf"},  # 9
        {"gpu_count": "1e300"},  # 10
        {"timestamp": "0001-01-01T00:00:01", "duration": "3600"},  # 11: before year 1
        {"pue": "-inf"},  # 12
        {},  # 13: good
    ]
    path = isolated / "hostile.csv"
    _codecarbon_csv(path, changes)
    result = run_cli("import", "codecarbon", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["imported"] == 2
    errors = {e["line"]: e["error"] for e in summary["errors"]}
    assert sorted(errors) == list(range(3, 13))
    assert errors[3] == "duration is not a finite number: 'inf'"
    assert errors[4].startswith("duration is out of range: '1e300'")
    assert errors[5] == "timestamp is out of range: '0001-01-01T00:00:00'"
    assert errors[6] == "emissions is not a finite number: 'inf'"
    assert errors[7] == "emissions is not a finite number: 'nan'"
    for line in range(3, 13):
        assert f"{path}:{line}: skipped: " in result.stderr
    rows = list(sqlite3.connect(db_path).execute("SELECT co2_kg, duration_s FROM runs"))
    assert len(rows) == 2 and all(math.isfinite(v) for row in rows for v in row)
    shown = run_cli("runs", "--project", "codecarbon")
    assert "inf" not in shown.stdout and "nan" not in shown.stdout.lower()
    report = run_cli("report", "--project", "codecarbon")
    assert report.returncode == 0 and "inf" not in report.stdout


def test_import_of_only_bad_rows_exits_1(isolated: Path, db_path) -> None:
    path = isolated / "bad.csv"
    _codecarbon_csv(path, [{"duration": "inf"}, {"emissions": "-1"}])
    result = run_cli("import", "codecarbon", str(path))
    assert result.returncode == 1
    assert "0 run(s) imported, 0 already there, 2 row(s) skipped" in result.stdout


# --- item 12: sizes past 2**31; records a database refuses for good --------------------------

BIG = 4 * 2**30 + 2**20  # past 2**31 and 2**32


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def _size_bytes(url: str) -> list[int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT size_bytes FROM checkpoints"))]
    finally:
        engine.dispose()


def test_checkpoint_over_4gib_on_sqlite_and_postgresql(isolated: Path, db_path, pg_url) -> None:
    big = _sparse(isolated / "model.bin", BIG)
    for db in (str(db_path), pg_url):  # the second hash comes from the hash cache
        result = run_cli("checkpoint", "register", str(big), "--energy-kwh", "12", "--db", db)
        assert result.returncode == 0, result.stderr
    assert _size_bytes(f"sqlite:///{db_path}") == [BIG]
    assert _size_bytes(pg_url) == [BIG]


def test_postgresql_v2_integer_column_migrates_to_bigint(pg_url: str) -> None:
    from sqlalchemy import create_engine, text

    from ecotrain.store.migrations import upgrade
    from ecotrain.store.schema import SCHEMA_VERSION

    assert Store(pg_url).engine.dispose() is None  # creates the current schema
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # take it back to version 2, as an older ecotrain left it
        conn.execute(text("ALTER TABLE checkpoints ALTER COLUMN size_bytes TYPE INTEGER"))
        conn.execute(text("UPDATE ecotrain_meta SET value = '2' WHERE key = 'schema_version'"))
    result = run_cli("db", "upgrade", "--db", pg_url)
    assert result.returncode == 0, result.stderr
    assert f"schema 2 -> {SCHEMA_VERSION}" in result.stdout
    with engine.connect() as conn:
        kind = conn.execute(
            text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'checkpoints' AND column_name = 'size_bytes'"
            )
        ).scalar()
    assert kind == "bigint"
    assert upgrade(engine) == (SCHEMA_VERSION, SCHEMA_VERSION)  # idempotent
    engine.dispose()


def _refused_record(run_id: str) -> dict:
    """A record no database can store: an exit code past 64 bits."""
    record = make_record(run_id, beat=2, status="failed")
    record["run"]["exit_code"] = 2**70
    return record


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_record_refused_for_good_is_quarantined_listed_and_kept(
    isolated: Path, db_path, backend: str, request
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else str(db_path)
    bad, good = "b" * 32, "c" * 32
    spool.spool(_refused_record(bad), target=url)
    spool.spool(make_record(good, beat=1, status="finished"), target=url)
    first = run_cli("sync", "--db", url)
    assert first.returncode == 1, first.stderr
    assert "1 record(s) written" in first.stdout  # the good one is not held back
    assert "quarantined" in first.stderr and "Traceback" not in first.stderr
    held = spool_dir(isolated) / "quarantine" / f"{bad}.json"
    assert held.exists() and not (spool_dir(isolated) / f"{bad}.json").exists()
    assert json.loads(held.read_text())["run"]["exit_code"] == 2**70  # never dropped
    status = run_cli("sync", "--status")
    assert status.returncode == 1
    assert "1 record(s) quarantined" in status.stdout and bad[:12] in status.stdout
    # Not retried by later syncs (each run's detached sync used to retry it forever) ...
    again = run_cli("sync", "--db", url)
    assert again.returncode == 1 and "0 record(s) written" in again.stdout
    assert "set aside" not in again.stderr  # nothing was attempted
    # ... until asked; still refused, it goes back to quarantine, still kept.
    retry = run_cli("sync", "--db", url, "--retry-quarantined")
    assert retry.returncode == 1 and "1 quarantined record(s) back in the spool" in retry.stderr
    assert held.exists()
    stored = Store(url, readonly=True)
    from sqlalchemy import select

    from ecotrain.store.schema import runs

    with stored.engine.connect() as conn:
        ids = set(conn.execute(select(runs.c.run_id)).scalars())
    stored.engine.dispose()
    assert ids == {good}


def test_an_unreadable_spool_file_is_quarantined_not_retried(isolated: Path, db_path) -> None:
    folder = spool_dir(isolated)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ("d" * 32 + ".json")).write_text('{"run": {"run_id": "dd', encoding="utf-8")
    result = run_cli("sync")
    assert result.returncode == 1 and "not a readable run record" in result.stderr
    assert (folder / "quarantine" / ("d" * 32 + ".json")).exists()
    assert not list(folder.glob("*.json"))


def test_quarantine_helpers_classify_errors() -> None:
    from sqlalchemy import exc

    from ecotrain.store import quarantine

    assert quarantine.is_permanent(exc.DataError("INSERT", {}, Exception("out of range")))
    assert quarantine.is_permanent(exc.IntegrityError("INSERT", {}, Exception("dup")))
    assert quarantine.is_permanent(OverflowError("int too large"))
    assert not quarantine.is_permanent(exc.OperationalError("x", {}, Exception("refused")))
    assert not quarantine.is_permanent(exc.ProgrammingError("x", {}, Exception("denied")))


# --- item 13 and issue 15: streaming export --------------------------------------------------


def test_export_to_stdout_and_format_from_suffix(isolated: Path, db_path) -> None:
    add_runs(db_path, "a" * 32, "b" * 32)
    out = run_cli("export")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["run_id"] for r in rows] == ["a" * 32, "b" * 32]
    assert json.loads(rows[0]["tags"]) == {"lr": "3e-4", "beat": "2"}
    as_json = run_cli("export", "--format", "json")
    assert [r["run_id"] for r in json.loads(as_json.stdout)["runs"]] == ["a" * 32, "b" * 32]
    # -o runs.jsonl is JSON lines, inferred from the suffix.
    assert run_cli("export", "-o", "runs.jsonl").returncode == 0
    lines = Path("runs.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["a" * 32, "b" * 32]
    assert run_cli("export", "-o", "runs.json").returncode == 0
    assert len(json.loads(Path("runs.json").read_text())["runs"]) == 2
    # A suffix that contradicts --format is refused, and nothing is written.
    one_line_error(run_cli("export", "-o", "x.json", "--format", "csv"), 2, "looks like json")
    assert not Path("x.json").exists()
    # An unknown suffix is not silently CSV: refused unless --format says what to write.
    one_line_error(run_cli("export", "-o", "runs.txt"), 2, "no format is known for '.txt'")
    assert not Path("runs.txt").exists()
    assert run_cli("export", "-o", "runs.txt", "--format", "csv").returncode == 0
    assert Path("runs.txt").read_text().startswith("run_id,")
    assert run_cli("export", "-o", "runs").returncode == 0  # no suffix at all: CSV
    one_line_error(run_cli("export", "--with-samples"), 2, "one table a file")
    one_line_error(run_cli("export", "--format", "parquet"), 2, "-o FILE.parquet")


def test_export_streams_in_chunks_and_row_groups(isolated: Path, db_path, monkeypatch) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from ecotrain import export as export_mod
    from ecotrain.store.queries import RunFilter

    ids = [f"{i:032x}" for i in range(25)]
    add_runs(db_path, *ids)
    monkeypatch.setattr(export_mod, "CHUNK", 4)
    monkeypatch.setattr(export_mod, "ROW_GROUP", 10)
    store = Store(str(db_path))
    written = export_mod.export(
        store.engine, RunFilter(), "parquet", str(isolated / "r.parquet"), with_samples=True
    )
    assert written["runs"][1] == 25 and written["samples"][1] == 25 * 3
    meta = pq.ParquetFile(isolated / "r.parquet").metadata
    assert (meta.num_row_groups, meta.num_rows) == (3, 25)  # 10 + 10 + 5: written as it came
    table = pq.read_table(isolated / "r.parquet")
    assert table.column("run_id").to_pylist() == ids
    assert table.schema.field("co2_kg").type == "double"
    export_mod.export(store.engine, RunFilter(), "csv", str(isolated / "r.csv"))
    assert [r["run_id"] for r in csv.DictReader((isolated / "r.csv").open())] == ids


def test_export_json_is_strict_json_with_non_finite_numbers(isolated: Path, db_path) -> None:
    add_runs(db_path, "a" * 32, co2_kg=float("inf"), cost_usd=float("nan"))
    result = run_cli("export", "--format", "json")

    def strict(token: str):
        raise ValueError(f"non-standard JSON constant {token}")

    (run,) = json.loads(result.stdout, parse_constant=strict)["runs"]
    assert run["co2_kg"] is None and run["cost_usd"] is None


def test_export_streams_from_postgresql(pg_url: str, isolated: Path) -> None:
    ids = [f"{i:032x}" for i in range(7)]
    add_runs(pg_url, *ids)
    result = run_cli("export", "--db", pg_url, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["run_id"] for r in rows] == ids
    assert rows[0]["command"] == ["python", "train.py", "--lr", "3e-4"]
    assert rows[0]["started_at"] == "2024-05-01T12:00:00"
    out = isolated / "pg.csv"
    assert run_cli("export", "--db", pg_url, "-o", str(out), "--with-samples").returncode == 0
    assert len((isolated / "pg.samples.csv").read_text().splitlines()) == 1 + 7 * 3


# --- item 14: the benchmark generator on PostgreSQL ------------------------------------------


def test_gen_dashboard_db_accepts_a_postgresql_url(pg_url: str, isolated: Path) -> None:
    import subprocess

    gen = [PY, str(ROOT / "bench" / "gen_dashboard_db.py"), pg_url, "--runs", "300"]
    first = subprocess.run([*gen, "--checkpoints", "30"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert not list(Path(".").glob("postgresql*"))  # no SQLite file named after the URL
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.connect() as conn:
        n_runs = conn.execute(text("SELECT count(*) FROM runs")).scalar()
        biggest = conn.execute(text("SELECT max(size_bytes) FROM checkpoints")).scalar()
    assert n_runs == 300 and biggest > 2**31
    again = subprocess.run(gen, capture_output=True, text=True)  # would wipe: refused
    assert again.returncode != 0 and "--replace" in again.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 300
    engine.dispose()


# --- the cases that held when the issue was filed: kept so none can regress ------------------


def _rows(db: Path, sql: str = "SELECT run_id, status, exit_code FROM runs") -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def _synced(db: Path) -> list[tuple]:
    """Push anything still spooled, then (status, exit_code) of every run."""
    result = run_cli("sync", "--quiet")
    assert result.returncode == 0, result.stderr
    return [(status, code) for _, status, code in _rows(db)]


@pytest.mark.parametrize(
    "script,code,status",
    [
        ("exit 0", 0, "finished"),
        ("exit 1", 1, "failed"),
        ("exit 3", 3, "failed"),
        ("kill -KILL $$", 137, "killed"),
        ("kill -TERM $$", 143, "killed"),
    ],
)
def test_held_exit_codes(db_path: Path, script: str, code: int, status: str) -> None:
    result = run_cli("run", "--", "sh", "-c", script)
    assert result.returncode == code, result.stderr
    assert _synced(db_path) == [(status, code)]


def test_held_exit_126_and_127(isolated: Path, db_path: Path) -> None:
    script = isolated / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    assert run_cli("run", "--", str(script)).returncode == 126
    missing = run_cli("run", "--", "no-such-command-ecotrain")
    assert missing.returncode == 127 and "command not found" in missing.stderr
    assert sorted(code for _, code in _synced(db_path)) == [126, 127]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_held_signal_mid_run_reaches_the_child(isolated: Path, db_path: Path, sig: str) -> None:
    import signal
    import subprocess
    import time

    from conftest import ECOTRAIN

    number = getattr(signal, sig)
    ready, got = isolated / "ready", isolated / "got"
    child = (
        "import signal, sys, time, pathlib\n"
        f"def h(s, f):\n    pathlib.Path({str(got)!r}).write_text(str(s)); sys.exit(40)\n"
        f"signal.signal({int(number)}, h)\n"
        f"pathlib.Path({str(ready)!r}).write_text('x')\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [ECOTRAIN, "run", "-q", PY, "-c", child],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # mid-run: sampler and writer are up
    proc.send_signal(number)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 40, err
    assert got.read_text() == str(int(number))
    assert _synced(db_path) == [("failed", 40)]


def test_held_daemon_grandchild_does_not_hold_the_wrapper(isolated: Path, db_path) -> None:
    import subprocess
    import time

    from conftest import ECOTRAIN

    pid_file = isolated / "grandchild.pid"
    t0 = time.monotonic()
    proc = subprocess.run(
        [ECOTRAIN, "run", "-q", "--", "sh", "-c", f"sleep 60 & echo $! > {pid_file}; exit 4"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
    )
    elapsed = time.monotonic() - t0
    try:
        assert proc.returncode == 4 and elapsed < 20
    finally:
        os.kill(int(pid_file.read_text()), 9)
    assert _synced(db_path) == [("failed", 4)]


def test_held_piped_stdin(isolated: Path, db_path) -> None:
    # (A closed stdout under `run` is tests/test_hostile_run.py's: issue 16 item 6.)
    import subprocess

    from conftest import ECOTRAIN

    piped = subprocess.run(
        f"printf 'abc' | {ECOTRAIN} run -q -- {PY} -c 'import sys; print(sys.stdin.read()[::-1])'",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (piped.returncode, piped.stdout) == (0, "cba\n")


def test_held_50mb_of_stdout_byte_identical(db_path) -> None:
    import hashlib
    import random
    import subprocess

    from conftest import ECOTRAIN

    size = 50 * 2**20
    child = (
        "import random, sys\nrng = random.Random(16)\n"
        f"for _ in range({size // 2**20}): sys.stdout.buffer.write(rng.randbytes(2**20))\n"
    )
    proc = subprocess.run(
        [ECOTRAIN, "run", "-q", PY, "-c", child], capture_output=True, timeout=120
    )
    rng = random.Random(16)
    expected = hashlib.sha256(b"".join(rng.randbytes(2**20) for _ in range(size // 2**20)))
    assert proc.returncode == 0 and len(proc.stdout) == size
    assert hashlib.sha256(proc.stdout).hexdigest() == expected.hexdigest()


def _run_spooled(isolated: Path, env: dict, code: int = 6) -> None:
    """A run whose store cannot take its record: the child's code, the record in the spool."""
    result = run_cli("run", "-q", "--", "sh", "-c", f"exit {code}", env=env)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    spooled = [json.loads(p.read_text()) for p in spool_dir(isolated).glob("*.json")]
    assert [r["run"]["exit_code"] for r in spooled] == [code]


def test_held_store_that_cannot_be_created_spools(isolated: Path) -> None:
    target = "/sys/ecotrain-hostile.db" if os.geteuid() == 0 else "/proc/nope/e.db"
    _run_spooled(isolated, {"ECOTRAIN_DB": target})


def test_held_missing_store_folder_is_created_for_the_store(isolated: Path) -> None:
    db = isolated / "new" / "folder" / "e.db"
    result = run_cli("run", "-q", "--", "true", env={"ECOTRAIN_DB": str(db)})
    assert result.returncode == 0
    assert run_cli("sync", "-q", "--db", str(db)).returncode == 0
    assert [(s, c) for _, s, c in _rows(db)] == [("finished", 0)]


def test_held_locked_store_does_not_hold_the_run(isolated: Path, db_path) -> None:
    import time

    Store(str(db_path)).engine.dispose()
    lock = sqlite3.connect(db_path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        result = run_cli("run", "-q", "--", "sh", "-c", "exit 7")
        assert result.returncode == 7 and time.monotonic() - t0 < 20, result.stderr
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    import subprocess

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _rows(db_path):
        subprocess.run([PY, "-m", "ecotrain", "sync", "-q"], capture_output=True, timeout=60)
        time.sleep(0.5)
    assert [(s, c) for _, s, c in _rows(db_path)] == [("failed", 7)]


@pytest.fixture
def full_store(isolated: Path):
    """A SQLite store on a tiny file system that is full (root: a tmpfs mount)."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = isolated / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        db = mount / "e.db"
        Store(str(db)).engine.dispose()
        filler = mount / "filler"
        with filler.open("wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        yield db, filler
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_held_full_store_spools_and_syncs_later(isolated: Path, full_store) -> None:
    db, filler = full_store
    result = run_cli("run", "-q", "--", "sh", "-c", "exit 9", env={"ECOTRAIN_DB": str(db)})
    assert result.returncode == 9 and "Traceback" not in result.stderr
    import time

    time.sleep(1.0)
    filler.unlink()  # space again: the record goes in
    assert run_cli("sync", "-q", "--db", str(db)).returncode == 0
    assert [(s, c) for _, s, c in _rows(db)] == [("failed", 9)]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ecotrain@127.0.0.1:1/ecotrain",  # refused
        "postgresql://ecotrain@no-such-host.invalid/ecotrain",  # unresolvable
        "postgresql://postgres@127.0.0.1:5432/no_such_database_here",  # wrong database
    ],
    ids=["refused", "unresolvable", "wrong-database"],
)
def test_held_postgresql_unavailable_spools_and_reads_are_one_line(
    isolated: Path, url: str
) -> None:
    _run_spooled(isolated, {"ECOTRAIN_DB": url})
    one_line_error(run_cli("runs", "--db", url), 1, "database unavailable")
    status = run_cli("sync", "--status")
    assert status.returncode == 0 and "1 record(s) pending" in status.stdout


HOSTILE = '<script>alert(1)</script> & $x_%{}\\ "q" \u202eevil'


def test_held_hostile_names_in_every_report_format(db_path: Path) -> None:
    result = run_cli("run", "-q", "--project", HOSTILE, "--tag", "k=<b>&\"'", "--", "true")
    assert result.returncode == 0, result.stderr
    assert run_cli("sync", "-q").returncode == 0
    out = {}
    for fmt in ("md", "latex", "html", "json", "model-card"):
        rendered = run_cli("report", "--project", HOSTILE, "--format", fmt)
        assert rendered.returncode == 0, (fmt, rendered.stderr)
        assert "Traceback" not in rendered.stderr
        out[fmt] = rendered.stdout
    assert "<script>alert" not in out["html"] and "&lt;script&gt;alert(1)" in out["html"]
    # escaped (the LaTeX renderer may add break points: \allowbreak{})
    assert "\\& \\$x\\_\\%\\{\\}" in out["latex"].replace("\\allowbreak{}", "")
    assert json.loads(out["json"])["selection"]["project"] == HOSTILE


def test_held_2gb_sparse_checkpoint(isolated: Path, db_path: Path) -> None:
    import time

    big = _sparse(isolated / "model.safetensors", 2 * 2**30)
    t0 = time.monotonic()
    result = run_cli("run", "-q", "--produces", str(big), "--", "true")
    assert result.returncode == 0 and time.monotonic() - t0 < 15, result.stderr
    assert run_cli("sync", "-q", timeout=300).returncode == 0  # hashes it
    sizes = _rows(db_path, "SELECT checkpoint_id, size_bytes FROM checkpoints")
    assert [s for _, s in sizes] == [2 * 2**30]
    assert sizes[0][0].startswith("sha256:")


def test_held_32_concurrent_runs(isolated: Path, db_path: Path) -> None:
    import subprocess

    from conftest import ECOTRAIN
    from store_helpers import wait_for_tagged_runs

    procs = [
        subprocess.Popen(
            [
                ECOTRAIN,
                "run",
                "-q",
                "--tag",
                f"i={i}",
                "--",
                "sh",
                "-c",
                f"sleep 0.5; exit {i % 4}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(32)
    ]
    assert [p.wait(timeout=180) for p in procs] == [i % 4 for i in range(32)]
    rows = wait_for_tagged_runs(db_path, spool_dir(isolated), 32, timeout_s=120)
    assert sorted((int(i), code) for i, _, code in rows) == [(i, i % 4) for i in range(32)]
