"""Where the branches for issues 12-18 meet: each test here failed on the merged main."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_cli, wait_synced


def _series_around_now(path: Path, zone: str, g_per_kwh: float) -> Path:
    """A plain hourly series for ``zone`` covering the next few hours and the last few."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    lines = ["timestamp,zone,g_per_kwh"]
    for h in range(-3, 4):
        lines.append(f"{(now + timedelta(hours=h)).isoformat()},{zone},{g_per_kwh}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_short_run_gets_its_time_resolved_co2_like_a_long_one(
    isolated: Path, db_path: Path
) -> None:
    """Issue 16's stdlib writer (short runs) skipped issue 17's time-resolved CO2e that
    Store.write_record adds after a final record."""
    series = _series_around_now(isolated / "fr.csv", "FR", 50.0)
    imported = run_cli("grid", "import", str(series), "--region", "FRA")
    assert imported.returncode == 0, imported.stderr
    out = run_cli(
        "run", "--region", "FRA", "--", sys.executable, "-c", "import time; time.sleep(0.3)"
    )
    assert out.returncode == 0, out.stderr
    (row,) = wait_synced(db_path)
    assert row["region"] == "FRA"

    def series_row() -> tuple:
        with sqlite3.connect(db_path) as conn:
            return conn.execute(
                "select intensity_series_g_per_kwh, co2_series_kg, facility_energy_kwh from runs"
            ).fetchone()

    # the detached sync (if any) may still be accounting it
    import time

    deadline = time.monotonic() + 20
    while series_row()[0] is None and time.monotonic() < deadline:
        time.sleep(0.1)
    g, co2, facility = series_row()
    assert g == pytest.approx(50.0)
    assert co2 == pytest.approx(facility * 50.0 / 1000)


def test_quarantine_and_masked_spool_targets_with_a_password(isolated: Path, pg_url: str) -> None:
    """Issue 16's masked spool targets meet 16b's quarantine: a record for a PostgreSQL URL
    with a password is set aside, listed without the password, and once fixed goes back to
    the database the password is configured for."""
    import json

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from store_helpers import make_record

    from ecotrain.store import spool

    secret = "s3cr3t-pw"
    url = make_url(pg_url).set(password=secret).render_as_string(hide_password=False)
    bad = "b" * 32
    record = make_record(bad, beat=2, status="failed")
    record["run"]["exit_code"] = 2**70  # no database can store it
    spool.spool(record, target=url)
    folder = isolated / "home" / "data" / "spool"
    assert secret not in (folder / f"{bad}.json").read_text()
    env = {"ECOTRAIN_DB": url}  # the configured database holds the password
    first = run_cli("sync", env=env)
    assert first.returncode == 1 and "quarantined" in first.stderr, first.stderr
    held = folder / "quarantine" / f"{bad}.json"
    assert held.exists()
    status = run_cli("sync", "--status", env=env)
    assert status.returncode == 1 and bad[:12] in status.stdout
    for text_out in (first.stdout, first.stderr, status.stdout, status.stderr):
        assert secret not in text_out
    assert secret not in held.read_text()
    listed = run_cli("sync", "--status", "--json", env=env)
    assert listed.returncode == 1 and secret not in listed.stdout
    shown = json.loads(listed.stdout)
    assert [q["run_id"] for q in shown["quarantined"]] == [bad] and shown["pending"] == []
    assert secret not in (folder / "quarantine" / f"{bad}.json.why").read_text()
    # the cause fixed by hand; retried, it reaches the database the password opens
    fixed = json.loads(held.read_text())
    fixed["run"]["exit_code"] = 3
    held.write_text(json.dumps(fixed))
    retry = run_cli("sync", "--retry-quarantined", env=env)
    assert retry.returncode == 0, retry.stderr
    assert secret not in retry.stdout + retry.stderr
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        codes = conn.execute(text("select exit_code from runs")).scalars().all()
    engine.dispose()
    assert codes == [3]
    assert not held.exists() and not (folder / f"{bad}.json").exists()


def test_sync_status_json_lists_pending_records_with_masked_targets(isolated: Path) -> None:
    """`sync --status --json` printed the text table (every other command's --json is JSON)."""
    import json

    from store_helpers import make_record

    from ecotrain.store import spool

    empty = run_cli("sync", "--status", "--json")
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout)["pending"] == []
    spool.spool(make_record("a" * 32, beat=1), target="postgresql://u:pw9@127.0.0.1:1/lab")
    out = run_cli("sync", "--status", "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)["pending"]
    assert row["run_id"] == "a" * 32 and row["status"] == "running"
    assert "pw9" not in out.stdout and "127.0.0.1:1/lab" in row["database"]


@pytest.mark.parametrize("group", ["", "config", "db", "checkpoint", "import", "grid"])
def test_help_lists_every_command_in_one_line_each(group: str) -> None:
    """Eight branches added commands in their own styles ("What this machine...", "Totals
    (...)", "Runs side by side: ..."), cut to "..." in an 80-column terminal."""
    out = run_cli(*([group] if group else []), "--help", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("Commands:")[1].strip().splitlines()
    names = [ln.split()[0] for ln in lines]
    if not group:
        for expected in ["run", "runs", "show", "sync", "grid", "advise", "exporter", "summary"]:
            assert expected in names
        assert len(names) == len(set(names)) >= 20
    for ln in lines:
        name, text = ln.split(None, 1)
        assert not text.endswith("..."), ln  # cut short
        assert text.endswith("."), ln
        # one style: an imperative verb, as `runs` ("List recent runs.") has always had
        verbs = {"run", "list", "show", "push", "export", "write", "open", "estimate"}
        verbs |= {"advise", "serve", "sum", "compare", "create", "state", "import", "print"}
        assert text.split()[0].strip(",").lower() in verbs, ln


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "--since", "99999999d"],  # i16's battery vs the relative dates of `runs`
        ["summary", "--since", "99999999w"],
        ["exporter", "--port", "99999"],  # i15's exporter: the port reached bind()
        ["exporter", "--port", "-1"],
    ],
)
def test_out_of_range_options_are_one_line_not_a_traceback(isolated: Path, args) -> None:
    out = run_cli(*args, timeout=20)
    assert out.returncode == 2, (out.returncode, out.stderr[-300:])
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 4, out.stderr


def _covered_run(isolated: Path) -> None:
    """One finished run in region FRA with an imported series covering it."""
    series = _series_around_now(isolated / "fr.csv", "FR", 50.0)
    assert run_cli("grid", "import", str(series), "--region", "FRA").returncode == 0
    out = run_cli("run", "--region", "FRA", "--", sys.executable, "-c", "pass")
    assert out.returncode == 0, out.stderr


def test_latex_with_bib_keeps_the_time_resolved_sentence(isolated: Path, db_path: Path) -> None:
    """Issue 17 appended its sentences to the methodology after issue 14 bounded it; the
    LaTeX writer re-renders the paragraph for --bib citations and dropped them."""
    _covered_run(isolated)
    wait_synced(db_path)
    bib = run_cli(
        "report", "--format", "latex", "--bib", str(isolated / "r.bib"),
        "-o", str(isolated / "r.tex"),
    )  # fmt: skip
    assert bib.returncode == 0, bib.stderr
    assert "Time-resolved CO$_2$e" in (isolated / "r.tex").read_text()
    plain = run_cli("report", "--format", "json")
    import json

    methodology = json.loads(plain.stdout)["methodology"]
    assert "Time-resolved CO2e" in methodology
    assert len(methodology.split()) <= 250  # issue 14's bound holds with the extra sentences


def test_embodied_switched_on_is_not_also_called_excluded(isolated: Path, db_path: Path) -> None:
    """Issue 14's method said "Excluded: embodied ... 0.010-0.013 kg per GPU-hour" while
    issue 17's sentence reported the embodied figure at 0.0103 in the same paragraph, and
    its GPU-hours came out in e-notation."""
    import json

    from store_helpers import make_record

    from ecotrain.store.db import Store

    record = make_record("e" * 32, beat=2, status="finished", gpu_energy_j=1.0e6)
    record["run"]["gpu_hours"] = 1_082_990.0
    Store(db_path).write_record(record)
    on = run_cli("report", "--format", "json", env={"ECOTRAIN_EMBODIED": "on"})
    assert on.returncode == 0, on.stderr
    text = json.loads(on.stdout)["methodology"]
    assert "Embodied emissions (reported beside" in text
    assert "Excluded: embodied" not in text
    assert "e+0" not in text and "1,080,000 GPU-hours" in text
    off = json.loads(run_cli("report", "--format", "json").stdout)["methodology"]
    assert "Embodied emissions of the hardware are not included" in off


def test_no_gpu_hours_gives_no_zero_range_of_embodied(isolated: Path, db_path: Path) -> None:
    out = run_cli("run", "--", sys.executable, "-c", "pass")
    assert out.returncode == 0
    wait_synced(db_path)
    import json

    text = json.loads(run_cli("report", "--format", "json").stdout)["methodology"]
    assert "i.e. 0-0" not in text and "for these 0 GPU-hours" not in text


def test_registered_repos_keep_their_whole_id_in_lists(isolated: Path) -> None:
    """Issue 13 registers repos as `hf:org/name`; lists cut every id to 19 characters (made
    for `sha256:` + 12 hex), so Llama 2 7B and 13B both read `hf:meta-llama/Llama`."""
    for repo, kg in (("meta-llama/Llama-2-7b-hf", "31220"), ("meta-llama/Llama-2-13b-hf", "62440")):
        out = run_cli("checkpoint", "register", repo, "--co2-kg", kg, "--source", "Table 2")
        assert out.returncode == 0, out.stderr
        assert f"registered hf:{repo} " in out.stdout
    listed = run_cli("checkpoints", env={"COLUMNS": "200"})
    assert "hf:meta-llama/Llama-2-7b-hf" in listed.stdout
    assert "hf:meta-llama/Llama-2-13b-hf" in listed.stdout
    shown = run_cli("lineage", "hf:meta-llama/Llama-2-13b-hf")
    assert shown.returncode == 0 and "(hf:meta-llama/Llama-2-13b-hf)" in shown.stdout


def test_short_id_cuts_content_hashes_only() -> None:
    from ecotrain.units import short_id

    assert short_id("sha256:" + "ab" * 32) == "sha256:" + "ab" * 6
    assert short_id("hf:meta-llama/Llama-2-13b-hf") == "hf:meta-llama/Llama-2-13b-hf"


def test_a_logger_failure_note_is_redacted_like_every_other_note(
    isolated: Path, db_path: Path
) -> None:
    """Issue 15's reporter adds its notes after issue 16 redacted the record once (and
    marked it done): a tracking URL with a password in a logger's error reached the store."""
    import json

    import ecotrain

    class Failing:
        name = "mlflow"

        def log(self, metrics, step):  # noqa: ANN001, ANN202
            pass

        def final(self, metrics, run_id, step, status):  # noqa: ANN001, ANN202
            raise RuntimeError("POST https://ada:hunter2pw@mlflow.lab/api/2.0 failed")

    with ecotrain.track(project="p") as run:
        run._recorder.reporter.add(lambda: Failing(), "fake:1")
    notes = run.record["notes"]
    assert any("mlflow: RuntimeError" in n for n in notes), notes
    assert not any("hunter2pw" in n for n in notes), notes
    stored = wait_synced(db_path)
    assert "hunter2pw" not in json.dumps(stored)


def test_the_detached_sync_gets_past_a_record_sqlite_refuses(isolated: Path, db_path: Path) -> None:
    """Issue 16's stdlib writer raised OverflowError ("never raises") on a value SQLite cannot
    hold, so the detached sync every run leaves behind died on that one spool file, before
    issue 16b's quarantine could set it aside: no later record was pushed either."""
    import os
    import subprocess

    from store_helpers import make_record

    from ecotrain.store import lite, spool
    from ecotrain.store.db import Store

    Store(db_path)  # an existing store: the light writer's case
    bad = make_record("b" * 32, beat=2, status="failed")
    bad["run"]["exit_code"] = 2**70
    assert lite.write(db_path, bad) is False
    spool.spool(bad, target=str(db_path))
    spool.spool(make_record("c" * 32, beat=1, status="finished"), target=str(db_path))
    env = {**os.environ, "ECOTRAIN_SYNC_TARGET": str(db_path)}
    done = subprocess.run(
        [sys.executable, "-m", "ecotrain.store.detached", "c" * 32],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    with sqlite3.connect(db_path) as conn:
        ids = [r[0] for r in conn.execute("select run_id from runs")]
    assert ids == ["c" * 32]
    folder = isolated / "home" / "data" / "spool"
    assert (folder / "quarantine" / f"{'b' * 32}.json").exists()
