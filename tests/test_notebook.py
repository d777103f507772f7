"""``%load_ext ecotrain`` in IPython's real InteractiveShell: cell and span magics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlite_utils

from ecotrain.sensors.replay import write_trace

pytest.importorskip("IPython")
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

WATTS = 360.0


@pytest.fixture
def shell(isolated: Path, monkeypatch: pytest.MonkeyPatch):
    path = isolated / "gpu.json"
    write_trace(path, component="gpu", method="integrated", points=[(0, WATTS), (3600, WATTS)])
    monkeypatch.setenv("ECOTRAIN_REPLAY", str(path))
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "ecotrain")
    yield sh
    sh.run_line_magic("unload_ext", "ecotrain")
    InteractiveShell.clear_instance()


def _runs(db: Path) -> list[dict]:
    return list(sqlite_utils.Database(db)["runs"].rows) if db.exists() else []


def test_cell_magic_records_the_cell(shell, db_path: Path, capsys) -> None:
    result = shell.run_cell(
        "%%ecotrain --project nb --tag lr=3e-4\nimport time\ntime.sleep(0.3)\nx = 41 + 1\n"
    )
    assert result.success
    assert shell.user_ns["x"] == 42  # the cell ran in the user's namespace
    (row,) = _runs(db_path)
    assert (row["project"], row["source"], row["status"]) == ("nb", "api", "finished")
    assert json.loads(row["tags"]) == {"lr": "3e-4"}
    assert 0.3 <= row["duration_s"] < 5
    # the replayed GPU draws 360 W for as long as it is sampled, within the cell
    assert 0 < row["gpu_energy_j"] <= WATTS * row["duration_s"] * 1.01
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("ecotrain: ") and out[-1].endswith(
        f"run {row['run_id'][:12]} [finished]"
    )


def test_failing_cell_is_recorded_failed(shell, db_path: Path, capsys) -> None:
    result = shell.run_cell("%%ecotrain\nraise ValueError('bad batch')\n")
    (row,) = _runs(db_path)
    assert row["status"] == "failed" and "bad batch" in row["end_reason"]
    assert "[failed]" in capsys.readouterr().out
    assert result is not None


def test_start_stop_spans_cells(shell, db_path: Path, capsys) -> None:
    shell.run_cell("%ecotrain start --project span")
    shell.run_cell("import time; time.sleep(0.2)")
    shell.run_cell("y = 2 * 21")
    assert _runs(db_path) == [] or _runs(db_path)[0]["status"] == "running"
    shell.run_cell("%ecotrain stop")
    (row,) = _runs(db_path)
    assert (row["project"], row["status"]) == ("span", "finished")
    assert row["duration_s"] >= 0.2
    out = capsys.readouterr().out
    assert "measuring from here" in out and f"run {row['run_id'][:12]} [finished]" in out


def test_misuse_is_a_usage_message_not_a_traceback(shell, db_path: Path, capsys) -> None:
    shell.run_cell("%ecotrain stop")
    shell.run_cell("%ecotrain --tag nokey")
    shell.run_cell("%%ecotrain --tag nokey\nx = 1\n")
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "UsageError: ecotrain: nothing to stop (%ecotrain start first)" in text
    assert "bad --tag 'nokey': use key=value" in text
    assert "Traceback" not in text
    assert _runs(db_path) == []
    assert os.environ.get("ECOTRAIN_RUN_ID") is None
