"""The sample training scripts really train, save loadable checkpoints and chain together."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ECOTRAIN, ROOT, run_cli, wait_synced

SAMPLES = ROOT / "sample_runs"
sys.path.insert(0, str(SAMPLES))
import tinynet  # noqa: E402  (the samples' own helper module, not a package)

BLOCK_SAFETENSORS = (
    "import runpy, sys; sys.modules['safetensors'] = None; sys.modules['safetensors.numpy'] = None;"
    " script = sys.argv[1]; sys.argv = sys.argv[1:]; sys.path.insert(0, {samples!r});"
    " runpy.run_path(script, run_name='__main__')"
)


def run_script(name: str, *args: str, cwd: Path, block_safetensors: bool = False) -> dict:
    """Run a sample script; return the JSON summary on its last line."""
    script = str(SAMPLES / name)
    if block_safetensors:
        argv = [sys.executable, "-c", BLOCK_SAFETENSORS.format(samples=str(SAMPLES)), script]
    else:
        argv = [sys.executable, script]
    proc = subprocess.run(
        [*argv, *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "eval loss" in proc.stdout or name == "merge.py"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def pretrained(tmp_path: Path) -> tuple[Path, dict]:
    summary = run_script(
        "pretrain.py", "--out", "ckpt/base.safetensors", "--steps", "300", cwd=tmp_path
    )
    return tmp_path / summary["out"], summary


def test_pretrain_learns_and_saves_a_loadable_checkpoint(pretrained: tuple[Path, dict]) -> None:
    path, summary = pretrained
    assert path.name == "base.safetensors" and path.exists()
    assert summary["steps"] == 300
    # 300 Adam steps cut the error of a fresh network by far more than half.
    assert summary["final_eval_loss"] < 0.25 * summary["initial_eval_loss"]
    tensors, meta = tinynet.load(path)
    assert {k: v.shape for k, v in tensors.items()} == {
        "w1": (tinynet.D_IN, tinynet.HIDDEN),
        "b1": (tinynet.HIDDEN,),
        "w2": (tinynet.HIDDEN, tinynet.D_OUT),
        "b2": (tinynet.D_OUT,),
    }
    assert meta == {"kind": "full", "task": "base", "steps": 300, "base": None}
    # The file holds the trained weights: their loss is the reported final loss.
    _, _, x_eval, y_eval = tinynet.make_task("base")
    assert tinynet.loss(tensors, x_eval, y_eval) == pytest.approx(summary["final_eval_loss"])


def test_finetune_starts_from_the_pretrained_weights(
    pretrained: tuple[Path, dict], tmp_path: Path
) -> None:
    path, pre = pretrained
    same = run_script(
        "finetune.py",
        "--init",
        str(path),
        "--task",
        "base",
        "--steps",
        "5",
        "--out",
        "ckpt/again",
        cwd=tmp_path,
    )
    # Same data, same weights: its step-0 loss is the pretraining's final loss.
    assert same["initial_eval_loss"] == pytest.approx(pre["final_eval_loss"], rel=1e-6)

    legal = run_script(
        "finetune.py",
        "--init",
        str(path),
        "--task",
        "legal",
        "--steps",
        "100",
        "--out",
        "ckpt/legal",
        cwd=tmp_path,
    )
    _, _, x_eval, y_eval = tinynet.make_task("legal")
    scratch = tinynet.loss(tinynet.init_params(0), x_eval, y_eval)
    # The pretrained start is far better on the new task than a fresh network...
    assert legal["initial_eval_loss"] < 0.5 * scratch
    # ...and fine-tuning improves on it.
    assert legal["final_eval_loss"] < legal["initial_eval_loss"]
    out = tmp_path / legal["out"]
    assert out.name == "legal.safetensors"
    tensors, meta = tinynet.load(out)
    assert meta["base"] == str(path) and meta["task"] == "legal"
    assert tinynet.loss(tensors, x_eval, y_eval) == pytest.approx(legal["final_eval_loss"])


def test_adapter_saves_only_the_low_rank_delta(
    pretrained: tuple[Path, dict], tmp_path: Path
) -> None:
    path, _ = pretrained
    summary = run_script(
        "finetune_adapter.py",
        "--base",
        str(path),
        "--task",
        "medical",
        "--rank",
        "4",
        "--steps",
        "60",
        "--out",
        "ckpt/med.safetensors",
        cwd=tmp_path,
    )
    delta, meta = tinynet.load(tmp_path / summary["out"])
    assert {k: v.shape for k, v in delta.items()} == {
        "w1.lora_a": (tinynet.D_IN, 4),
        "w1.lora_b": (4, tinynet.HIDDEN),
        "w2.lora_a": (tinynet.HIDDEN, 4),
        "w2.lora_b": (4, tinynet.D_OUT),
    }
    assert meta["kind"] == "adapter" and meta["rank"] == 4 and meta["base"] == str(path)
    base, _ = tinynet.load(path)
    _, _, x_eval, y_eval = tinynet.make_task("medical")
    # B starts at zero: step 0 is exactly the base model.
    assert summary["initial_eval_loss"] == pytest.approx(tinynet.loss(base, x_eval, y_eval))
    assert summary["final_eval_loss"] < summary["initial_eval_loss"]
    # Base + scaled delta reproduces the reported final loss.
    scale = meta["alpha"] / meta["rank"]
    adapted = dict(base)
    for name in ("w1", "w2"):
        adapted[name] = base[name] + scale * delta[f"{name}.lora_a"] @ delta[f"{name}.lora_b"]
    assert tinynet.loss(adapted, x_eval, y_eval) == pytest.approx(
        summary["final_eval_loss"], rel=1e-4
    )


def test_merge_averages_two_finetunes(pretrained: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = pretrained
    for task in ("legal", "finance"):
        run_script(
            "finetune.py",
            "--init",
            str(path),
            "--task",
            task,
            "--steps",
            "20",
            "--out",
            f"ckpt/{task}",
            cwd=tmp_path,
        )
    a, b = tmp_path / "ckpt/legal.safetensors", tmp_path / "ckpt/finance.safetensors"
    summary = run_script("merge.py", str(a), str(b), "-o", "ckpt/merged", cwd=tmp_path)
    merged, meta = tinynet.load(tmp_path / summary["out"])
    ta, tb = tinynet.load(a)[0], tinynet.load(b)[0]
    for key in ta:
        np.testing.assert_allclose(merged[key], (ta[key] + tb[key]) / 2, rtol=1e-6, atol=1e-7)
    assert meta["task"] == "legal+finance" and meta["base"] == [str(a), str(b)]
    assert set(summary["eval_loss"]) == {"legal", "finance"}


def test_merge_refuses_an_adapter(pretrained: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = pretrained
    run_script(
        "finetune_adapter.py", "--base", str(path), "--steps", "2", "--out", "ckpt/ad", cwd=tmp_path
    )
    proc = subprocess.run(
        [sys.executable, str(SAMPLES / "merge.py"), str(path), "ckpt/ad.safetensors"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "not a full checkpoint" in proc.stderr


def test_npz_fallback_without_safetensors(tmp_path: Path) -> None:
    pre = run_script(
        "pretrain.py",
        "--out",
        "ckpt/base.safetensors",
        "--steps",
        "50",
        cwd=tmp_path,
        block_safetensors=True,
    )
    assert pre["out"] == "ckpt/base.npz"
    ft = run_script(
        "finetune.py",
        "--init",
        "ckpt/base.npz",
        "--task",
        "base",
        "--steps",
        "1",
        "--out",
        "ckpt/ft",
        cwd=tmp_path,
        block_safetensors=True,
    )
    assert ft["out"] == "ckpt/ft.npz"
    assert ft["initial_eval_loss"] == pytest.approx(pre["final_eval_loss"], rel=1e-6)
    tensors, meta = tinynet.load(tmp_path / "ckpt/ft.npz")
    assert meta["kind"] == "full" and tensors["w1"].dtype == np.float32


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    """The whole story under `ecotrain run`, as a newcomer runs it (quick mode)."""
    pytest.importorskip("ecotrain.accounting", reason="`ecotrain run` needs accounting")
    import sqlite_utils

    demo = tmp_path / "demo"
    env = {**os.environ, "ECOTRAIN": ECOTRAIN, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(SAMPLES / "demo.sh"), "--quick", "--dir", str(demo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"dashboard --db {demo / 'ecotrain.db'}" in proc.stdout
    # The user's own store (the isolated fixture's ECOTRAIN_DB) was not touched.
    assert not Path(os.environ["ECOTRAIN_DB"]).exists()

    db = sqlite_utils.Database(demo / "ecotrain.db")
    runs = list(db.query("SELECT * FROM runs ORDER BY started_at"))
    assert len(runs) == 5
    assert [r["project"] for r in runs] == ["foundation"] + ["demo"] * 4
    assert {r["status"] for r in runs} == {"finished"}
    assert {r["region"] for r in runs} == {"FRA"}
    assert [json.loads(r["tags"])["stage"] for r in runs] == [
        "pretrain",
        "finetune",
        "finetune",
        "adapter",
        "merge",
    ]
    assert all(r["cpu_energy_j"] and r["cpu_energy_j"] > 0 for r in runs)
    ext = tinynet.EXT
    for name in ("base", "legal", "finance", "medical-adapter", "legal-finance-merged"):
        assert (demo / "ckpt" / f"{name}{ext}").exists()
    if "run_checkpoints" in db.table_names():
        reused = db.execute(
            "SELECT role, COUNT(DISTINCT run_id) FROM run_checkpoints"
            " WHERE path LIKE ? GROUP BY role",
            [f"%base{ext}"],
        ).fetchall()
        # Written once by the pretraining, read by two fine-tunes and the adapter.
        assert dict(reused) == {"produced": 1, "consumed": 3}
    help_text = subprocess.run([ECOTRAIN, "--help"], capture_output=True, text=True).stdout
    if re.search(r"^\s+savings\s", help_text, re.M):
        db_arg = str(demo / "ecotrain.db")
        saved = json.loads(
            subprocess.run(
                [ECOTRAIN, "savings", "--project", "demo", "--json", "--db", db_arg],
                capture_output=True, text=True, check=True,
            ).stdout
        )  # fmt: skip
        (base,) = saved["avoided"]
        assert base["name"] == f"ckpt/base{ext}" and base["reuses"] == 3
        # Same site (FRA, same PUE): avoiding the pretraining avoids exactly what it cost up
        # to the moment it wrote the checkpoint (its energy share then).
        ((share,),) = db.execute(
            "SELECT energy_share FROM run_checkpoints WHERE role = 'produced' AND path LIKE ?",
            [f"%base{ext}"],
        ).fetchall()
        assert 0.5 < share <= 1
        assert base["energy_kwh"] == pytest.approx(runs[0]["facility_energy_kwh"] * share, rel=1e-9)
        assert base["co2_kg"] == pytest.approx(runs[0]["co2_kg"] * share, rel=1e-9)
        assert base["co2_kg"] > 0
    if re.search(r"^\s+report\s", help_text, re.M):
        assert (demo / "ecotrain-report.md").stat().st_size > 0


def test_demo_rejects_unknown_option(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(SAMPLES / "demo.sh"), "--nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
        env={**os.environ, "ECOTRAIN": ECOTRAIN},
    )
    assert proc.returncode == 2 and "unknown option --nope" in proc.stderr
    assert not (tmp_path / "ecotrain-demo").exists()


def test_demo_writes_under_the_data_dir_not_the_cwd(tmp_path: Path, isolated: Path) -> None:
    # an `ecotrain` that fails at once: the demo stops after choosing (and saying) its folder
    stub = tmp_path / "ecotrain-stub"
    stub.write_text("#!/bin/sh\nexit 3\n")
    stub.chmod(0o755)
    cwd = tmp_path / "repo"
    cwd.mkdir()
    env = {**os.environ, "ECOTRAIN": str(stub), "PYTHON": sys.executable}
    env.pop("ECOTRAIN_DEMO_DIR", None)
    proc = subprocess.run(
        ["bash", str(SAMPLES / "demo.sh"), "--quick"],
        capture_output=True, text=True, cwd=cwd, timeout=60, env=env,
    )  # fmt: skip
    demo = Path(os.environ["ECOTRAIN_DATA_DIR"]) / "demo"
    assert f"ecotrain demo: checkpoints, database and report go to {demo}" in proc.stdout
    assert demo.is_dir() and list(cwd.iterdir()) == []


def test_tinynet_reports_its_extension() -> None:
    out = subprocess.run(
        [sys.executable, str(SAMPLES / "tinynet.py"), "--ext"], capture_output=True, text=True
    ).stdout.strip()
    assert out == (".safetensors" if tinynet.HAVE_SAFETENSORS else ".npz")


EXAMPLE_DB = SAMPLES / "example.db"


@pytest.mark.skipif(not EXAMPLE_DB.exists(), reason="sample_runs/example.db not generated yet")
def test_example_db_is_small_current_and_tells_the_story() -> None:
    import sqlite3

    from ecotrain.store.schema import SCHEMA_VERSION, meta

    assert EXAMPLE_DB.stat().st_size < 2 * 2**20
    # Opened read-only: the test must not migrate the committed file.
    conn = sqlite3.connect(f"file:{EXAMPLE_DB}?mode=ro", uri=True)
    try:
        version = conn.execute(
            f"SELECT value FROM {meta.name} WHERE key = 'schema_version'"
        ).fetchone()
        # A schema bump means: regenerate with `python sample_runs/make_example_db.py`.
        assert int(version[0]) == SCHEMA_VERSION
        rows = conn.execute(
            "SELECT project, status, region, cpu_energy_j, co2_kg FROM runs"
        ).fetchall()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()
    assert sorted(r[0] for r in rows) == ["demo"] * 4
    assert all(r[1:3] == ("finished", "FRA") and r[3] > 0 and r[4] > 0 for r in rows)
    # The base the fine-tunes reuse carries a published footprint, labelled as a stand-in,
    # so what reuse saved reads in kWh, kg and dollars (issue 14).
    from ecotrain.savings import avoided_for_runs
    from ecotrain.store.aggregates import readonly_engine
    from ecotrain.store.queries import RunFilter

    (base,) = avoided_for_runs(readonly_engine(str(EXAMPLE_DB)), RunFilter(project="demo"))
    assert base.footprint.source == "registered" and "stand-in for BERT-base" in (
        base.footprint.citation
    )
    assert base.reuses == 3 and base.energy_kwh > 1000 and base.co2_kg > 50 and base.cost_usd > 50


@pytest.mark.slow
def test_make_example_db_writes_a_compact_copy(tmp_path: Path) -> None:
    pytest.importorskip("ecotrain.accounting", reason="`ecotrain run` needs accounting")
    import sqlite3

    out = tmp_path / "example.db"
    proc = subprocess.run(
        [sys.executable, str(SAMPLES / "make_example_db.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{Path(ECOTRAIN).parent}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"wrote {out}" in proc.stdout and "4 runs" in proc.stdout
    assert not Path(f"{out}-wal").exists()
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'finished'").fetchone() == (
            4,
        )
        (source,) = conn.execute(
            # Names carry their folder since issue 12 ("ckpt/base.safetensors").
            "SELECT footprint_source FROM checkpoints WHERE name LIKE 'ckpt/base.%'"
        ).fetchone()
        assert source == "registered"
        assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] > 0
    # The user's own store (the isolated fixture's) was not touched.
    assert not Path(os.environ["ECOTRAIN_DB"]).exists()


def test_ecotrain_run_finds_the_checkpoints_without_flags(
    pretrained: tuple[Path, dict], tmp_path: Path, db_path: Path
) -> None:
    """What sample_runs/README.md promises: no --uses/--produces needed for these scripts."""
    pytest.importorskip("ecotrain.lineage", reason="lineage detection not in this ecotrain")
    import sqlite_utils

    base, _ = pretrained
    proc = run_cli(
        "run", "-q", "--", sys.executable, str(SAMPLES / "finetune.py"), "--init", str(base),
        "--task", "legal", "--steps", "400", "--out", str(tmp_path / "ckpt/legal"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (run,) = wait_synced(db_path)
    rows = []
    for _ in range(50):  # content ids may be resolved by a detached sync just after
        rows = list(sqlite_utils.Database(db_path)["run_checkpoints"].rows)
        if len(rows) >= 2:
            break
        time.sleep(0.2)
    found = {(r["role"], Path(r["path"]).name) for r in rows if r["run_id"] == run["run_id"]}
    assert found == {("consumed", "base.safetensors"), ("produced", "legal.safetensors")}
