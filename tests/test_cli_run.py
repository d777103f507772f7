"""`ecotrain run` through its real entry point, on small Python children."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlite_utils

from tests.conftest import ECOTRAIN, run_cli

PY = sys.executable


def synced_rows(db: Path) -> list[dict]:
    """Push anything still spooled, then read the runs table with sqlite-utils."""
    assert run_cli("sync", "--quiet").returncode == 0
    return list(sqlite_utils.Database(db)["runs"].rows)


def test_exit_codes_pass_through(db_path: Path) -> None:
    for code in (0, 1, 3):
        result = run_cli("run", "--", PY, "-c", f"import sys; sys.exit({code})")
        assert result.returncode == code, result.stderr
    rows = synced_rows(db_path)
    assert sorted(r["exit_code"] for r in rows) == [0, 1, 3]
    statuses = {r["exit_code"]: r["status"] for r in rows}
    assert statuses == {0: "finished", 1: "failed", 3: "failed"}


def test_child_flags_reach_the_child_untouched(db_path: Path) -> None:
    script = "import sys, json; print(json.dumps(sys.argv[1:]))"
    args = ["--help", "-h", "--", "--project", "x", "--tag", "a=b", "--db", "nowhere"]
    result = run_cli("run", PY, "-c", script, *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == args
    # The summary line goes to stderr, never into the child's stdout.
    assert "ecotrain:" in result.stderr and "Wh" in result.stderr and "CO2e" in result.stderr


def test_stdin_stdout_and_env(db_path: Path) -> None:
    script = (
        "import os, sys; data = sys.stdin.read(); "
        "print(data.upper(), os.environ['ECOTRAIN_RUN_ID'], os.environ.get('MY_VAR'))"
    )
    result = run_cli("run", PY, "-c", script, input="hello", env={"MY_VAR": "kept"})
    assert result.returncode == 0
    text, run_id, var = result.stdout.split()
    assert (text, var) == ("HELLO", "kept")
    rows = synced_rows(db_path)
    assert [r["run_id"] for r in rows] == [run_id]


def test_options_recorded(db_path: Path) -> None:
    result = run_cli(
        "run",
        "--project",
        "bert",
        "--tag",
        "lr=3e-4",
        "--tag",
        "seed=1",
        "--region",
        "FRA",
        "--pue",
        "1.2",
        "--",
        PY,
        "-c",
        "sum(range(10**6))",
    )
    assert result.returncode == 0, result.stderr
    (row,) = synced_rows(db_path)
    assert row["project"] == "bert"
    assert json.loads(row["tags"]) == {"lr": "3e-4", "seed": "1"}
    assert row["region"] == "FRA"
    assert row["pue"] == 1.2
    assert json.loads(row["command"])[1:] == ["-c", "sum(range(10**6))"]
    # Accounting chain holds on the stored numbers.
    assert row["facility_energy_kwh"] == pytest_approx(row["it_energy_kwh"] * 1.2)
    assert row["co2_kg"] == pytest_approx(
        row["facility_energy_kwh"] * row["intensity_g_per_kwh"] / 1000
    )
    assert row["cpu_method"] == "modelled" and row["cpu_energy_j"] > 0
    assert row["ecotrain_version"]


def pytest_approx(value: float):
    import pytest

    return pytest.approx(value, rel=1e-6, abs=1e-12)


def test_command_not_found_is_127_and_recorded(db_path: Path) -> None:
    result = run_cli("run", "--", "no-such-command-xyz")
    assert result.returncode == 127
    assert "command not found" in result.stderr
    assert "Traceback" not in result.stderr
    (row,) = synced_rows(db_path)
    assert row["status"] == "failed_to_start" and row["exit_code"] == 127


def test_user_mistakes_are_one_line_exit_2(isolated: Path) -> None:
    cases = [
        ["run", "--bogus-option", "python"],
        ["run", "--region", "NOWHERE", "--", PY, "-c", "pass"],
        ["run", "--pue", "0.5", "--", PY, "-c", "pass"],
        ["run", "--tag", "novalue", "--", PY, "-c", "pass"],
        ["run"],
    ]
    for args in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr, args
        assert result.stderr.strip(), args
    bad = run_cli("run", "--region", "NOWHERE", "--", PY, "-c", "pass")
    assert "region" in bad.stderr.lower()


def test_malformed_toml_is_one_line(isolated: Path) -> None:
    Path(".ecotrain.toml").write_text("region = [unclosed\n")
    listing = run_cli("runs")
    assert listing.returncode == 2
    assert "malformed TOML" in listing.stderr and "Traceback" not in listing.stderr
    # Under `run` a config error never keeps the training from running: a warning, defaults.
    result = run_cli("run", "--", PY, "-c", "import sys; sys.exit(3)")
    assert result.returncode == 3
    assert "ecotrain: warning: malformed TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_db_path_is_one_line(isolated: Path) -> None:
    result = run_cli("runs", env={"ECOTRAIN_DB": "/proc/nope/ecotrain.db"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_killed_by_signal_gives_128_plus_n(db_path: Path) -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    result = run_cli("run", PY, "-c", script)
    assert result.returncode == 128 + signal.SIGTERM
    script = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    result = run_cli("run", PY, "-c", script)
    assert result.returncode == 128 + signal.SIGKILL
    rows = synced_rows(db_path)
    assert {r["status"] for r in rows} == {"killed"}
    assert {r["exit_code"] for r in rows} == {143, 137}


def test_sigint_is_forwarded_to_the_child(db_path: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    script = (
        "import signal, sys, time, pathlib\n"
        "def h(s, f):\n    print('child got SIGINT', flush=True); sys.exit(42)\n"
        "signal.signal(signal.SIGINT, h)\n"
        f"pathlib.Path({str(marker)!r}).write_text('x')\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [ECOTRAIN, "run", PY, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 42, err
    assert "child got SIGINT" in out
    (row,) = synced_rows(db_path)
    assert row["exit_code"] == 42


def test_wrapper_killed_after_heartbeat_shows_lost(db_path: Path, tmp_path: Path) -> None:
    script = "import time\nwhile True: sum(range(10000))"
    proc = subprocess.Popen(
        [ECOTRAIN, "run", PY, "-c", script],
        env={**os.environ, "ECOTRAIN_HEARTBEAT_S": "0.5"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        row = None
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if db_path.exists() and "runs" in sqlite_utils.Database(db_path).table_names():
                rows = list(sqlite_utils.Database(db_path)["runs"].rows)
                if rows and (rows[0]["cpu_energy_j"] or 0) > 0:
                    row = rows[0]
                    break
        assert row is not None, "no heartbeat reached the database"
        assert row["status"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        # The child lives on in its own process group after SIGKILL of the wrapper.
        subprocess.run(["pkill", "-f", "while True: sum"], check=False)
    listing = run_cli("runs", "--json")
    assert listing.returncode == 0, listing.stderr
    (run,) = json.loads(listing.stdout)
    assert run["status"] == "lost"
    assert run["cpu_energy_j"] > 0 and run["ended_at"] is None


def test_unreachable_database_is_one_line_exit_1(isolated: Path) -> None:
    url = "postgresql://postgres:hunter2@127.0.0.1:1/x"
    for args in (["runs"], ["db", "info", "--db", url]):
        result = run_cli(*args, env={"ECOTRAIN_DB": url})
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith("ecotrain: error: database unavailable")
        assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
