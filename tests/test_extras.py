"""The light install: core commands work without the extras' packages; a command that needs
one names the extra (one line, exit 2). The packages are hidden from a real `ecotrain`
process by a sitecustomize that makes their import fail, as on a node without them."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import pytest

from tests import dashboard_fixture
from tests.conftest import ROOT, run_cli

HEAVY = ("streamlit", "pandas", "pyarrow", "mlflow", "wandb", "prometheus_client", "IPython")


@pytest.fixture
def light_env(tmp_path: Path) -> dict[str, str]:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in HEAVY)
    )
    return {"PYTHONPATH": str(hide) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_core_dependencies_are_light() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    for heavy in ("streamlit", "pandas", "pyarrow", "mlflow", "wandb", "prometheus", "ipython"):
        assert heavy not in core
    extras = project["optional-dependencies"]
    assert {"dashboard", "postgres", "mlflow", "wandb", "prometheus"} <= set(extras)
    # CI installs .[dev]: it must bring every extra the tests exercise
    assert any("ecotrain[all]" in dep for dep in extras["dev"])
    assert set(extras) - {"all", "dev"} <= set(
        extras["all"][0].split("[")[1].rstrip("]").split(",")
    )


def test_core_commands_run_without_the_extras(light_env: dict, db_path: Path) -> None:
    run = run_cli("run", "--project", "light", "--", sys.executable, "-c", "pass", env=light_env)
    assert run.returncode == 0, run.stderr
    dashboard_fixture.build(db_path)
    commands = [
        ["runs"],
        ["summary"],
        ["report", "--project", "alpha"],
        ["doctor"],
        ["compare", "1111", "2222"],
        ["export", "--format", "json", "-o", "r.json"],
        ["export", "--format", "csv", "-o", "r.csv"],  # streamed: no pandas
    ]
    for args in commands:
        result = run_cli(*args, env=light_env)
        assert result.returncode == 0, (args, result.stderr)


@pytest.mark.parametrize(
    "args, extra, missing",
    [
        (["dashboard"], "dashboard", "streamlit, pandas"),
        (["export", "--format", "parquet", "-o", "r.parquet"], "parquet", "pyarrow"),
        (["exporter", "--once", "--textfile", "."], "prometheus", "prometheus_client"),
        (["run", "--mlflow", "--", "true"], "mlflow", "mlflow"),
    ],
)
def test_missing_extra_is_named(light_env: dict, args: list, extra: str, missing: str) -> None:
    result = run_cli(*args, env=light_env)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("ecotrain: error: ")
    assert f"needs the [{extra}] extra ({missing} not installed)" in line
    assert line.endswith(f"pip install 'ecotrain[{extra}]'")
