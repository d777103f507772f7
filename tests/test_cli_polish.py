"""The CLI as a new user meets it: version, completion, help style, filters, empty results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecotrain import __version__
from tests import dashboard_fixture
from tests.conftest import run_cli

R1 = dashboard_fixture.RUN_IDS["r1"]


@pytest.fixture
def fx(db_path: Path) -> Path:
    dashboard_fixture.build(db_path)
    return db_path


def test_version_and_completion() -> None:
    result = run_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"ecotrain {__version__}\n")
    helped = run_cli("--help").stdout
    assert "--install-completion" in helped and "--show-completion" in helped
    # what the installed bash completion script asks the program
    env = {"_ECOTRAIN_COMPLETE": "complete_bash", "COMP_WORDS": "ecotrain ru", "COMP_CWORD": "1"}
    shown = run_cli(env=env)
    assert shown.returncode == 0 and shown.stdout.split() == ["run", "runs"]


def _commands() -> list[list[str]]:
    out = run_cli("--help").stdout
    names = []
    in_commands = False
    for line in out.splitlines():
        if line.startswith("Commands:"):
            in_commands = True
            continue
        if in_commands and line.startswith("  ") and line.split():
            names.append(line.split()[0])
    groups = {"config": ["show"], "db": ["info", "upgrade"], "checkpoint": ["register"],
              "import": ["codecarbon"]}  # fmt: skip
    return [[n, *([g] if g else [])] for n in names for g in (groups.get(n) or [None])]


def test_every_help_shows_metavars_not_python_types() -> None:
    commands = _commands()
    assert ["summary"] in commands and ["compare"] in commands and ["exporter"] in commands
    for cmd in commands:
        result = run_cli(*cmd, "--help")
        assert result.returncode == 0, (cmd, result.stderr)
        for bad in ("<str>", "<int>", "<float>", "<list[str]>"):
            assert bad not in result.stdout, (cmd, bad)
        assert result.stdout.startswith(f"Usage: ecotrain {' '.join(cmd)} "), cmd
    runs_help = run_cli("runs", "--help").stdout
    assert "--since WHEN" in runs_help and "--tag KEY=VALUE" in runs_help


def test_run_help_looks_like_the_others() -> None:
    text = run_cli("run", "--help").stdout
    lines = text.splitlines()
    assert lines[0] == "Usage: ecotrain run [OPTIONS] [--] COMMAND [ARGS]..."
    assert lines[2] == "  Run COMMAND and record its energy, CO2e and cost."
    assert lines[4] == "Options:"
    assert "  -h, --help" in text and "Show this message and exit." in text
    assert "--project NAME" in text and "--db URL|PATH" in text and "--mlflow" in text
    assert "BUDGET_CO2" not in text


def test_runs_filter_without_match_says_so(fx: Path) -> None:
    result = run_cli("runs", "--tag", "stage=x")
    assert result.returncode == 0
    assert result.stdout.strip() == "no runs match these filters (4 runs in the database)"
    empty = run_cli("runs", "--db", str(fx.parent / "fresh.db"))
    assert "no runs yet" in empty.stdout


def test_runs_has_a_totals_line(fx: Path) -> None:
    result = run_cli("runs", "--limit", "2")
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("total: 4 runs (latest 2 shown) · 135")  # whatever the formatter
    assert "kWh" in last and "64" in last and "$15.5" in last


def test_config_show_gives_effective_values_and_defaults() -> None:
    data = json.loads(run_cli("config", "show", "--json").stdout)
    assert data["pue"]["value"] == 1.56 and data["pue"]["from"].startswith("default")
    assert data["region"]["value"] and data["region"]["from"].startswith("default")
    assert data["intensity"]["value"] > 0
    doctor = run_cli("doctor", "--json")
    acc = json.loads(doctor.stdout)["accounting"]
    assert acc["PUE"].startswith("1.56 ")
    assert acc["region"].startswith(data["region"]["value"] + " ")
    set_ = json.loads(run_cli("config", "show", "--json", env={"ECOTRAIN_PUE": "1.2"}).stdout)
    assert set_["pue"] == {"value": 1.2, "from": "$ECOTRAIN_PUE"}


def test_show_lists_the_runs_checkpoints_and_a_duration(fx: Path) -> None:
    result = run_cli("show", R1[:8])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["consumed", "bert-base"] for line in lines)
    assert any(line.split()[:2] == ["produced", "bert-distill"] for line in lines)
    assert any(line.split() == ["duration", "2h00m"] for line in lines)
    data = json.loads(run_cli("show", R1[:8], "--json").stdout)
    assert sorted(c["role"] for c in data["checkpoints"]) == ["consumed", "produced"]


def test_lineage_json(fx: Path) -> None:
    data = json.loads(run_cli("lineage", R1[:8], "--json").stdout)
    assert (data["kind"], data["id"]) == ("run", R1)
    assert {c["name"] for c in data["checkpoints"]} == {"bert-base", "bert-distill"}
    labels = [c["label"] for c in data["tree"]["children"]]
    assert any(label.startswith("read bert-base") for label in labels)
    assert "[alpha]" in data["tree"]["label"]  # plain text, not Rich markup


def test_checkpoints_project_and_savings_tag(fx: Path) -> None:
    alpha = json.loads(run_cli("checkpoints", "--project", "alpha", "--json").stdout)
    assert {c["name"] for c in alpha} == {"bert-base", "bert-distill"}
    beta = json.loads(run_cli("checkpoints", "--project", "beta", "--json").stdout)
    assert beta == []
    said = run_cli("checkpoints", "--project", "beta").stdout.strip()
    assert said == "no checkpoints read or written by runs of project 'beta'"
    tagged = run_cli("savings", "--tag", "lr=3e-4", "--json")
    assert tagged.returncode == 0, tagged.stderr
    untagged = run_cli("savings", "--tag", "lr=1", "--json")
    assert json.loads(untagged.stdout)["avoided"] == []
    assert json.loads(tagged.stdout)["avoided"] != []


@pytest.mark.parametrize("cmd", [["runs"], ["summary"], ["savings"], ["report"]])
def test_since_takes_the_same_forms_everywhere(fx: Path, cmd: list[str]) -> None:
    for since in ("30m", "12h", "7d", "2w", "2026-01-01"):
        result = run_cli(*cmd, "--since", since)
        assert result.returncode in (0, 1, 2), result.stderr
        assert "bad date" not in result.stderr, (cmd, since)
    bad = run_cli(*cmd, "--since", "yesterday")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1


def test_sync_and_db_upgrade_speak_json(db_path: Path) -> None:
    up = run_cli("db", "upgrade", "--json")
    assert up.returncode == 0, up.stderr
    data = json.loads(up.stdout)
    assert data["from"] is None and data["to"] >= 1 and data["url"].endswith("ecotrain.db")
    again = json.loads(run_cli("db", "upgrade", "--json").stdout)
    assert again["from"] == again["to"] == data["to"]
    synced = run_cli("sync", "--json")
    assert synced.returncode == 0, synced.stderr
    assert all(v == {"written": 0, "kept": []} for v in json.loads(synced.stdout).values())


def test_report_and_savings_take_user_and_status(fx: Path) -> None:
    bob = json.loads(run_cli("report", "--user", "bob", "--format", "json").stdout)
    assert bob["n_runs"] == 2
    failed = json.loads(run_cli("report", "--status", "failed", "--format", "json").stdout)
    assert failed["n_runs"] == 1
    finished = json.loads(run_cli("savings", "--status", "finished", "--json").stdout)
    assert finished["avoided"] != []
    none = json.loads(run_cli("savings", "--status", "failed", "--json").stdout)
    assert none["avoided"] == []


def test_checkpoint_register_json(db_path: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"hello\n")
    result = run_cli("checkpoint", "register", str(model), "--co2-kg", "3", "--json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["checkpoint_id"] == (
        "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    )
    assert row["fp_co2_kg"] == 3.0
