"""`ecotrain exporter`: scraped over loopback, parsed with prometheus-client's own parser."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from ecotrain.store.db import Store
from ecotrain.store.records import utcnow
from tests import dashboard_fixture
from tests.conftest import ECOTRAIN, run_cli

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

RUNNING_ID = "5555eeee" + "0" * 24


def _store(path: Path) -> Path:
    """The dashboard fixture (4 finished/failed runs) plus one run in progress."""
    dashboard_fixture.build(path)
    now = utcnow()
    Store(str(path)).write_record(
        {
            "run": {
                "run_id": RUNNING_ID,
                "project": "alpha",
                "user": "ana",
                "host": "h3",
                "status": "running",
                "pid": 1,
                "started_at": (now - timedelta(minutes=10)).isoformat(),
                "heartbeat_at": now.isoformat(),
                "duration_s": 600.0,
                "it_energy_kwh": 0.5,
                "facility_energy_kwh": 0.75,
                "co2_kg": 0.1,
                "cost_usd": 0.15,
                "gpu_hours": 0.2,
                "gpu_model": "NVIDIA A100-SXM4-40GB",
                "command": ["python", "train.py"],
                "tags": {},
            },
            "samples": [[0.0, 200.0, 30.0, 5.0], [590.0, 310.0, 40.0, 6.0]],
        }
    )
    return path


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _key(name: str, **labels: str) -> tuple[str, tuple]:
    return name, tuple(sorted(labels.items()))


def check_exposition(text: str) -> None:
    got = _samples(text)
    a100, h100 = "NVIDIA A100-SXM4-40GB", "NVIDIA H100"
    assert got[_key("ecotrain_up")] == 1
    # alpha/ana/A100: r1 (10 kWh, 5 kg, $2, 4 GPU-h) + the running run (0.75 kWh so far)
    assert got[_key("ecotrain_energy_kwh_total", project="alpha", user="ana", gpu=a100)] == (
        pytest.approx(10.75)
    )
    assert got[_key("ecotrain_co2_kg_total", project="alpha", user="ana", gpu=a100)] == (
        pytest.approx(5.1)
    )
    assert got[_key("ecotrain_runs_total", project="alpha", user="ana", gpu=a100)] == 2
    assert got[_key("ecotrain_runs_running", project="alpha", user="ana", gpu=a100)] == 1
    assert got[_key("ecotrain_cost_usd_total", project="alpha", user="bob", gpu=h100)] == 3.0
    assert got[_key("ecotrain_gpu_hours_total", project="beta", user="bob", gpu=a100)] == 20.0
    run = {"run_id": RUNNING_ID, "project": "alpha", "user": "ana", "gpu": a100, "host": "h3"}
    assert got[_key("ecotrain_run_power_watts", **run)] == pytest.approx(356.0)  # last sample
    assert got[_key("ecotrain_run_energy_kwh", **run)] == pytest.approx(0.75)
    # every facility kWh in the store is counted once
    total = sum(v for (n, _), v in got.items() if n == "ecotrain_energy_kwh_total")
    assert total == pytest.approx(10 + 20 + 5 + 100 + 0.75)


def test_scrape_over_loopback(db_path: Path) -> None:
    _store(db_path)
    proc = subprocess.Popen(
        [ECOTRAIN, "exporter", "--port", "0", "--db", str(db_path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline()
        assert line.startswith("ecotrain exporter on http://127.0.0.1:"), line
        url = line.split()[3]
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = resp.read().decode()
        check_exposition(text)
        assert "python_gc" not in text and "process_cpu" not in text  # ecotrain's only
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_textfile_for_node_exporter(db_path: Path, tmp_path: Path) -> None:
    _store(db_path)
    out = tmp_path / "textfile"
    result = run_cli("exporter", "--textfile", str(out), "--once", "--db", str(db_path))
    assert result.returncode == 0, result.stderr
    prom = out / "ecotrain.prom"
    check_exposition(prom.read_text())
    assert oct(prom.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in out.iterdir()] == ["ecotrain.prom"]  # no temp file left


def test_unreadable_database_is_reported_not_fatal(tmp_path: Path) -> None:
    result = run_cli(
        "exporter", "--textfile", str(tmp_path), "--once", "--db", str(tmp_path / "no.db")
    )
    assert result.returncode == 0, result.stderr
    got = _samples((tmp_path / "ecotrain.prom").read_text())
    assert got == {_key("ecotrain_up"): 0}
    assert not (tmp_path / "no.db").exists()  # a reader never creates a store


def test_missing_extra_names_it(tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['prometheus_client'] = None\n")
    env = {"PYTHONPATH": str(hide) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = run_cli("exporter", "--once", "--textfile", str(tmp_path), env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "ecotrain: error: ecotrain exporter needs the [prometheus] extra "
        "(prometheus_client not installed): pip install 'ecotrain[prometheus]'"
    ]


def test_port_in_use_is_one_line(db_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli("exporter", "--port", str(port), "--db", str(db_path), timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith(f"ecotrain: error: cannot listen on 127.0.0.1:{port}")
    assert len(result.stderr.splitlines()) == 1
