"""Secrets never reach the store, the spool or any output; local files are owner-only."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from conftest import run_cli, wait_synced

from ecotrain.redact import MASK, redact_argv, redact_env, redact_text

HF = "hf_" + "Q" * 34  # the shape of a Hugging Face token


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--token", "abc"], ["--token", MASK]),
        (["--api-key=xyz"], ["--api-key=" + MASK]),
        (["--password", "pw"], ["--password", MASK]),
        (["--hf_token", "abc"], ["--hf_token", MASK]),
        (["--hf-token", "--lr", "3"], ["--hf-token", "--lr", "3"]),  # no value to hide
        (["HF_TOKEN=abc"], ["HF_TOKEN=" + MASK]),
        (["WANDB_API_KEY=abc"], ["WANDB_API_KEY=" + MASK]),
        (["AWS_SECRET_ACCESS_KEY=abc"], ["AWS_SECRET_ACCESS_KEY=" + MASK]),
        (["MY_SECRET=abc"], ["MY_SECRET=" + MASK]),
        (["trainer.hf_token=abc"], ["trainer.hf_token=" + MASK]),  # Hydra override
        (["+wandb.api_key=abc"], ["+wandb.api_key=" + MASK]),
        (["postgresql://u:p@ss@db/x"], [f"postgresql://u:{MASK}@db/x"]),
        (["--db=postgresql://u:pw@db/x"], [f"--db=postgresql://u:{MASK}@db/x"]),
        ([HF], [MASK]),
        (["--model", f"x{HF[:0]}", HF], ["--model", "x", MASK]),
        (["Authorization: Bearer abcdefghijkl"], [f"Authorization: Bearer {MASK}"]),
        (["--opts", "lr=3,api_key=qq"], ["--opts", f"lr=3,api_key={MASK}"]),
        # ML flags that merely contain the letters stay as they are
        (
            ["--tokenizer", "gpt2", "--max-tokens", "100"],
            ["--tokenizer", "gpt2", "--max-tokens", "100"],
        ),
        (
            ["MAX_TOKENS=5", "TOKENIZERS_PARALLELISM=false"],
            ["MAX_TOKENS=5", "TOKENIZERS_PARALLELISM=false"],
        ),
        (["--author", "ada", "--lr", "3e-4"], ["--author", "ada", "--lr", "3e-4"]),
    ],
)
def test_redact_argv(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(["python", "train.py", *argv]) == ["python", "train.py", *expected]


def test_redact_env_and_text() -> None:
    env = {"HF_TOKEN": "x", "PGPASSWORD": "y", "PATH": "/bin", "URL": "https://a:b@h/"}
    assert redact_env(env) == {
        "HF_TOKEN": MASK,
        "PGPASSWORD": MASK,
        "PATH": "/bin",
        "URL": f"https://a:{MASK}@h/",
    }
    assert redact_text(f"pushed with {HF} to https://x:y@hub") == (
        f"pushed with {MASK} to https://x:{MASK}@hub"
    )


def _grep_tree(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_token_on_the_command_line_never_reaches_db_spool_or_output(
    isolated: Path, db_path: Path
) -> None:
    secret = "s3cr3t-" + "Z" * 12
    child = [sys.executable, "-c", "import sys; sys.exit(0)"]
    args = ["--token", secret, f"--api-key={secret}", f"HF_TOKEN={secret}", HF, "--lr", "3e-4"]
    out = run_cli("run", "--", *child, *args)
    assert out.returncode == 0, out.stderr
    rows = wait_synced(db_path)
    assert len(rows) == 1 and rows[0]["status"] == "finished"
    command = json.loads(rows[0]["command"])
    assert command[-7:] == [
        "--token",
        MASK,
        f"--api-key={MASK}",
        f"HF_TOKEN={MASK}",
        MASK,
        "--lr",
        "3e-4",
    ]

    run_id = rows[0]["run_id"]
    outputs = [
        run_cli("show", run_id, "--json").stdout,
        run_cli("show", run_id).stdout,
        run_cli("runs", "--json").stdout,
        run_cli("runs").stdout,
    ]
    assert all(run_id[:12] in o for o in outputs)
    for text in outputs:
        assert secret not in text and HF not in text

    # the bytes of the database (and its WAL) and everything in the data dir
    for needle in (secret.encode(), HF.encode()):
        assert _grep_tree(isolated, needle) == []

    # the database unreachable: the record waits in the spool, redacted there too
    down = run_cli(
        "run", "--", *child, *args, env={"ECOTRAIN_DB": "postgresql://postgres@127.0.0.1:1/x"}
    )
    assert down.returncode == 0
    spooled = list((isolated / "home" / "data" / "spool").glob("*.json"))
    assert len(spooled) == 1
    assert MASK in spooled[0].read_text()
    for needle in (secret.encode(), HF.encode()):
        assert _grep_tree(isolated, needle) == []
    status = run_cli("sync", "--status").stdout
    assert secret not in status


def test_local_files_are_owner_only(isolated: Path, db_path: Path) -> None:
    out = run_cli("run", "--", sys.executable, "-c", "pass", env={"ECOTRAIN_HEARTBEAT_S": "0.5"})
    assert out.returncode == 0, out.stderr
    wait_synced(db_path)
    for path in [db_path, *db_path.parent.glob("ecotrain.db-*")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    spool = isolated / "home" / "data" / "spool"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    down = run_cli(
        "run",
        "--",
        sys.executable,
        "-c",
        "pass",
        env={"ECOTRAIN_DB": "postgresql://postgres@127.0.0.1:1/x"},
    )
    assert down.returncode == 0
    files = list(spool.glob("*.json"))
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
