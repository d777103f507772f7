"""Lineage and savings on the patterns real training code uses (issue 12), through real
`ecotrain run` children: resume in place, a seeded rerun, intermediate checkpoints, token
arrays beside weights, a project reading back its own ancestry, a registered repo in a
Hugging Face cache, Trainer checkpoint folders, and the in-process API."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils
from safetensors.numpy import save

import ecotrain
from ecotrain.lineage import RunTracker, classify
from ecotrain.savings import avoided_for_runs, checkpoint_footprint
from ecotrain.store.db import Store
from ecotrain.store.queries import RunFilter
from tests.conftest import run_cli
from tests.store_helpers import links

PY = sys.executable
ST = "import os, time, numpy as np; from safetensors.numpy import load_file, save_file\n"


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def run(project: str, code: str, *extra: str) -> None:
    result = run_cli("run", "-q", "--project", project, *extra, "--", PY, "-c", code)
    assert result.returncode == 0, result.stderr


# -- 1. resume in place ------------------------------------------------------------------------


def test_resume_in_place_consumes_the_bytes_it_read(db_path: Path) -> None:
    ckpt = Path("out/ckpt.safetensors")
    run(
        "gpt", ST + "os.makedirs('out'); save_file({'w': np.arange(256.0)}, 'out/ckpt.safetensors')"
    )
    first = sha(ckpt)
    # resume: read out/ckpt, train, overwrite it within milliseconds (no time for a
    # background hash: the hook identifies the bytes before the write truncates them)
    resume = ST + "w = load_file('out/ckpt.safetensors')['w']; save_file({'w': w + 1}, '{out}')"
    run("gpt", resume.replace("{out}", str(ckpt)))
    second = sha(ckpt)
    # the same, with the checkpoint also named by --uses
    run("gpt", resume.replace("{out}", str(ckpt)), "--uses", str(ckpt))
    third = sha(ckpt)
    assert len({first, second, third}) == 3
    rows = links(db_path)
    got = [(r["role"], r["checkpoint_id"]) for r in rows]
    assert got == [
        ("produced", first),
        ("consumed", first),
        ("produced", second),
        ("consumed", second),
        ("produced", third),
    ]
    # the resumed checkpoint's footprint: all three runs, each up to its write
    fp = checkpoint_footprint(Store(str(db_path)).engine, third)
    assert fp.source == "recorded" and fp.ancestors == sorted([first, second])
    assert len(fp.contributions) == 3
    base = checkpoint_footprint(Store(str(db_path)).engine, first)
    assert base.source == "recorded" and base.energy_kwh and base.energy_kwh > 0


@pytest.mark.parametrize("how", ["os.replace", "shutil.rmtree"])
def test_content_read_survives_atomic_replace_and_folder_rotation(db_path: Path, how: str) -> None:
    """Atomic saves (write a temp file, os.replace it over the old one) and the Trainer's
    rotation (shutil.rmtree of an old checkpoint folder) destroy what the run read too."""
    folder = Path("out/checkpoint-10")
    folder.mkdir(parents=True)
    weights = folder / "model.safetensors"
    weights.write_bytes(save({"w": np.arange(64, dtype=np.float32)}))
    (folder / "config.json").write_text("{}")
    before = sha(weights)
    code = ST + "import shutil\nload_file('out/checkpoint-10/model.safetensors')\n"
    if how == "os.replace":
        code += (
            "save_file({'w': np.zeros(64, dtype=np.float32)}, 'tmp.safetensors')\n"
            "os.replace('tmp.safetensors', 'out/checkpoint-10/model.safetensors')\n"
        )
    else:
        code += "shutil.rmtree('out/checkpoint-10')\n"
    run("rot", code)
    consumed = [r for r in links(db_path) if r["role"] == "consumed"]
    assert [(r["checkpoint_id"], Path(r["path"]).name) for r in consumed] == [
        (before, "checkpoint-10")
    ]


def test_read_then_changed_before_identified_is_a_note_not_a_wrong_id(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt.safetensors"
    ckpt.write_bytes(save({"w": np.ones(8, dtype=np.float32)}))
    tracker = RunTracker("r", None, poll=False, cache=_cache(tmp_path))
    tracker.log_checkpoint(str(ckpt), "consumed", "fd")  # seen, not hashed yet
    time.sleep(0.01)
    ckpt.write_bytes(save({"w": np.zeros(8, dtype=np.float32)}))  # overwritten meanwhile
    parts = tracker.record_parts(final=True)
    assert parts["links"] == [] and parts["checkpoints"] == []
    assert any("changed (or removed) before it could be identified" in n for n in tracker.notes)


def _cache(tmp_path: Path):  # noqa: ANN202
    from ecotrain.lineage import HashCache

    return HashCache(tmp_path / "hashes.json")


@pytest.mark.skipif(
    not __import__("importlib").util.find_spec("torch"), reason="torch not installed"
)
def test_torch_resume_in_place(db_path: Path) -> None:
    save_ = "import torch; torch.save({'w': torch.arange(64.0)}, 'ckpt.pt')"
    run("t", save_)
    first = sha(Path("ckpt.pt"))
    run("t", "import torch; s = torch.load('ckpt.pt'); s['w'] += 1; torch.save(s, 'ckpt.pt')")
    rows = links(db_path)
    assert [(r["role"], r["checkpoint_id"]) for r in rows][:2] == [
        ("produced", first),
        ("consumed", first),
    ]
    assert rows[2]["checkpoint_id"] == sha(Path("ckpt.pt")) != first


# -- 2. identical bytes produced twice -------------------------------------------------------------

SEEDED = ST + "save_file({'w': np.random.default_rng(0).random(512)}, 'seeded.safetensors')"


def test_seeded_rerun_is_one_production(db_path: Path) -> None:
    run("pre", SEEDED)
    ckpt = Path("seeded.safetensors")
    run("ft", ST + f"load_file({str(ckpt.resolve())!r})")
    engine = Store(str(db_path)).engine
    links(db_path)
    before = checkpoint_footprint(engine, sha(ckpt))
    (reported,) = avoided_for_runs(engine, RunFilter(project="ft"), mode="as-published")
    run("pre", SEEDED)  # the same bytes again
    links(db_path)
    after = checkpoint_footprint(engine, sha(ckpt))
    assert after.productions == 2 and len(after.runs) == 2
    assert "produced 2 times, the first production counted" in after.citation
    # what one production cost: the figure does not grow, for anyone, retroactively
    assert (after.energy_kwh, after.co2_kg, after.producer) == (
        before.energy_kwh,
        before.co2_kg,
        before.producer,
    )
    (again,) = avoided_for_runs(engine, RunFilter(project="ft"), mode="as-published")
    assert again.energy_kwh == reported.energy_kwh


def test_lineage_names_each_write_as_that_run_wrote_it(db_path: Path) -> None:
    """The same bytes written as `seeded.safetensors`, then as `copy.safetensors`: the second
    run's tree says what it wrote, beside the name the checkpoint was first seen by."""
    run("pre", SEEDED)
    run("pre", SEEDED.replace("'seeded.safetensors'", "'copy.safetensors'"))
    rows = [r for r in links(db_path) if r["role"] == "produced"]
    assert len({r["checkpoint_id"] for r in rows}) == 1 and len(rows) == 2
    second = max(rows, key=lambda r: r["path"].endswith("copy.safetensors"))["run_id"]
    tree = run_cli("lineage", second, env={"COLUMNS": "200"}).stdout
    assert "wrote work/seeded.safetensors as work/copy.safetensors (sha256:" in tree


# -- 3. intermediate checkpoints ------------------------------------------------------------------

THREE = """
import os, time, numpy as np
from safetensors.numpy import save_file
start = time.time()
for k in (1, 2, 3):
    while time.time() - start < 0.7 * k:   # busy: the CPU model sees the work
        sum(range(20_000))
    save_file({"w": np.full(64, k, dtype=np.float32)}, f"ck{k}.safetensors")
while time.time() - start < 2.8:
    sum(range(20_000))
"""


def test_three_checkpoints_each_carry_the_run_up_to_their_write(db_path: Path) -> None:
    run("steps", THREE)
    rows = [r for r in links(db_path) if r["role"] == "produced"]
    rows.sort(key=lambda r: r["path"])
    assert [Path(r["path"]).name for r in rows] == [f"ck{k}.safetensors" for k in (1, 2, 3)]
    written = [r["written_s"] for r in rows]
    shares = [r["energy_share"] for r in rows]
    # written 0.7, 1.4, 2.1 s after the child's start (which follows the run's start by its
    # interpreter start-up: seconds on a loaded machine), of a run that goes on to 2.8 s
    assert written[0] > 0.6, written
    assert all(0.4 < b - a < 1.5 for a, b in zip(written, written[1:], strict=False)), written
    assert written[2] < rows[0]["duration_s"] - 0.4, written
    assert 0 < shares[0] < shares[1] < shares[2] < 1, shares
    engine = Store(str(db_path)).engine
    fps = [checkpoint_footprint(engine, r["checkpoint_id"]) for r in rows]
    total = rows[0]["facility_energy_kwh"]
    for fp, share in zip(fps, shares, strict=True):
        assert fp.energy_kwh == pytest.approx(total * share)
        assert fp.share == share
    assert fps[2].energy_kwh < total
    tree = run_cli("lineage", rows[0]["run_id"], env={"COLUMNS": "200"}).stdout
    shown = [line for line in tree.splitlines() if "of the run's energy" in line]
    assert len(shown) == 3
    assert all(f"{s:.0%} of the run's energy" in ln for s, ln in zip(shares, shown, strict=True))


# -- 4. data files are not checkpoints ------------------------------------------------------------


def test_token_array_beside_a_checkpoint_is_not_a_checkpoint(db_path: Path) -> None:
    Path("data").mkdir()
    np.arange(4096, dtype=np.uint16).tofile("data/train.bin")  # nanoGPT's token arrays
    np.arange(512, dtype=np.uint16).tofile("data/val.bin")
    Path("ckpt.bin").write_bytes(save({"w": np.ones(16, dtype=np.float32)}))  # a real one
    code = (
        "import numpy as np\n"
        "for split in ('train', 'val'):\n"
        "    np.memmap(f'data/{split}.bin', dtype=np.uint16, mode='r')[:10].sum()\n"
        "open('ckpt.bin', 'rb').read()\n"
    )
    run("scratch", code)
    rows = links(db_path)
    assert [(Path(r["path"]).name, r["role"]) for r in rows] == [("ckpt.bin", "consumed")]
    (record,) = sqlite_utils.Database(db_path)["runs"].rows
    notes = json.loads(record["notes"])
    assert any("not checkpoints" in n and "train.bin" in n for n in notes), notes
    # a from-scratch run (data only) starts from no checkpoint at all
    run("scratch2", code.replace("open('ckpt.bin', 'rb').read()\n", ""))
    assert [r["project"] for r in links(db_path)] == ["scratch"]


def test_classify_by_content(tmp_path: Path) -> None:
    tmp_path = tmp_path / "files"
    tmp_path.mkdir()
    cases = {
        "a.safetensors": save({"w": np.ones(2, dtype=np.float32)}),
        "b.gguf": b"GGUF\x03\x00\x00\x00" + b"\0" * 16,
        "c.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 16,
        "d.pt": b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.",
        "e.bin": np.arange(100, dtype=np.uint16).tobytes(),
        "f.onnx": b"\x08\x07\x12\x07pytorch",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    np.save(tmp_path / "g.npy", np.ones(3))
    np.savez(tmp_path / "h.npz", w=np.ones(3))
    got = {p.name: classify(str(p)) for p in sorted(tmp_path.iterdir())}
    assert got == {
        "a.safetensors": "safetensors",
        "b.gguf": "gguf",
        "c.h5": "hdf5",
        "d.pt": "torch",
        "e.bin": None,
        "f.onnx": "onnx",
        "g.npy": "numpy",
        "h.npz": "numpy",
    }


def test_numpy_checkpoint_needs_a_hint(db_path: Path) -> None:
    code = "import numpy as np; np.savez('w.npz', w=np.ones(9))"
    run("plain", code)
    run("hinted", code, "--produces", "w.npz")
    assert [(r["project"], r["role"]) for r in links(db_path)] == [("hinted", "produced")]


# -- 5. ancestry: a project never avoids what it paid ----------------------------------------------


def _record(store: Store, run_id: str, project: str, kwh: float, consumed, produced) -> None:  # noqa: ANN001
    from store_helpers import make_record

    record = make_record(run_id, status="finished")
    record["run"].update(
        project=project,
        it_energy_kwh=kwh,
        facility_energy_kwh=1.5 * kwh,
        co2_kg=0.4 * kwh,
        cost_usd=0.1 * kwh,
        pue=1.5,
        intensity_g_per_kwh=400.0,
        region="X",
        started_at=f"2024-05-0{ {'pre': 1, 'ft': 2, 'back': 3}[run_id] }T12:00:00+00:00",
    )
    record["checkpoints"] = [{"checkpoint_id": c, "name": c} for c in consumed + produced]
    record["links"] = [{"checkpoint_id": c, "role": "consumed"} for c in consumed] + [
        {"checkpoint_id": c, "role": "produced"} for c in produced
    ]
    store.write_record(record)


@pytest.mark.parametrize("mode", ["reproduce", "as-published", "none"])
def test_project_reading_back_its_own_ancestry(tmp_path: Path, mode: str) -> None:
    """A pretrains base (100 kWh IT), B fine-tunes it into ft (10 kWh IT), A reads ft:
    A avoided B's fine-tune only, never its own pretraining (the 5.7x overclaim)."""
    store = Store(str(tmp_path / "a.db"))
    _record(store, "pre", "A", 100.0, [], ["base"])
    _record(store, "ft", "B", 10.0, ["base"], ["ft"])
    _record(store, "back", "A", 1.0, ["ft"], [])
    (a,) = avoided_for_runs(store.engine, RunFilter(project="A"), mode=mode)
    assert a.checkpoint_id == "ft"
    expected = {
        "reproduce": (10.0 * 1.5, 10.0 * 1.5 * 0.4),  # B's IT energy at A's PUE and grid
        "as-published": (15.0, 4.0),  # B's facility energy and CO2e
        "none": (0.0, 0.0),
    }[mode]
    assert (a.energy_kwh, a.co2_kg) == pytest.approx(expected)
    if mode != "none":
        assert "less 1 run(s) of project A" in a.footprint.citation
    # B reused base (A paid it): B avoided the pretraining
    (b,) = avoided_for_runs(store.engine, RunFilter(project="B"), mode=mode)
    assert b.checkpoint_id == "base"
    assert b.energy_kwh == pytest.approx(0.0 if mode == "none" else 150.0)
    # the lab: base (reused by B) and ft's fine-tune (reused by A), each once
    lab = {x.checkpoint_id: x for x in avoided_for_runs(store.engine, RunFilter(), mode=mode)}
    total = sum(x.energy_kwh for x in lab.values())
    assert total == pytest.approx(0.0 if mode == "none" else 165.0)


# -- 6. registered footprints for Hugging Face cache files ---------------------------------------


def _hf_cache(root: Path, repo: str, rev: str) -> Path:
    data = save({"w": np.arange(32, dtype=np.float32)})
    digest = hashlib.sha256(data).hexdigest()
    base = root / "hub" / f"models--{repo.replace('/', '--')}"
    (base / "blobs").mkdir(parents=True)
    (base / "blobs" / digest).write_bytes(data)
    (base / "blobs" / "cfg").write_text("{}")
    snap = base / "snapshots" / rev
    snap.mkdir(parents=True)
    os.symlink(base / "blobs" / digest, snap / "model.safetensors")
    os.symlink(base / "blobs" / "cfg", snap / "config.json")
    return snap


@pytest.mark.parametrize("read", ["file", "folder", "model card"])
def test_registered_repo_found_from_the_hf_cache(db_path: Path, tmp_path: Path, read: str) -> None:
    snap = _hf_cache(tmp_path, "org/name", "0a1b2c")
    if read == "model card":  # downloaded to a plain folder: only its card names the repo
        plain = tmp_path / "models" / "name"
        plain.mkdir(parents=True)
        (plain / "model.safetensors").write_bytes((snap / "model.safetensors").read_bytes())
        (plain / "README.md").write_text(
            "---\nbase_model: org/parent\nmodel-index:\n- name: org/name\n---\n# name\n"
        )
        snap = plain
    reg = run_cli("checkpoint", "register", "org/name", "--energy-kwh", "120", "--co2-kg", "50")
    assert reg.returncode == 0, reg.stderr
    target = snap / "model.safetensors" if read == "file" else snap
    code = ST + f"load_file({str(snap / 'model.safetensors')!r})"
    run("user", code, *(("--uses", str(target)) if read == "folder" else ()))
    rows = links(db_path)
    assert {r["checkpoint_id"] for r in rows} == {sha(snap / "model.safetensors")}
    fp = checkpoint_footprint(Store(str(db_path)).engine, rows[0]["checkpoint_id"])
    assert fp.source == "registered" and (fp.energy_kwh, fp.co2_kg) == (120.0, 50.0)
    assert "registered for org/name" in fp.citation and "parent" not in fp.citation
    (a,) = avoided_for_runs(Store(str(db_path)).engine, RunFilter(), mode="as-published")
    assert a.co2_kg == 50.0


# -- 7. a Trainer checkpoint folder is one checkpoint ------------------------------------------

TRAINER = """
import json, os, numpy as np
from safetensors.numpy import save_file
for step in (10, 20, 30):
    d = f"out/checkpoint-{step}"
    os.makedirs(d)
    save_file({"w": np.full(32, step, dtype=np.float32)}, f"{d}/model.safetensors")
    json.dump({"model_type": "tiny"}, open(f"{d}/config.json", "w"))
    json.dump({"global_step": step}, open(f"{d}/trainer_state.json", "w"))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        open(f"{d}/{name}", "wb").write(b"\\x80\\x02}q\\x00.")
"""


def test_trainer_folders_are_one_checkpoint_each(db_path: Path) -> None:
    run("hf", TRAINER)
    out = Path("out").resolve()
    rows = links(db_path)
    assert sorted(r["path"] for r in rows) == [str(out / f"checkpoint-{s}") for s in (10, 20, 30)]
    ids = {r["path"]: r["checkpoint_id"] for r in rows}
    assert ids[str(out / "checkpoint-30")] == sha(out / "checkpoint-30" / "model.safetensors")
    tree = run_cli("lineage", rows[0]["run_id"], env={"COLUMNS": "200"})
    wrote = [line for line in tree.stdout.splitlines() if "wrote" in line]
    assert len(wrote) == 3 and all("out/checkpoint-" in line for line in wrote), tree.stdout
    # resuming reads weights and optimizer state: one checkpoint consumed
    resume = (
        "from safetensors.numpy import load_file; import pickle\n"
        "load_file('out/checkpoint-30/model.safetensors')\n"
        "pickle.load(open('out/checkpoint-30/optimizer.pt', 'rb'))\n"
    )
    run("resume", resume)
    consumed = [r for r in links(db_path) if r["project"] == "resume"]
    assert [(r["role"], r["checkpoint_id"]) for r in consumed] == [
        ("consumed", ids[str(out / "checkpoint-30")])
    ]
    names = {r["name"] for r in sqlite_utils.Database(db_path)["checkpoints"].rows}
    assert names == {f"out/checkpoint-{s}" for s in (10, 20, 30)}


def test_same_file_name_in_different_folders_is_told_apart(db_path: Path) -> None:
    code = ST + (
        "for k in 'abcd':\n"
        "    os.makedirs(f'out-{k}')\n"
        "    save_file({'w': np.full(8, ord(k), dtype=np.float32)}, f'out-{k}/ckpt.pt')\n"
    )
    run("many", code)
    links(db_path)
    listing = json.loads(run_cli("checkpoints", "--json").stdout)
    assert sorted(r["name"] for r in listing) == [f"out-{k}/ckpt.pt" for k in "abcd"]


# -- 8. unknown is unknown ---------------------------------------------------------------------


def test_savings_with_only_unknown_footprints_prints_unknown(db_path: Path, tmp_path: Path) -> None:
    from ecotrain.units import UNKNOWN

    outside = tmp_path / "downloaded.safetensors"
    outside.write_bytes(save({"w": np.ones(4, dtype=np.float32)}))
    run("ft", ST + f"load_file({str(outside)!r})")
    links(db_path)
    out = run_cli("savings")
    assert out.returncode == 0, out.stderr
    total = next(line for line in out.stdout.splitlines() if line.startswith("total avoided"))
    assert "0 Wh" not in total and "$0.00" not in total and UNKNOWN in total
    # The hint names the file the run read (not a placeholder), and works as printed.
    hint = next(line for line in out.stdout.splitlines() if "hint:" in line)
    assert f"ecotrain checkpoint register {outside} --gpu" in hint and "<its path>" not in hint
    data = json.loads(run_cli("savings", "--json").stdout)
    assert data["avoided"][0]["energy_kwh"] is None
    assert data["avoided"][0]["path"] == str(outside)
    registered = run_cli("checkpoint", "register", str(outside), "--energy-kwh", "12")
    assert registered.returncode == 0, registered.stderr
    after = json.loads(run_cli("savings", "--mode", "as-published", "--json").stdout)
    assert after["avoided"][0]["energy_kwh"] == 12


# -- 9. the in-process API sees reads and writes --------------------------------------------------


def test_track_records_reads_and_writes_without_logging(db_path: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    base, tuned = tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"
    save_file({"w": np.arange(16, dtype=np.float32)}, str(base))
    with ecotrain.track(project="inproc", quiet=True) as run_:
        w = load_file(str(base))["w"]
        save_file({"w": w * 3}, str(tuned))
        with open(tmp_path / "notes.txt", "w") as f:  # not a model file
            f.write("x")
    assert run_.energy_kwh is not None
    rows = {(r["role"], r["checkpoint_id"]) for r in links(db_path)}  # hashes resolved
    assert rows == {("consumed", sha(base)), ("produced", sha(tuned))}
    # outside the block nothing is recorded any more
    load_file(str(tuned))
    assert len(list(sqlite_utils.Database(db_path)["run_checkpoints"].rows)) == 2


def test_track_resume_in_place(db_path: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt.npz"
    np.savez(ckpt, w=np.ones(50))
    first = sha(ckpt)
    with ecotrain.track(project="np", quiet=True) as run_:
        run_.log_checkpoint(ckpt, role="consumed")  # numpy: named, so a checkpoint
        w = np.load(ckpt)["w"]
        np.savez(ckpt, w=w + 1)
        run_.log_checkpoint(ckpt, role="produced")
    rows = {(r["role"], r["checkpoint_id"]) for r in links(db_path)}  # hashes resolved
    assert rows == {("consumed", first), ("produced", sha(ckpt))}


# -- 10. the Hugging Face callback alone --------------------------------------------------------


@pytest.mark.parametrize("given", ["local folder", "hub id"])
def test_hf_callback_alone_links_its_model_and_says_what_it_measured(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    import types

    from ecotrain.callbacks import _hf_class, hf_callback

    fake = types.ModuleType("transformers")
    fake.TrainerCallback = type("TrainerCallback", (), {})
    monkeypatch.setitem(sys.modules, "transformers", fake)
    _hf_class.cache_clear()
    if given == "local folder":
        model_dir = tmp_path / "tiny-model"
        model_dir.mkdir()
        (model_dir / "config.json").write_text("{}")
        (model_dir / "model.safetensors").write_bytes(save({"w": np.ones(4, dtype=np.float32)}))
        name, commit = str(model_dir), None
    else:
        model_dir = _hf_cache(tmp_path, "org/tiny", "c0ffee")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        name, commit = "org/tiny", "c0ffee"
    model = types.SimpleNamespace(
        name_or_path=name, config=types.SimpleNamespace(_name_or_path=name, _commit_hash=commit)
    )
    args = types.SimpleNamespace(output_dir=str(tmp_path / "out"), max_steps=30, num_train_epochs=3)
    state = types.SimpleNamespace(global_step=0, max_steps=30, epoch=0.0)
    cb = hf_callback()
    cb.on_init_end(args, state, None)
    cb.on_train_begin(args, state, None, model=model)
    for step in range(1, 31):
        state.global_step, state.epoch = step, step / 32
        cb.on_step_end(args, state, None)
    cb.on_epoch_end(args, state, None)  # 0.94 of 3 epochs: not the progress with max_steps
    folder = tmp_path / "out" / "checkpoint-30"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(save({"w": np.zeros(4, dtype=np.float32)}))
    (folder / "optimizer.pt").write_bytes(b"\x80\x02}q\x00.")
    cb.on_save(args, state, None)
    cb.on_train_end(args, state, None)
    _hf_class.cache_clear()
    (row,) = sqlite_utils.Database(db_path)["runs"].rows
    progress = json.loads(row["progress"])
    assert (progress["step"], progress["total"], progress["fraction"]) == (30, 30, 1.0)
    notes = json.loads(row["notes"])
    assert any("measured by the Hugging Face Trainer callback alone" in n for n in notes), notes
    got = {(r["role"], r["checkpoint_id"], r["path"]) for r in links(db_path)}
    assert got == {
        ("consumed", sha(model_dir / "model.safetensors"), str(model_dir)),
        ("produced", sha(folder / "model.safetensors"), str(folder)),
    }


def test_produced_file_not_rewritten_by_the_run_is_charged_whole(tmp_path: Path) -> None:
    """--produces of a file last written before the run: no write time, so no share (the
    whole run is charged), rather than a share of zero."""
    from datetime import UTC, datetime

    old = tmp_path / "old.safetensors"
    old.write_bytes(save({"w": np.ones(4, dtype=np.float32)}))
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    new = tmp_path / "new.safetensors"
    tracker = RunTracker(
        "r", None, produces=[str(old)], started_at=datetime.now(UTC), cache=_cache(tmp_path),
        poll=False,
    )  # fmt: skip
    new.write_bytes(save({"w": np.zeros(4, dtype=np.float32)}))
    tracker.log_checkpoint(str(new), "produced", "audit")
    links_ = {
        Path(link["path"]).name: link
        for link in tracker.record_parts(True, [[0, 10, 0, 0], [5, 10, 0, 0]], 5.0)["links"]
    }
    assert "written_s" not in links_["old.safetensors"]
    assert 0 <= links_["new.safetensors"]["written_s"] < 5
    assert 0 <= links_["new.safetensors"]["energy_share"] < 1


def test_share_until_from_a_timeline() -> None:
    from ecotrain.lineage import share_until

    flat = [[1.0, 10.0, 0.0, 0.0], [3.0, 10.0, 0.0, 0.0]]  # ticks at 1 s and 3 s of a 4 s run
    assert share_until(flat, 0.5, 4.0) == pytest.approx(0.125)  # before the first tick
    assert share_until(flat, 2.0, 4.0) == pytest.approx(0.5)
    assert share_until(flat, 4.0, 4.0) == 1.0
    ramp = [[0.0, 0.0, 0.0, 0.0], [2.0, 20.0, 0.0, 0.0]]  # 0 -> 20 W over 2 s
    assert share_until(ramp, 1.0, 2.0) == pytest.approx(0.25)
    assert share_until([], 1.0, 4.0) == pytest.approx(0.25)  # no power: by elapsed time
