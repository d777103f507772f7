"""What the CLI prints for people goes through ecotrain.units: one unit per column, no None."""

from __future__ import annotations

import re
from pathlib import Path

from ecotrain.store.db import Store
from tests.conftest import run_cli
from tests.test_reports import _run


def test_runs_one_unit_per_column_and_show_without_none(db_path: Path) -> None:
    store = Store(str(db_path))
    # 0.012 kWh and 5 kWh of IT energy (x PUE 1.2): one column, one unit (kWh, the median).
    store.write_record(_run("a" * 32, "units", 2, gpu_j=0.012 * 3.6e6, cpu_j=0.0))
    store.write_record(_run("b" * 32, "units", 3, gpu_j=5 * 3.6e6, cpu_j=0.0))
    tiny = _run("c" * 32, "units", 4, gpu_j=0.0, cpu_j=43.2, exit_code=None, cost_usd=2.6e-6,
                gpu_model=None, gpu_count=None, gpu_hours=None, pue=None)  # fmt: skip
    store.write_record(tiny)
    out = run_cli("runs", "--project", "units")
    assert out.returncode == 0, out.stderr
    rows = "\n".join(line for line in out.stdout.splitlines() if not line.startswith("total"))
    energies = re.findall(r"\d[\d,.]* (mWh|Wh|kWh|MWh)", rows)
    assert len(energies) == 3 and len(set(energies)) == 1, out.stdout
    assert "e-0" not in out.stdout and "$0.00000260" in out.stdout
    show = run_cli("show", "c" * 12)
    assert show.returncode == 0, show.stderr
    assert "None" not in show.stdout and "exit code" not in show.stdout
    assert "PUE" in show.stdout and "unknown" in show.stdout
