"""Checkpoint detection with no change to the training script, through real `ecotrain run`
children: the safetensors package (native code, no audited open), a Hugging Face cache
layout, sharded sets, non-Python writers, copies, and hashing deferred past the run's end."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils
from safetensors.numpy import save

from ecotrain.lineage import combined_id, identify
from ecotrain.savings import avoided_for_runs, checkpoint_footprint
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from tests.conftest import run_cli

PY = sys.executable


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def run(project: str, *argv: str, extra: tuple[str, ...] = ()) -> None:
    result = run_cli("run", "-q", "--project", project, *extra, "--", *argv)
    assert result.returncode == 0, result.stderr


def links(db: Path) -> list[dict]:
    assert run_cli("sync", "-q").returncode == 0
    return list(
        sqlite_utils.Database(db).query(
            "select r.project, l.checkpoint_id, l.role, l.detected_by, l.path "
            "from run_checkpoints l join runs r using (run_id) order by r.started_at, l.role"
        )
    )


def test_safetensors_package_load_and_save_are_detected(db_path: Path, tmp_path: Path) -> None:
    # load_file/save_file open the file in Rust: no audit event of their own.
    base, tuned = tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"
    run(
        "pre",
        PY,
        "-c",
        "import numpy as np; from safetensors.numpy import save_file; "
        f"save_file({{'w': np.arange(64, dtype=np.float32)}}, {str(base)!r})",
    )
    run(
        "ft",
        PY,
        "-c",
        "from safetensors.numpy import load_file, save_file; w = load_file("
        f"{str(base)!r})['w']; save_file({{'w': w * 2}}, {str(tuned)!r})",
    )
    rows = {(r["project"], r["role"]): r for r in links(db_path)}
    assert set(rows) == {("pre", "produced"), ("ft", "consumed"), ("ft", "produced")}
    assert rows[("pre", "produced")]["checkpoint_id"] == sha(base)
    assert rows[("ft", "consumed")]["checkpoint_id"] == sha(base)
    assert rows[("ft", "produced")]["checkpoint_id"] == sha(tuned)
    assert {r["detected_by"] for r in rows.values()} == {"audit"}


def test_hf_cache_blob_name_is_the_id_without_reading(db_path: Path, tmp_path: Path) -> None:
    content = save({"w": np.ones(8, dtype=np.float32)})
    # A blob name that is NOT the content's hash: the id can only come from the name.
    blob_name = hashlib.sha256(b"the LFS pointer's oid").hexdigest()
    repo = tmp_path / "hub" / "models--acme--tiny-bert"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / blob_name).write_bytes(content)
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").symlink_to(repo / "blobs" / blob_name)
    run(
        "ft",
        PY,
        "-c",
        f"from safetensors.numpy import load_file; load_file({str(snap / 'model.safetensors')!r})",
    )
    (row,) = links(db_path)
    assert row["role"] == "consumed" and row["checkpoint_id"] == f"sha256:{blob_name}"
    (ckpt,) = sqlite_utils.Database(db_path)["checkpoints"].rows
    assert (ckpt["hf_repo"], ckpt["hf_revision"], ckpt["name"]) == (
        "acme/tiny-bert",
        "0123abcd",
        "acme/tiny-bert",
    )


def test_sharded_set_is_one_checkpoint_across_runs_and_copies(
    db_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sharded"
    write = (
        "import json, os, numpy as np; from safetensors.numpy import save_file\n"
        f"out = {str(out)!r}; os.makedirs(out, exist_ok=True); index = {{}}\n"
        "for i in (1, 2):\n"
        "    name = f'model-0000{i}-of-00002.safetensors'\n"
        "    save_file({f'w{i}': np.full(16, i, dtype=np.float32)}, os.path.join(out, name))\n"
        "    index[f'w{i}'] = name\n"
        "json.dump({'weight_map': index}, open(os.path.join(out, "
        "'model.safetensors.index.json'), 'w'))\n"
    )
    read = (
        "import json, os; from safetensors.numpy import load_file\n"
        f"out = {str(out)!r}\n"
        "m = json.load(open(os.path.join(out, 'model.safetensors.index.json')))\n"
        "for name in sorted(set(m['weight_map'].values())): load_file(os.path.join(out, name))\n"
    )
    run("pre", PY, "-c", write)
    run("ft", PY, "-c", read)
    expected = combined_id(
        [
            (p.name, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(out.glob("model-*-of-*.safetensors"))
        ]
    )
    rows = {(r["project"], r["role"]): r for r in links(db_path)}
    assert set(rows) == {("pre", "produced"), ("ft", "consumed")}  # the index is no checkpoint
    assert rows[("pre", "produced")]["checkpoint_id"] == expected
    assert rows[("ft", "consumed")]["checkpoint_id"] == expected
    assert rows[("ft", "consumed")]["path"] == f"{out}/model-of-00002.safetensors"
    # The directory, or any one shard, names the same checkpoint for `ecotrain lineage`.
    assert identify(str(out))["checkpoint_id"] == expected
    assert identify(str(out / "model-00002-of-00002.safetensors"))["checkpoint_id"] == expected


def test_non_python_writer_found_by_mtime(db_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(save({"w": np.full(1024, 7, dtype=np.float32)}))  # a model by content
    before = Path.cwd() / "old.bin"
    before.write_bytes(b"written before the run")
    # `cp` opens and closes its files in microseconds and raises no Python audit event.
    run("tool", "sh", "-c", f"mkdir -p out && cp {src} out/model.bin")
    (row,) = links(db_path)
    made = Path.cwd() / "out" / "model.bin"
    assert (row["role"], row["detected_by"], row["path"]) == ("produced", "mtime", str(made))
    assert row["checkpoint_id"] == sha(made)


def test_a_copy_is_not_production(db_path: Path, tmp_path: Path) -> None:
    base, copy = tmp_path / "base.safetensors", tmp_path / "copy.safetensors"
    base.write_bytes(save({"w": np.arange(100.0)}))
    run("ops", PY, "-c", f"import shutil; shutil.copy({str(base)!r}, {str(copy)!r})")
    (row,) = links(db_path)
    assert (row["role"], row["checkpoint_id"]) == ("consumed", sha(base))
    paths = {r["path"] for r in sqlite_utils.Database(db_path)["checkpoint_paths"].rows}
    assert paths == {str(base), str(copy)}  # both places are known for the one checkpoint
    assert checkpoint_footprint(Store(str(db_path)).engine, sha(base)).source == "unknown"


# A safetensors header for one 512 MiB uint8 tensor: the file is a model by its content.
_META = b'{"w":{"dtype":"U8","shape":[536870000],"data_offsets":[0,536870000]}}'
HEADER = len(_META).to_bytes(8, "little") + _META


def test_end_of_run_not_delayed_by_hashing(db_path: Path) -> None:
    # 512 MiB (sparse) written in the child's last instant: hashing it takes ~1 s here.
    big = Path.cwd() / "final.safetensors"
    code = (
        f"import time; f = open({str(big)!r}, 'wb'); f.write({HEADER!r}); "
        "f.truncate(512 * 2**20); f.close(); "
        "print(time.time(), flush=True)"
    )
    result = run_cli("run", "-q", "--project", "big", "--", PY, "-c", code)
    exit_latency = time.time() - float(result.stdout.split()[0])
    assert result.returncode == 0, result.stderr
    # Measured ~0.04 s on a quiet machine; hashing the file first would take ~0.9 s alone.
    assert exit_latency < 0.5, exit_latency
    (row,) = links(db_path)  # `ecotrain sync` resolves what the run left pending
    digest = hashlib.sha256()
    with big.open("rb") as f:
        while chunk := f.read(2**24):
            digest.update(chunk)
    assert row["checkpoint_id"] == f"sha256:{digest.hexdigest()}"
    ids = [r["checkpoint_id"] for r in sqlite_utils.Database(db_path)["checkpoints"].rows]
    assert ids == [row["checkpoint_id"]]  # no provisional id left behind


def test_vanished_checkpoint_leaves_a_complete_record(db_path: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone.pt"
    run(
        "tmp",
        PY,
        "-c",
        f"import os; open({str(gone)!r}, 'wb').write(b'x'); os.remove({str(gone)!r})",
    )
    assert links(db_path) == []
    (record,) = sqlite_utils.Database(db_path)["runs"].rows
    assert record["status"] == "finished" and record["facility_energy_kwh"] is not None
    assert any("vanished" in n for n in json.loads(record["notes"]))


def test_published_ancestor_counted_in_reproduce_and_dedup(db_path: Path, tmp_path: Path) -> None:
    """A lab fine-tunes Llama 2 7B (known only by GPU-hours) once; two other projects reuse
    the fine-tune, one of them twice."""
    tuned = tmp_path / "tuned.safetensors"
    run(
        "base",
        PY,
        "-c",
        f"open({str(tuned)!r}, 'wb').write({save({'w': np.ones(10)})!r})",
        extra=("--uses", "meta-llama/Llama-2-7b-hf"),
    )
    load = f"open({str(tuned)!r}, 'rb').read()"
    run("legal", PY, "-c", load)
    run("legal", PY, "-c", load)
    run("finance", PY, "-c", load)
    engine = Store(str(db_path)).engine
    links(db_path)
    runs = {r["project"]: r for r in sqlite_utils.Database(db_path)["runs"].rows}
    fp = checkpoint_footprint(engine, sha(tuned))
    # 184,320 A100-80GB GPU-hours x 400 W = 73,728 kWh IT, plus the recorded fine-tune.
    assert fp.it_energy_kwh == pytest.approx(73_728 + runs["base"]["it_energy_kwh"])
    assert fp.co2_kg == pytest.approx(31_220 + runs["base"]["co2_kg"])
    assert "Llama-2-7b-hf: catalogue" in fp.citation
    # Lab-wide, the fine-tune's retraining is avoided once although three runs reused it, and
    # Llama 2's pretraining (inside the fine-tune's footprint) is not claimed a second time.
    by_id = {a.checkpoint_id: a for a in avoided_for_runs(engine, RunFilter())}
    assert set(by_id) == {sha(tuned), "hf:meta-llama/Llama-2-7b-hf"}
    lab, llama = by_id[sha(tuned)], by_id["hf:meta-llama/Llama-2-7b-hf"]
    assert lab.reuses == 3
    assert (llama.energy_kwh, llama.co2_kg) == (0.0, 0.0) and "already counted" in llama.assumption
    site = runs["legal"]
    assert lab.energy_kwh == pytest.approx(fp.it_energy_kwh * site["pue"])
    assert lab.co2_kg == pytest.approx(
        fp.it_energy_kwh * site["pue"] * site["intensity_g_per_kwh"] / 1000
    )
    (legal,) = avoided_for_runs(engine, RunFilter(project="legal"), mode="as-published")
    assert legal.reuses == 2 and legal.co2_kg == pytest.approx(fp.co2_kg)
    # The project that made it (and read Llama 2 for it) avoided Llama 2's pretraining only.
    (own,) = avoided_for_runs(engine, RunFilter(project="base"), mode="as-published")
    assert own.checkpoint_id == "hf:meta-llama/Llama-2-7b-hf" and own.co2_kg == 31_220


def test_bloom_published_energy_is_not_divided_by_its_pue(db_path: Path) -> None:
    run("ft", PY, "-c", "pass", extra=("--uses", "bigscience/bloom"))
    engine = Store(str(db_path)).engine
    links(db_path)
    fp = checkpoint_footprint(engine, "hf:bigscience/bloom")
    # pue: the PUE applied in the published 24.7 t, none (Jean Zay's 1.2 is stated beside it)
    assert fp.it_energy_kwh == 433_196 and fp.pue == 1.0 and fp.energy_kwh == 433_196
    (a,) = avoided_for_runs(engine, RunFilter(), mode="reproduce")
    run_row = next(iter(sqlite_utils.Database(db_path)["runs"].rows))
    assert a.energy_kwh == pytest.approx(433_196 * run_row["pue"])
